"""Paging cursors: opaque, signed, bound to their filters and caller."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from api.cursor import Cursor, CursorError, decode_cursor, encode_cursor, fingerprint

SECRET = b"k" * 32
FP = fingerprint({"q": "acme", "status": "success"}, {"partner_id": "p-1"})
NOW = 1_764_150_000
CURSOR = Cursor(
    [1764150000000, "evt-9"],
    "2026-11-25T10:00:00.000000Z",
    "2026-11-26T10:00:00.000000Z",
    FP,
    NOW + 3600,
)


def test_round_trip() -> None:
    token = encode_cursor(CURSOR, SECRET)
    assert decode_cursor(token, SECRET, FP, NOW) == CURSOR


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
    "change",
    [{"after": [0, "evt-0"]}, {"from": ""}, {"fp": "0" * 32}, {"v": 3}, {"exp": NOW + 10**9}],
)
def test_edited_payload_is_rejected(change: dict) -> None:
    with pytest.raises(CursorError, match="signature"):
        decode_cursor(_reencode(encode_cursor(CURSOR, SECRET), change), SECRET, FP, NOW)


def test_other_secret_is_rejected() -> None:
    with pytest.raises(CursorError, match="signature"):
        decode_cursor(encode_cursor(CURSOR, b"x" * 32), SECRET, FP, NOW)


def test_cursor_of_other_filters_is_rejected() -> None:
    token = encode_cursor(CURSOR, SECRET)
    other = fingerprint({"q": "acme"}, {"partner_id": "p-1"})
    with pytest.raises(CursorError, match="different filters"):
        decode_cursor(token, SECRET, other, NOW)


@pytest.mark.parametrize(
    "garbage",
    ["", "x", "abc.def", "a.b.c", "!!!.???", "é.é", "x" * 5000, "eyJ2IjoxfQ", ".", "\x00.\x00"],
)
def test_garbage_is_rejected(garbage: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(garbage, SECRET, FP, NOW)


def test_a_cursor_expires() -> None:
    token = encode_cursor(CURSOR, SECRET)
    assert decode_cursor(token, SECRET, FP, NOW + 3600) == CURSOR
    with pytest.raises(CursorError, match="expired"):
        decode_cursor(token, SECRET, FP, NOW + 3601)


@pytest.mark.parametrize(
    "change",
    [
        {"after": ["1764150000000", "evt-9"]},  # a string where ES sorts a long
        {"after": [1764150000000]},
        {"after": [1764150000000, "evt-9", "extra"]},
        {"after": [1.5, "evt-9"]},
        {"after": [True, "evt-9"]},
        {"after": [10**30, "evt-9"]},
        {"after": [1764150000000, "no spaces allowed"]},
        {"after": [1764150000000, None]},
        {"after": {"a": 1}},
        {"from": "yesterday"},
        {"from": "2026-13-45T10:00:00.000000Z"},
        {"to": ""},
        {"to": "2026-11-26"},
        {"to": 1764150000},
        {"fp": 5},
        {"fp": "not-hex"},
        {"exp": "tomorrow"},
        {"exp": None},
        {"v": 2, "after": None},
    ],
)
def test_values_a_signer_could_forge_are_refused_before_use(change: dict) -> None:
    """Whoever holds the key (or a leaked one) cannot push odd values to Elasticsearch."""
    data = {
        "v": 2,
        "after": CURSOR.search_after,
        "from": CURSOR.window_from,
        "to": CURSOR.window_to,
        "fp": FP,
        "exp": NOW + 60,
        **change,
    }
    payload = json.dumps(data).encode()
    signature = hmac.new(SECRET, payload, hashlib.sha256).digest()
    token = f"{_b64(payload)}.{_b64(signature)}"
    with pytest.raises(CursorError, match="malformed"):
        decode_cursor(token, SECRET, FP, NOW)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
