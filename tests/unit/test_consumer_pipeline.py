"""The worker's pure core: every record becomes exactly one index action or one dead letter."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from consumer import pipeline
from consumer.pipeline import (
    DeadLetter,
    IndexAction,
    RawRecord,
    commit_offsets,
    process_batch,
    process_record,
)
from schemas.dead_letter import REASON_NORMALIZATION_FAILED
from schemas.document import document_id

NOW = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
PREFIX = "audit-test"


def event(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": "3f0c9a52-6a5e-4f8e-9d7e-1c2b3a4d5e6f",
        "schema_version": 1,
        "occurred_at": "2026-11-26T08:59:58.120Z",
        "action": "compliance.enable",
        "partner_id": "p-100",
        "organization": {"id": "org-7", "name": "Acme Ltd"},
        "actor": {"type": "partner_user", "id": "u-42", "name": "Jane Doe", "role": "admin"},
        "source": {"channel": "ui", "ip": "203.0.113.9"},
        "object": {"type": "organization", "id": "org-7", "name": "Acme Ltd"},
        "status": "success",
    }
    base.update(overrides)
    return base


def record(value: bytes | None, offset: int = 7, partition: int = 2) -> RawRecord:
    return RawRecord(
        value=value, topic="audit.events", partition=partition, offset=offset, key=b"p-100"
    )


def encoded(**overrides: Any) -> bytes:
    return json.dumps(event(**overrides)).encode()


def test_valid_event_becomes_a_create_keyed_by_partner_and_event_id() -> None:
    outcome = process_record(record(encoded()), PREFIX, NOW)

    assert isinstance(outcome, IndexAction)
    header_line, source_line = outcome.bulk_lines().splitlines()
    (op_type, bulk), source = json.loads(header_line).popitem(), json.loads(source_line)
    assert op_type == "create"
    assert bulk["_id"] == document_id("p-100", "3f0c9a52-6a5e-4f8e-9d7e-1c2b3a4d5e6f")
    assert bulk["_index"] == "audit-test-2026.11"
    assert source["event"]["id"] == "3f0c9a52-6a5e-4f8e-9d7e-1c2b3a4d5e6f"
    assert outcome.record.offset == 7


def test_the_same_event_id_of_two_partners_is_two_documents() -> None:
    ours = process_record(record(encoded(partner_id="p-a")), PREFIX, NOW)
    theirs = process_record(record(encoded(partner_id="p-b")), PREFIX, NOW)

    assert isinstance(ours, IndexAction) and isinstance(theirs, IndexAction)
    assert ours.doc_id != theirs.doc_id
    assert ours.document["event"]["id"] == theirs.document["event"]["id"]


def test_redelivery_has_the_same_fingerprint_and_other_content_another() -> None:
    first = process_record(record(encoded()), PREFIX, NOW)
    # Same event, other key order and offset notation: a redelivery, not new content.
    again = json.dumps(dict(reversed(event(occurred_at="2026-11-26T09:59:58.120+01:00").items())))
    redelivered = process_record(record(again.encode()), PREFIX, NOW)
    changed = process_record(record(encoded(description="Something else")), PREFIX, NOW)

    assert isinstance(first, IndexAction) and isinstance(redelivered, IndexAction)
    assert isinstance(changed, IndexAction)
    assert first.fingerprint == redelivered.fingerprint == first.document["audit"]["fingerprint"]
    assert changed.fingerprint != first.fingerprint
    assert changed.doc_id == first.doc_id


def test_index_is_chosen_from_occurred_at_in_utc() -> None:
    # 00:30 on the 1st of December in Paris is still November in UTC.
    later = datetime(2026, 12, 5, tzinfo=UTC)
    value = encoded(occurred_at="2026-12-01T00:30:00+01:00")

    outcome = process_record(record(value), PREFIX, later)

    assert isinstance(outcome, IndexAction)
    assert outcome.index == "audit-test-2026.11"


def test_unknown_but_well_formed_action_is_indexed() -> None:
    outcome = process_record(record(encoded(action="billing.invoice_sent")), PREFIX, NOW)

    assert isinstance(outcome, IndexAction)


def test_ingested_at_comes_from_the_caller() -> None:
    outcome = process_record(record(encoded()), PREFIX, NOW)

    assert isinstance(outcome, IndexAction)
    assert json.dumps(outcome.document, default=str).count("2026-11-26T09:00:00") >= 1


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json at all", "not_json"),
        (b"", "not_json"),
        (None, "not_json"),
        (b"\xff\xfe\x00garbage\x80", "not_utf8"),
        (b"[1, 2, 3]", "not_object"),
        (b'"a string"', "not_object"),
        (b'{"event_id": "x"}', "invalid_fields"),
        (b"x" * (256 * 1024 + 1), "too_large"),
    ],
    ids=["text", "empty", "tombstone", "binary", "array", "string", "missing", "300kib"],
)
def test_poison_is_dead_lettered_with_its_reason(value: bytes | None, reason: str) -> None:
    outcome = process_record(record(value), PREFIX, NOW)

    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == reason
    assert outcome.errors  # always says what is wrong
    assert outcome.record.value == value  # unchanged
    json.dumps(outcome.errors)  # header-ready


def test_large_valid_json_over_the_limit_is_too_large() -> None:
    padded = encoded(description="d" * 4000, metadata={"pad": "x" * 300_000})

    outcome = process_record(record(padded), PREFIX, NOW)

    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "too_large"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"schema_version": 2}, "schema_version"),
        ({"event_id": "has spaces"}, "event_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-11-26T09:00:00"}, "occurred_at"),  # no offset
        ({"action": "Not An Action"}, "action"),
        ({"status": "maybe"}, "status"),
        ({"actor": {"type": "robot", "id": "r"}}, "actor.type"),
        ({"source": {"channel": "ui", "ip": "999.1.1.1"}}, "source.ip"),
        ({"partner_id": 42}, "partner_id"),
    ],
)
def test_broken_rules_name_the_field(overrides: dict[str, Any], field: str) -> None:
    outcome = process_record(record(encoded(**overrides)), PREFIX, NOW)

    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == "invalid_fields"
    assert any(key.startswith(field) for key in outcome.errors), outcome.errors


def test_more_than_24_hours_ahead_of_now_is_invalid() -> None:
    ahead = (NOW + timedelta(hours=25)).isoformat()
    within = (NOW + timedelta(hours=23)).isoformat()

    assert isinstance(process_record(record(encoded(occurred_at=ahead)), PREFIX, NOW), DeadLetter)
    assert isinstance(process_record(record(encoded(occurred_at=within)), PREFIX, NOW), IndexAction)


def test_a_normalization_bug_dead_letters_instead_of_stopping(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(prefix: str, event: dict[str, Any], ingested_at: datetime) -> Any:
        raise KeyError("surprise")

    monkeypatch.setattr(pipeline, "serialized_log", broken)

    outcome = process_record(record(encoded()), PREFIX, NOW)

    assert isinstance(outcome, DeadLetter)
    assert outcome.reason == REASON_NORMALIZATION_FAILED


def test_batch_keeps_every_record_once_in_order() -> None:
    records = [record(encoded(event_id=f"e-{i}"), offset=i) for i in range(5)]
    records.insert(2, record(b"{", offset=99))

    processed = process_batch(records, PREFIX, NOW)

    assert [a.document["event"]["id"] for a in processed.actions] == [f"e-{i}" for i in range(5)]
    assert [d.record.offset for d in processed.dead_letters] == [99]


def test_commit_offsets_are_next_offset_per_partition() -> None:
    records = [record(b"", offset=o, partition=p) for o, p in [(5, 0), (9, 1), (6, 0), (10, 1)]]

    assert commit_offsets(records) == {("audit.events", 0): 7, ("audit.events", 1): 11}
    assert commit_offsets([]) == {}
