"""Dead letters as data (schemas.dlq_letters): selection, grouping, showing, progress."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from schemas.dead_letter import VALUE_OMITTED_TOO_LARGE, LetterHeaders
from schemas.dlq_letters import (
    NOT_A_LETTER,
    Letter,
    Progress,
    Selection,
    describe_letter,
    describe_value,
    format_groups,
    group_letters,
    letter_from_record,
    parse_time,
)

T0 = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def make_letter(
    offset: int,
    reason: str = "invalid_fields",
    topic: str = "audit.events",
    failed_at: datetime | str | None = T0,
    value: bytes | None = b'{"event_id": "e-1", "partner_id": "p-1"}',
    partition: int = 0,
    omitted: bool = False,
    key: bytes | None = b"p-1",
) -> Letter:
    """A letter as the Kafka side builds it, from headers the worker would write."""
    if isinstance(failed_at, datetime):
        failed_at = failed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    headers = LetterHeaders(
        reason=reason,
        original_topic=topic,
        original_partition=3,
        original_offset=100 + offset,
        failed_at=failed_at or "",
        errors={"actor.role": ["Must be one of: owner, super_admin, admin, support."]},
        value_omitted=VALUE_OMITTED_TOO_LARGE if omitted else None,
    ).encode()
    return letter_from_record(partition, offset, key, None if omitted else value, headers)


def test_a_record_with_the_headers_is_a_letter() -> None:
    letter = make_letter(7, reason="not_json")
    assert letter.headers is not None and letter.reason == "not_json"
    assert letter.original_topic == "audit.events" and letter.failed_at == T0
    assert letter.position == "0:7"
    assert letter.describe() == "dlq 0:7 (not_json, from audit.events 3:107)"


def test_a_record_without_the_headers_is_kept_and_named() -> None:
    letter = letter_from_record(1, 4, None, b"x", [("trace", b"abc")])
    assert letter.headers is None and letter.reason == NOT_A_LETTER
    assert "missing header(s) x-dlq-reason" in letter.problem
    assert letter.original_topic == "?" and letter.failed_at is None
    assert letter.raw_headers == (("trace", b"abc"),)


def test_an_unreadable_failed_at_is_no_time() -> None:
    assert make_letter(1, failed_at="yesterday").failed_at is None


# --------------------------------------------------------------------------- selection


def test_an_empty_selection_selects_everything() -> None:
    assert Selection().is_everything
    assert Selection().selects(make_letter(1)) and Selection().selects(
        make_letter(2, failed_at=None)
    )


def test_selection_by_reason_and_original_topic() -> None:
    selection = Selection(
        reasons=frozenset({"not_json", "not_utf8"}), original_topics=frozenset({"a"})
    )
    assert selection.selects(make_letter(1, "not_json", "a"))
    assert not selection.selects(make_letter(2, "invalid_fields", "a"))
    assert not selection.selects(make_letter(3, "not_json", "b"))
    assert not selection.is_everything


def test_selection_by_time_is_since_inclusive_until_exclusive() -> None:
    selection = Selection(since=T0, until=T0 + timedelta(hours=1))
    assert selection.selects(make_letter(1, failed_at=T0))
    assert selection.selects(make_letter(2, failed_at=T0 + timedelta(minutes=59)))
    assert not selection.selects(make_letter(3, failed_at=T0 + timedelta(hours=1)))
    assert not selection.selects(make_letter(4, failed_at=T0 - timedelta(seconds=1)))
    # Without a readable time a letter cannot be said to be inside the window.
    assert not selection.selects(make_letter(5, failed_at=None))
    assert not selection.selects(make_letter(6, failed_at="garbage"))


def test_selection_by_partition_and_inclusive_offsets() -> None:
    selection = Selection(partition=1, from_offset=5, to_offset=7)
    assert [o for o in range(10) if selection.selects(make_letter(o, partition=1))] == [5, 6, 7]
    assert not selection.selects(make_letter(6, partition=0))
    assert selection.partitions([2, 0, 1]) == [1]
    assert Selection().partitions([2, 0, 1]) == [0, 1, 2]


@pytest.mark.parametrize(
    ("from_offset", "to_offset", "low", "high", "expected"),
    [
        (None, None, 3, 10, range(3, 10)),
        (5, None, 3, 10, range(5, 10)),
        (None, 6, 3, 10, range(3, 7)),
        (0, 100, 3, 10, range(3, 10)),
        (20, 30, 3, 10, range(20, 20)),  # past the end: nothing to read
        (None, 1, 3, 10, range(3, 3)),  # already deleted by retention: nothing to read
    ],
)
def test_offsets_to_read_in_a_partition(
    from_offset: int | None, to_offset: int | None, low: int, high: int, expected: range
) -> None:
    assert Selection(from_offset=from_offset, to_offset=to_offset).offsets(low, high) == expected


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"since": T0, "until": T0}, "--since must be before --until"),
        ({"from_offset": 9, "to_offset": 2}, "--from-offset must not be after --to-offset"),
        ({"partition": -1}, "--partition must not be negative"),
    ],
)
def test_contradictory_selections_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Selection(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T10:00:00+01:00", T0),
        ("2026-11-26T09:00:00Z", T0),
        ("2026-11-26T09:00:00", T0),  # no offset: UTC
        ("2026-11-26", T0 - timedelta(hours=9)),
        ("90m", T0 - timedelta(minutes=90)),
        ("2h", T0 - timedelta(hours=2)),
        ("7d", T0 - timedelta(days=7)),
        ("30s", T0 - timedelta(seconds=30)),
    ],
)
def test_parse_time(text: str, expected: datetime) -> None:
    assert parse_time(text, now=T0) == expected


@pytest.mark.parametrize("text", ["yesterday", "", "2h ago", "26/11/2026", "-2h"])
def test_parse_time_refuses_with_a_readable_message(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a time: .*use RFC 3339") as refused:
        parse_time(text, now=T0)
    assert "\n" not in str(refused.value)


# --------------------------------------------------------------------------- list


def test_groups_count_by_reason_and_topic_newest_first() -> None:
    letters = [
        make_letter(0, "not_json", "a", T0),
        make_letter(1, "invalid_fields", "a", T0 + timedelta(hours=2)),
        make_letter(2, "not_json", "a", T0 + timedelta(hours=1)),
        make_letter(3, "invalid_fields", "b", T0),
        make_letter(0, "not_json", "a", T0, partition=1),
        letter_from_record(0, 9, None, b"?", None),
    ]
    groups = group_letters(letters)
    summary = [(g.reason, g.original_topic, g.count, g.newest_failed_at) for g in groups]
    assert summary == [
        ("invalid_fields", "a", 1, T0 + timedelta(hours=2)),
        ("not_json", "a", 3, T0 + timedelta(hours=1)),
        ("invalid_fields", "b", 1, T0),
        (NOT_A_LETTER, "?", 1, None),  # no time: last
    ]
    assert groups[1].offsets == {0: (0, 2), 1: (0, 0)}
    assert groups[1].offsets_text() == "0:0-2 1:0"
    assert groups[1].as_json() == {
        "reason": "not_json",
        "original_topic": "a",
        "letters": 3,
        "newest_failed_at": "2026-11-26T10:00:00.000Z",
        "dlq_offsets": {"0": [0, 2], "1": [0, 0]},
    }
    assert group_letters([]) == []


def test_the_list_table_is_aligned() -> None:
    groups = group_letters([make_letter(4, "not_json"), make_letter(12, "not_json")])
    header, row = format_groups(groups)
    assert header.split() == [
        "REASON",
        "ORIGINAL",
        "TOPIC",
        "LETTERS",
        "NEWEST",
        "FAILED",
        "AT",
        "DLQ",
        "OFFSETS",
    ]
    assert row.split() == ["not_json", "audit.events", "2", "2026-11-26T09:00:00.000Z", "0:4-12"]
    assert row.index("audit.events") == header.index("ORIGINAL TOPIC")


# --------------------------------------------------------------------------- show


def test_a_json_value_is_pretty_printed() -> None:
    head, body = describe_value(b'{"b":1,"a":{"c":"\xc3\xa9"}}', limit=4096)
    assert head == "value: 22 bytes, JSON"
    assert body == json.dumps({"b": 1, "a": {"c": "é"}}, indent=2, ensure_ascii=False)


def test_a_long_json_value_is_cut_and_says_so() -> None:
    value = json.dumps({"description": "x" * 10_000}).encode()
    head, body = describe_value(value, limit=100)
    assert "first 100 characters shown (--max-bytes 0 shows all)" in head
    assert len(body) < 110
    assert len(describe_value(value, limit=0)[1]) > 10_000


def test_bytes_that_are_not_json_are_escaped_and_cut() -> None:
    head, body = describe_value(b"\xff\xfe\x1b[31mred\n" + b"z" * 50, limit=11)
    assert head == "value: 61 bytes, not JSON, shown escaped, first 11 bytes"
    assert body == "\\xff\\xfe\\x1b[31mred\\n... (50 more bytes)"
    assert "\x1b" not in body  # no terminal escape reaches the screen


def test_no_value() -> None:
    assert describe_value(None, 10) == ["value: none (an empty record)"]


def test_show_decodes_the_headers() -> None:
    text = "\n".join(describe_letter(make_letter(5), "audit.events.dlq", 4096))
    assert "dead letter 0:5 on audit.events.dlq" in text
    assert "reason            invalid_fields" in text
    assert "errors            actor.role: Must be one of: owner" in text
    assert "original record   audit.events partition 3 offset 105" in text
    assert "failed at         2026-11-26T09:00:00.000Z" in text
    assert "key               p-1" in text
    assert '"event_id": "e-1"' in text


def test_show_says_clearly_when_the_value_was_omitted() -> None:
    text = "\n".join(describe_letter(make_letter(5, omitted=True), "dlq", 4096))
    assert "value: omitted (x-dlq-value-omitted: too_large_for_dlq)" in text
    assert "refused a value that large" in text
    assert "audit.events partition 3 offset 105" in text
    assert "audit-log dlq replay --partition 0 --from-offset 5 --to-offset 5" in text


def test_show_of_a_record_that_is_not_a_letter_lists_its_headers() -> None:
    letter = letter_from_record(0, 2, None, b"hi", [("trace", b"t-1")])
    text = "\n".join(describe_letter(letter, "dlq", 4096))
    assert "not a dead letter: missing header(s)" in text
    assert "header trace: t-1" in text and "key               (none)" in text


# --------------------------------------------------------------------------- progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_progress_every_n_letters_or_every_s_seconds() -> None:
    clock = FakeClock()
    progress = Progress(every_letters=3, every_seconds=10, clock=clock)
    assert [n for n in range(1, 8) if progress.due(n)] == [3, 6]
    clock.now += 10
    assert progress.due(7)  # by time, only 1 letter later
    assert not progress.due(8)
    assert progress.elapsed() == 10


def test_progress_can_be_switched_off() -> None:
    clock = FakeClock()
    progress = Progress(every_letters=0, every_seconds=0, clock=clock)
    clock.now += 1000
    assert not any(progress.due(n) for n in range(10_000))
