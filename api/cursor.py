"""Opaque, tamper-evident paging cursors.

A cursor is `base64url(json payload) + "." + base64url(HMAC-SHA256(payload))`. The payload
holds the `search_after` sort values of the last item served, the time window the first
page resolved (so "the last 24 hours" does not slide between pages, which would skip or
repeat logs), and a fingerprint of the filters and caller it was issued for: a cursor
replayed with other filters, or by another caller, is refused rather than silently
paging through a different result set.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CURSOR_VERSION = 1
MAX_CURSOR_CHARS = 2048


class CursorError(ValueError):
    """The cursor is malformed, forged or was issued for a different query."""


@dataclass(frozen=True)
class Cursor:
    search_after: list[Any]
    window_from: str
    window_to: str
    fingerprint: str


def fingerprint(filters: Mapping[str, Any], scope: Mapping[str, Any]) -> str:
    """Stable digest of the user's filters and the caller's scope (order-insensitive lists)."""
    canonical: dict[str, Any] = {}
    for key, value in {**filters, "__scope__": scope}.items():
        if value is None or value == [] or value == ():
            continue
        if isinstance(value, list | tuple | set | frozenset):
            value = sorted(str(v) for v in value)
        elif isinstance(value, Mapping):
            value = {
                k: sorted(map(str, v)) if isinstance(v, list | tuple) else v
                for k, v in sorted(value.items())
            }
        canonical[key] = value
    text = json.dumps(canonical, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode_cursor(cursor: Cursor, secret: bytes) -> str:
    payload = json.dumps(
        {
            "v": CURSOR_VERSION,
            "after": cursor.search_after,
            "from": cursor.window_from,
            "to": cursor.window_to,
            "fp": cursor.fingerprint,
        },
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64encode(payload)}.{_b64encode(signature)}"


def decode_cursor(token: str, secret: bytes, expected_fingerprint: str) -> Cursor:
    """Verify and decode `token`; raises `CursorError` with a user-facing reason."""
    if len(token) > MAX_CURSOR_CHARS or token.count(".") != 1:
        raise CursorError("malformed cursor")
    payload_text, signature_text = token.split(".")
    try:
        payload = _b64decode(payload_text)
        signature = _b64decode(signature_text)
    except (binascii.Error, ValueError):
        raise CursorError("malformed cursor") from None
    expected = hmac.new(secret, payload, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise CursorError("cursor signature does not verify")
    try:
        data = json.loads(payload)
        cursor = Cursor(
            search_after=list(data["after"]),
            window_from=str(data["from"]),
            window_to=str(data["to"]),
            fingerprint=str(data["fp"]),
        )
        version = data["v"]
    except (ValueError, KeyError, TypeError):
        # Only reachable with our own key, i.e. a cursor of an incompatible older format.
        raise CursorError("malformed cursor") from None
    if version != CURSOR_VERSION:
        raise CursorError("cursor from an incompatible version")
    if not hmac.compare_digest(cursor.fingerprint, expected_fingerprint):
        raise CursorError("cursor was issued for different filters")
    return cursor
