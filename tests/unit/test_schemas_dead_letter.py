"""The dead-letter header contract: what the worker writes is what `audit-log dlq` reads."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.dead_letter import (
    HEADER_OFFSET,
    HEADER_REASON,
    LetterHeaders,
    NotADeadLetter,
    decode_headers,
    format_failed_at,
)


def test_encoded_headers_decode_to_the_same_letter() -> None:
    letter = LetterHeaders(
        reason="invalid_fields",
        original_topic="audit.events",
        original_partition=2,
        original_offset=9_000_000_001,
        failed_at=format_failed_at(datetime(2026, 11, 26, 9, 0, 1, 250000, tzinfo=UTC)),
        errors={"actor.role": ["Must be one of: owner."]},
        value_omitted="too_large_for_dlq",
    )

    assert decode_headers(letter.encode()) == letter
    assert letter.failed_at == "2026-11-26T09:00:01.250Z"


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ([], "x-dlq-reason"),
        ([(HEADER_REASON, b"not_json")], "x-dlq-original-topic"),
        (
            [
                (HEADER_REASON, b"not_json"),
                ("x-dlq-original-topic", b"t"),
                ("x-dlq-original-partition", b"0"),
                (HEADER_OFFSET, b"ten"),
            ],
            "not integers",
        ),
    ],
)
def test_a_record_without_the_worker_headers_is_named(
    headers: list[tuple[str, bytes]], words: str
) -> None:
    with pytest.raises(NotADeadLetter, match=words):
        decode_headers(headers)


def test_unparsable_errors_header_is_kept_as_text() -> None:
    headers = [
        (HEADER_REASON, b"not_json"),
        ("x-dlq-original-topic", b"t"),
        ("x-dlq-original-partition", b"0"),
        (HEADER_OFFSET, b"1"),
        ("x-dlq-errors", b"{oops"),
    ]
    assert decode_headers(headers).errors == {"_headers": ["{oops"]}
