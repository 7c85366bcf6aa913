"""Paging cursors: opaque, signed, bound to their filters and caller."""

from __future__ import annotations

import base64
import json

import pytest

from api.cursor import Cursor, CursorError, decode_cursor, encode_cursor, fingerprint

SECRET = b"k" * 32
FP = fingerprint({"q": "acme", "status": "success"}, {"partner_id": "p-1"})
CURSOR = Cursor(
    [1764150000000, "evt-9"], "2026-11-25T10:00:00.000000Z", "2026-11-26T10:00:00.000000Z", FP
)


def test_round_trip() -> None:
    token = encode_cursor(CURSOR, SECRET)
    assert decode_cursor(token, SECRET, FP) == CURSOR


def test_cursor_is_url_safe() -> None:
    token = encode_cursor(CURSOR, SECRET)
    assert all(c.isalnum() or c in "-_." for c in token)


def test_fingerprint_ignores_order_and_empty_values() -> None:
    a = fingerprint({"activity": ["b.x", "a.y"], "q": None}, {"org_ids": ["2", "1"]})
    b = fingerprint({"activity": ["a.y", "b.x"], "status": None}, {"org_ids": ["1", "2"]})
    assert a == b
    assert a != fingerprint({"activity": ["a.y"]}, {"org_ids": ["1", "2"]})


def _reencode(token: str, change: dict) -> str:
    payload_text, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4)))
    payload.update(change)
    text = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
    return f"{text}.{signature}"


@pytest.mark.parametrize(
    "change", [{"after": [0, "evt-0"]}, {"from": ""}, {"fp": "0" * 32}, {"v": 2}]
)
def test_edited_payload_is_rejected(change: dict) -> None:
    with pytest.raises(CursorError, match="signature"):
        decode_cursor(_reencode(encode_cursor(CURSOR, SECRET), change), SECRET, FP)


def test_other_secret_is_rejected() -> None:
    with pytest.raises(CursorError, match="signature"):
        decode_cursor(encode_cursor(CURSOR, b"x" * 32), SECRET, FP)


def test_cursor_of_other_filters_is_rejected() -> None:
    token = encode_cursor(CURSOR, SECRET)
    other = fingerprint({"q": "acme"}, {"partner_id": "p-1"})
    with pytest.raises(CursorError, match="different filters"):
        decode_cursor(token, SECRET, other)


@pytest.mark.parametrize(
    "garbage",
    ["", "x", "abc.def", "a.b.c", "!!!.???", "é.é", "x" * 5000, "eyJ2IjoxfQ", ".", "\x00.\x00"],
)
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(garbage, SECRET, FP)
