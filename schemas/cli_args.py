"""Argument types shared by the `audit-log` commands (errors are argparse's one line)."""

from __future__ import annotations

import argparse


def whole_number(text: str, minimum: int = 0) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if number < minimum:
        limit = "must not be negative" if minimum == 0 else f"must be at least {minimum}"
        raise argparse.ArgumentTypeError(f"{limit}: {text}")
    return number
