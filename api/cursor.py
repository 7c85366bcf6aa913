"""Opaque, tamper-evident paging cursors.

A cursor is `base64url(json payload) + "." + base64url(HMAC-SHA256(payload))`. The payload
holds the `search_after` sort values of the last item served, the time window the first
page resolved (so "the last 24 hours" does not slide between pages, which would skip or
repeat logs), and a fingerprint of the filters and caller it was issued for: a cursor
replayed with other filters, or by another caller, is refused rather than silently
paging through a different result set. A cursor expires (`Settings.cursor_ttl_s`), and its
values are checked for shape before any of them reaches Elasticsearch: a valid signature
proves who made a cursor, not that what it carries is well formed.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from schemas.event import EVENT_ID_PATTERN

CURSOR_VERSION = 2
MAX_CURSOR_CHARS = 2048
#: The window bounds as `api.query.format_time` writes them.
_WINDOW_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")
_FINGERPRINT = re.compile(r"^[0-9a-f]{32}$")
#: Sort values of `@timestamp` are epoch milliseconds: years 0001..9999 fit well within.
_MAX_EPOCH_MS = 253_402_300_800_000


class CursorError(ValueError):
    """The cursor is malformed, forged or was issued for a different query."""


@dataclass(frozen=True)
class Cursor:
    search_after: list[Any]
    window_from: str
    window_to: str
    fingerprint: str
    #: Unix time after which the cursor is refused.
    expires_at: int = 0


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
            "exp": cursor.expires_at,
        },
        separators=(",", ":"),
    ).encode()
    signature = hmac.new(secret, payload, hashlib.sha256).digest()
    return f"{_b64encode(payload)}.{_b64encode(signature)}"


def decode_cursor(
    token: str, secret: bytes, expected_fingerprint: str, now: float | None = None
) -> Cursor:
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
        version = data["v"]
    except (ValueError, KeyError, TypeError):
        raise CursorError("malformed cursor") from None
    if version != CURSOR_VERSION:
        raise CursorError("cursor from an incompatible version; start from the first page")
    cursor = _checked(data)
    if cursor.expires_at < (time.time() if now is None else now):
        raise CursorError("cursor expired; start again from the first page")
    if not hmac.compare_digest(cursor.fingerprint, expected_fingerprint):
        raise CursorError("cursor was issued for different filters")
    return cursor


def _checked(data: Any) -> Cursor:
    """The payload as a `Cursor`, each value of the shape the API itself writes."""
    try:
        after, window_from, window_to = data["after"], data["from"], data["to"]
        digest, expires_at = data["fp"], data["exp"]
    except (KeyError, TypeError):
        raise CursorError("malformed cursor") from None
    if not (
        _is_sort_position(after)
        and (window_from == "" or _is_window_time(window_from))
        and _is_window_time(window_to)
        and isinstance(digest, str)
        and _FINGERPRINT.match(digest)
        and type(expires_at) is int
    ):
        raise CursorError("malformed cursor")
    return Cursor(list(after), window_from, window_to, digest, expires_at)


def _is_sort_position(after: Any) -> bool:
    """[epoch milliseconds, Log ID]: the values of `api.query.SORT` for one log."""
    if not isinstance(after, list) or len(after) != 2:
        return False
    millis, log_id = after
    return (
        type(millis) is int
        and abs(millis) <= _MAX_EPOCH_MS
        and isinstance(log_id, str)
        and EVENT_ID_PATTERN.fullmatch(log_id) is not None
    )


def _is_window_time(value: Any) -> bool:
    if not isinstance(value, str) or not _WINDOW_TIME.match(value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
