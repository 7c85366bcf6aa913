"""SPEC §2: every rule of the v1 envelope has an accepted and a rejected case."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.event import (
    MAX_EVENT_BYTES,
    InvalidEvent,
    parse_event,
    parse_rfc3339,
    validate_event,
)

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
DELETE = object()


def valid_event() -> dict[str, Any]:
    """The SPEC §2 example event."""
    return {
        "event_id": "3f0c9a52-6a5e-4f8e-9d7e-1c2b3a4d5e6f",
        "schema_version": 1,
        "occurred_at": "2026-11-26T08:59:58.120Z",
        "action": "compliance.enable",
        "partner_id": "p-100",
        "organization": {"id": "org-7", "name": "Acme Ltd"},
        "actor": {
            "type": "partner_user",
            "id": "u-42",
            "name": "Jane Doe",
            "email": "jane@partner.example",
            "role": "admin",
        },
        "source": {"channel": "ui", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
        "object": {"type": "organization", "id": "org-7", "name": "Acme Ltd"},
        "status": "success",
        "description": "Enabled compliance for Acme Ltd",
    }


def with_field(path: str, value: Any) -> dict[str, Any]:
    """The valid event with the dotted ``path`` set to ``value`` (or removed: DELETE)."""
    event = copy.deepcopy(valid_event())
    *parents, leaf = path.split(".")
    target = event
    for key in parents:
        target = target.setdefault(key, {})
    if value is DELETE:
        target.pop(leaf, None)
    else:
        target[leaf] = value
    return event


def future(hours: float) -> str:
    return (NOW + timedelta(hours=hours)).isoformat()


ACCEPTED = [
    ("event_id", "a"),
    ("event_id", "A" * 128),
    ("event_id", "Ab9._:-"),
    ("schema_version", 1),
    ("occurred_at", "2026-11-26T09:00:00.123+01:00"),
    ("occurred_at", "2026-11-26T09:00:00-05:30"),
    ("occurred_at", "2026-11-26t09:00:00.123456789z"),
    ("occurred_at", future(23.9)),
    ("occurred_at", "1999-01-01T00:00:00Z"),
    ("action", "login.impersonate"),
    ("action", "widget.frobnicate"),
    ("action", "billing.invoice_v2.void"),
    ("partner_id", "p"),
    ("partner_id", "p" * 64),
    ("organization", DELETE),
    ("organization", None),
    ("organization", {"id": "org-1"}),
    ("organization.name", None),
    *[
        ("actor.type", t)
        for t in ("partner_user", "organization_user", "internal_support", "system")
    ],
    *[("actor.role", r) for r in ("owner", "super_admin", "admin", "support")],
    ("actor.role", DELETE),
    ("actor.name", DELETE),
    ("actor.email", DELETE),
    *[("source.channel", c) for c in ("ui", "api", "system")],
    ("source.ip", "2001:db8::1"),
    ("source.ip", "10.0.0.1"),
    ("source.ip", DELETE),
    ("source.service", "billing"),
    ("source.request_id", "req-1"),
    ("object", DELETE),
    ("object", {"type": "ad_group"}),
    ("status", "failure"),
    ("status_reason", "not_found"),
    ("description", DELETE),
    ("description", "x" * 4096),
    ("changes", []),
    ("changes", [{"field": "seats", "old": 5, "new": 10}] * 100),
    ("changes", [{"field": "plan", "old": {"a": [1, None]}, "new": None}]),
    ("changes", [{"field": "name"}]),
    ("metadata", {f"k{i}": i for i in range(50)}),
    ("metadata", {"s": "x", "i": 1, "f": 1.5, "b": True, "n": None}),
    ("unexpected_top_level", {"anything": 1}),
    ("actor.unexpected", "ignored"),
]


@pytest.mark.parametrize(("path", "value"), ACCEPTED)
def test_accepted(path: str, value: Any) -> None:
    event = validate_event(with_field(path, value), now=NOW)
    assert event["event_id"]
    assert "unexpected_top_level" not in event
    assert "unexpected" not in event["actor"]


REJECTED = [
    # (path set, value, error path, words the message must contain)
    ("event_id", DELETE, "event_id", "required"),
    ("event_id", "", "event_id", "1-128"),
    ("event_id", "a" * 129, "event_id", "1-128"),
    ("event_id", "a b", "event_id", "1-128"),
    ("event_id", "a/b", "event_id", "1-128"),
    ("event_id", "é", "event_id", "1-128"),
    ("event_id", "abc\n", "event_id", "1-128"),
    ("event_id", 123, "event_id", "string"),
    ("schema_version", DELETE, "schema_version", "required"),
    ("schema_version", 2, "schema_version", "integer 1"),
    ("schema_version", "1", "schema_version", "integer 1"),
    ("schema_version", True, "schema_version", "integer 1"),
    ("schema_version", 1.0, "schema_version", "integer 1"),
    ("occurred_at", DELETE, "occurred_at", "required"),
    ("occurred_at", "2026-11-26T09:00:00", "occurred_at", "offset"),
    ("occurred_at", "2026-11-26", "occurred_at", "RFC 3339"),
    ("occurred_at", "2026-02-30T09:00:00Z", "occurred_at", "RFC 3339"),
    ("occurred_at", "2026-11-26T09:00:00+24:00", "occurred_at", "RFC 3339"),
    ("occurred_at", "26/11/2026 09:00", "occurred_at", "RFC 3339"),
    ("occurred_at", 1764147600, "occurred_at", "RFC 3339"),
    ("occurred_at", future(24.1), "occurred_at", "24 hours in the future"),
    ("action", DELETE, "action", "required"),
    ("action", "compliance", "action", "[a-z0-9_]"),
    ("action", "Compliance.enable", "action", "[a-z0-9_]"),
    ("action", "compliance.", "action", "[a-z0-9_]"),
    ("action", "a..b", "action", "[a-z0-9_]"),
    ("action", "a-b.c", "action", "[a-z0-9_]"),
    ("partner_id", DELETE, "partner_id", "required"),
    ("partner_id", "", "partner_id", "Length"),
    ("partner_id", "p" * 65, "partner_id", "Length"),
    ("partner_id", 7, "partner_id", "string"),
    ("organization", "org-7", "organization", "Invalid"),
    ("organization.id", DELETE, "organization.id", "required"),
    ("organization.id", "", "organization.id", "Length"),
    ("organization.name", 5, "organization.name", "string"),
    ("actor", DELETE, "actor", "required"),
    ("actor.type", DELETE, "actor.type", "required"),
    ("actor.type", "robot", "actor.type", "one of"),
    ("actor.id", DELETE, "actor.id", "required"),
    ("actor.role", "root", "actor.role", "one of"),
    ("actor.email", 5, "actor.email", "string"),
    ("source", DELETE, "source", "required"),
    ("source.channel", DELETE, "source.channel", "required"),
    ("source.channel", "email", "source.channel", "one of"),
    ("source.ip", "999.1.1.1", "source.ip", "IPv4 or IPv6"),
    ("source.ip", "fe80::1%eth0", "source.ip", "IPv4 or IPv6"),
    ("source.ip", "localhost", "source.ip", "IPv4 or IPv6"),
    ("object", [], "object", "Invalid"),
    ("object.type", DELETE, "object.type", "required"),
    ("status", DELETE, "status", "required"),
    ("status", "ok", "status", "one of"),
    ("status", "SUCCESS", "status", "one of"),
    ("status_reason", 404, "status_reason", "string"),
    ("description", "x" * 4097, "description", "4096"),
    ("description", ["x"], "description", "string"),
    ("changes", [{"field": "a"}] * 101, "changes", "100"),
    ("changes", {"field": "a"}, "changes", "list"),
    ("changes", [{"old": 1}], "changes.0.field", "required"),
    ("changes", ["seats"], "changes.0", "Invalid"),
    ("metadata", {f"k{i}": i for i in range(51)}, "metadata", "50"),
    ("metadata", {"k": [1]}, "metadata.k.value", "scalar"),
    ("metadata", {"k": {"a": 1}}, "metadata.k.value", "scalar"),
    ("metadata", {"": 1}, "metadata..key", "Length"),
    ("metadata", {"a\x00b": 1}, "metadata.a\x00b.key", "NUL"),
    ("metadata", ["k"], "metadata", "mapping"),
]


@pytest.mark.parametrize(("path", "value", "error_path", "words"), REJECTED)
def test_rejected_names_field_and_rule(path: str, value: Any, error_path: str, words: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        validate_event(with_field(path, value), now=NOW)
    assert caught.value.reason == "invalid_fields"
    assert error_path in caught.value.errors, caught.value.errors
    assert words.lower() in " ".join(caught.value.errors[error_path]).lower()
    assert error_path in str(caught.value)


def test_all_field_errors_reported_at_once() -> None:
    event = with_field("actor.role", "root")
    event["status"] = "maybe"
    with pytest.raises(InvalidEvent) as caught:
        validate_event(event, now=NOW)
    assert {"actor.role", "status"} <= caught.value.errors.keys()


def test_occurred_at_is_normalized_to_utc() -> None:
    event = validate_event(with_field("occurred_at", "2026-11-26T09:00:00.123+01:00"), now=NOW)
    assert event["occurred_at"] == datetime(2026, 11, 26, 8, 0, 0, 123000, tzinfo=UTC)


def test_future_rule_uses_current_time_by_default() -> None:
    far = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    with pytest.raises(InvalidEvent):
        validate_event(with_field("occurred_at", far))
    validate_event(with_field("occurred_at", datetime.now(UTC).isoformat()))


def test_optional_nulls_are_dropped_and_ip_is_canonical() -> None:
    event = with_field("status_reason", None)
    event["source"]["ip"] = "2001:DB8:0:0::1"
    loaded = validate_event(event, now=NOW)
    assert "status_reason" not in loaded
    assert loaded["source"]["ip"] == "2001:db8::1"


def test_parse_rfc3339_negative_zero_offset_is_utc() -> None:
    assert parse_rfc3339("2026-01-01T00:00:00-00:00") == datetime(2026, 1, 1, tzinfo=UTC)


# parse_event: the stages before field validation, each with its own reason.


def encode(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode("utf-8")


def test_parse_event_accepts_valid_bytes() -> None:
    assert parse_event(encode(valid_event()), now=NOW)["action"] == "compliance.enable"


def test_parse_event_size_limit() -> None:
    event = valid_event()
    event["padding"] = ""  # unknown, ignored: only the size matters
    room = MAX_EVENT_BYTES - len(encode(event))
    event["padding"] = "x" * room
    assert len(encode(event)) == MAX_EVENT_BYTES
    parse_event(encode(event), now=NOW)
    event["padding"] += "x"
    with pytest.raises(InvalidEvent) as caught:
        parse_event(encode(event), now=NOW)
    assert caught.value.reason == "too_large"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe{}", "not_utf8"),
        (b"{not json", "not_json"),
        (b"", "not_json"),
        (None, "not_json"),
        (b'{"a": NaN}', "not_json"),
        (b"[" * 100000 + b"]" * 100000, "not_json"),
        (b"[1, 2]", "not_object"),
        (b'"text"', "not_object"),
        (b"{}", "invalid_fields"),
    ],
)
def test_parse_event_reasons(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw, now=NOW)
    assert caught.value.reason == reason
    assert caught.value.errors
