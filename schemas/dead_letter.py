"""The dead-letter contract: the headers a dead letter carries and the reasons it may give.

Written once here because three parties read it: the worker writes letters
(`consumer.dlq`), operators read and replay them (`audit-log dlq`), and upstream teams look
them up (docs/events.md). A dead letter's value is the original record's value, unchanged
(or absent when the dead-letter topic refused its size, see `HEADER_VALUE_OMITTED`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

HEADER_REASON = "x-dlq-reason"
HEADER_ERRORS = "x-dlq-errors"
HEADER_TOPIC = "x-dlq-original-topic"
HEADER_PARTITION = "x-dlq-original-partition"
HEADER_OFFSET = "x-dlq-original-offset"
HEADER_FAILED_AT = "x-dlq-failed-at"
HEADER_VALUE_OMITTED = "x-dlq-value-omitted"
#: On a record `audit-log dlq replay` re-published: ``<dlq topic>:<partition>:<offset>``.
HEADER_REPLAYED_FROM = "x-dlq-replayed-from"
#: The value of `HEADER_VALUE_OMITTED`: the record is still on its original topic/offset.
VALUE_OMITTED_TOO_LARGE = "too_large_for_dlq"

# Reasons found by validation (schemas.event.InvalidEvent.reason).
REASON_TOO_LARGE = "too_large"
REASON_NOT_UTF8 = "not_utf8"
REASON_NOT_JSON = "not_json"
REASON_NOT_OBJECT = "not_object"
REASON_INVALID_FIELDS = "invalid_fields"
# Reasons found by the worker after validation.
REASON_NORMALIZATION_FAILED = "normalization_failed"
REASON_INDEX_REJECTED = "index_rejected"
#: The same (partner_id, event_id) as a stored log, with other content (SPEC §3).
REASON_ID_CONFLICT = "id_conflict"

REASONS = (
    REASON_TOO_LARGE,
    REASON_NOT_UTF8,
    REASON_NOT_JSON,
    REASON_NOT_OBJECT,
    REASON_INVALID_FIELDS,
    REASON_NORMALIZATION_FAILED,
    REASON_INDEX_REJECTED,
    REASON_ID_CONFLICT,
)


def format_failed_at(moment: datetime) -> str:
    """``2026-11-26T09:00:00.123Z``: the `HEADER_FAILED_AT` format."""
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


@dataclass(frozen=True)
class LetterHeaders:
    """The headers of one dead letter, decoded (what `audit-log dlq` shows and filters on)."""

    reason: str
    original_topic: str
    original_partition: int
    original_offset: int
    failed_at: str
    errors: dict[str, Any] = field(default_factory=dict)
    value_omitted: str | None = None

    def encode(self) -> list[tuple[str, bytes]]:
        """Kafka headers, UTF-8 strings (errors as JSON), in a fixed order."""
        headers = [
            (HEADER_REASON, self.reason),
            (HEADER_ERRORS, json.dumps(self.errors, ensure_ascii=False, sort_keys=True)),
            (HEADER_TOPIC, self.original_topic),
            (HEADER_PARTITION, str(self.original_partition)),
            (HEADER_OFFSET, str(self.original_offset)),
            (HEADER_FAILED_AT, self.failed_at),
        ]
        if self.value_omitted:
            headers.append((HEADER_VALUE_OMITTED, self.value_omitted))
        return [(name, value.encode()) for name, value in headers]


class NotADeadLetter(ValueError):
    """A record on the dead-letter topic without the headers the worker writes."""


def decode_headers(headers: Iterable[tuple[str, bytes | str | None]] | None) -> LetterHeaders:
    """Kafka headers -> `LetterHeaders`; raises `NotADeadLetter` naming what is missing."""
    values: dict[str, str] = {}
    for name, raw in headers or ():
        if raw is None:
            continue
        values[name] = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
    missing = [
        name
        for name in (HEADER_REASON, HEADER_TOPIC, HEADER_PARTITION, HEADER_OFFSET)
        if name not in values
    ]
    if missing:
        raise NotADeadLetter(f"missing header(s) {', '.join(missing)}")
    try:
        partition, offset = int(values[HEADER_PARTITION]), int(values[HEADER_OFFSET])
    except ValueError:
        raise NotADeadLetter("original partition/offset headers are not integers") from None
    try:
        errors = json.loads(values.get(HEADER_ERRORS) or "{}")
    except ValueError:
        errors = {"_headers": [values[HEADER_ERRORS]]}
    return LetterHeaders(
        reason=values[HEADER_REASON],
        original_topic=values[HEADER_TOPIC],
        original_partition=partition,
        original_offset=offset,
        failed_at=values.get(HEADER_FAILED_AT, ""),
        errors=errors if isinstance(errors, dict) else {"_headers": [str(errors)]},
        value_omitted=values.get(HEADER_VALUE_OMITTED),
    )
