"""Dead letters as data: what `audit-log dlq` selects, groups and shows (no Kafka here).

The Kafka side (`schemas.dlq_kafka`) turns records of the dead-letter topic into `Letter`s;
everything below works on those, so it is tested as plain data.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.dead_letter import (
    HEADER_ERRORS,
    HEADER_FAILED_AT,
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
    HEADER_VALUE_OMITTED,
    LetterHeaders,
    NotADeadLetter,
    decode_headers,
)
from schemas.event import parse_rfc3339

#: The group of records on the dead-letter topic that lack the worker's headers.
NOT_A_LETTER = "(no dead-letter headers)"
UNKNOWN_TOPIC = "?"
_LETTER_HEADERS = {
    HEADER_REASON,
    HEADER_ERRORS,
    HEADER_TOPIC,
    HEADER_PARTITION,
    HEADER_OFFSET,
    HEADER_FAILED_AT,
    HEADER_VALUE_OMITTED,
}

RawHeaders = tuple[tuple[str, bytes | None], ...]


@dataclass(frozen=True)
class Letter:
    """One record of the dead-letter topic, its headers decoded."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: LetterHeaders | None  # None: not written by the worker (see `problem`)
    problem: str = ""
    raw_headers: RawHeaders = ()

    @property
    def position(self) -> str:
        """``0:12``: DLQ partition and offset, how the operator names a letter."""
        return f"{self.partition}:{self.offset}"

    @property
    def reason(self) -> str:
        return self.headers.reason if self.headers else NOT_A_LETTER

    @property
    def original_topic(self) -> str:
        return self.headers.original_topic if self.headers else UNKNOWN_TOPIC

    @property
    def failed_at(self) -> datetime | None:
        """The `x-dlq-failed-at` time; None when absent or unreadable."""
        if self.headers is None or not self.headers.failed_at:
            return None
        try:
            return parse_rfc3339(self.headers.failed_at)
        except ValueError:
            return None

    @property
    def value_omitted(self) -> bool:
        return bool(self.headers and self.headers.value_omitted)

    def describe(self) -> str:
        """``dlq 0:12 (invalid_fields, from audit.events 2:345)`` for report lines."""
        if self.headers is None:
            return f"dlq {self.position} {NOT_A_LETTER}"
        origin = self.headers
        return (
            f"dlq {self.position} ({origin.reason}, from {origin.original_topic} "
            f"{origin.original_partition}:{origin.original_offset})"
        )


def letter_from_record(
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None,
) -> Letter:
    """A `Letter` from a Kafka record's parts; a record without the headers is kept too."""
    pairs = headers.items() if isinstance(headers, Mapping) else headers or ()
    raw = tuple((name, raw.encode() if isinstance(raw, str) else raw) for name, raw in pairs)
    try:
        decoded: LetterHeaders | None = decode_headers(raw)
        problem = ""
    except NotADeadLetter as error:
        decoded, problem = None, f"not a dead letter: {error}"
    return Letter(partition, offset, key, value, decoded, problem, raw)


# --------------------------------------------------------------------------- selection


@dataclass(frozen=True)
class Selection:
    """Which letters an operator means: every given criterion must hold.

    Times compare with `x-dlq-failed-at`: at or after `since`, before `until`; a letter
    without a readable time is left out when either is given. Offsets are DLQ offsets,
    inclusive, in every selected partition.
    """

    reasons: frozenset[str] = frozenset()
    original_topics: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None

    def __post_init__(self) -> None:
        if self.since and self.until and self.since >= self.until:
            raise ValueError("--since must be before --until")
        first, last = self.from_offset, self.to_offset
        if first is not None and last is not None and first > last:
            raise ValueError("--from-offset must not be after --to-offset")
        for name, number in (
            ("--partition", self.partition),
            ("--from-offset", self.from_offset),
            ("--to-offset", self.to_offset),
        ):
            if number is not None and number < 0:
                raise ValueError(f"{name} must not be negative")

    @property
    def is_everything(self) -> bool:
        return self == Selection()

    def partitions(self, available: Iterable[int]) -> list[int]:
        return sorted(p for p in available if self.partition in (None, p))

    def offsets(self, low: int, high: int) -> range:
        """The DLQ offsets to read in a partition holding [low, high)."""
        start = max(low, self.from_offset or 0)
        stop = high if self.to_offset is None else min(high, self.to_offset + 1)
        return range(start, max(start, stop))

    def selects(self, letter: Letter) -> bool:
        if self.partition is not None and letter.partition != self.partition:
            return False
        if self.from_offset is not None and letter.offset < self.from_offset:
            return False
        if self.to_offset is not None and letter.offset > self.to_offset:
            return False
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.original_topics and letter.original_topic not in self.original_topics:
            return False
        return self._in_time(letter.failed_at)

    def _in_time(self, failed_at: datetime | None) -> bool:
        if self.since is None and self.until is None:
            return True
        if failed_at is None:
            return False
        return (self.since is None or failed_at >= self.since) and (
            self.until is None or failed_at < self.until
        )


_AGE = re.compile(r"(\d+)\s*([smhd])")
_AGE_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_time(text: str, now: datetime) -> datetime:
    """``--since``/``--until``: RFC 3339, a date or a time without offset (UTC), or an age
    before `now` (``30m``, ``2h``, ``7d``). Raises ValueError with a readable message."""
    text = text.strip()
    age = _AGE.fullmatch(text)
    if age:
        return now - timedelta(**{_AGE_UNITS[age[2]]: int(age[1])})
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"not a time: {text!r} (use RFC 3339 like 2026-11-26T09:00:00Z, a date like "
            "2026-11-26, or an age like 30m, 2h, 7d)"
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_time(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


# --------------------------------------------------------------------------- list


@dataclass
class LetterGroup:
    """The letters of one reason from one original topic."""

    reason: str
    original_topic: str
    count: int = 0
    newest_failed_at: datetime | None = None
    #: DLQ partition -> (first, last) offset of the group's letters there.
    offsets: dict[int, tuple[int, int]] = field(default_factory=dict)

    def add(self, letter: Letter) -> None:
        self.count += 1
        failed_at = letter.failed_at
        if failed_at and (self.newest_failed_at is None or failed_at > self.newest_failed_at):
            self.newest_failed_at = failed_at
        first, last = self.offsets.get(letter.partition, (letter.offset, letter.offset))
        self.offsets[letter.partition] = (min(first, letter.offset), max(last, letter.offset))

    def offsets_text(self) -> str:
        """``0:3-40 1:7``: the DLQ offset range per partition."""
        return " ".join(
            f"{p}:{first}" if first == last else f"{p}:{first}-{last}"
            for p, (first, last) in sorted(self.offsets.items())
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "original_topic": self.original_topic,
            "letters": self.count,
            "newest_failed_at": format_time(self.newest_failed_at)
            if self.newest_failed_at
            else None,
            "dlq_offsets": {
                str(p): [first, last] for p, (first, last) in sorted(self.offsets.items())
            },
        }


def group_letters(letters: Iterable[Letter]) -> list[LetterGroup]:
    """Counts by (reason, original topic), the group with the newest failure first."""
    groups: dict[tuple[str, str], LetterGroup] = {}
    for letter in letters:
        key = (letter.reason, letter.original_topic)
        groups.setdefault(key, LetterGroup(*key)).add(letter)

    def newest_first(group: LetterGroup) -> tuple[float, int, str, str]:
        newest = group.newest_failed_at.timestamp() if group.newest_failed_at else float("-inf")
        return (-newest, -group.count, group.reason, group.original_topic)

    return sorted(groups.values(), key=newest_first)


def format_groups(groups: Iterable[LetterGroup]) -> list[str]:
    """The `dlq list` table, columns aligned."""
    rows = [("REASON", "ORIGINAL TOPIC", "LETTERS", "NEWEST FAILED AT", "DLQ OFFSETS")]
    rows += [
        (
            g.reason,
            g.original_topic,
            str(g.count),
            format_time(g.newest_failed_at),
            g.offsets_text(),
        )
        for g in groups
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]


# --------------------------------------------------------------------------- show


def describe_value(value: bytes | None, limit: int) -> list[str]:
    """The payload for a person: pretty JSON when it is JSON, escaped bytes otherwise;
    at most `limit` characters/bytes of it (0: all)."""
    if value is None:
        return ["value: none (an empty record)"]
    try:
        text = json.dumps(json.loads(value.decode("utf-8")), indent=2, ensure_ascii=False)
        kind = "JSON"
    except (UnicodeDecodeError, ValueError, RecursionError):
        text = _escaped(value[:limit] if limit else value)
        kind = "not JSON, shown escaped"
        if limit and len(value) > limit:
            text += f"... ({len(value) - limit:,} more bytes)"
            kind += f", first {limit:,} bytes"
        return [f"value: {len(value):,} bytes, {kind}", text]
    if limit and len(text) > limit:
        kind += f", first {limit:,} characters shown (--max-bytes 0 shows all)"
        text = text[:limit] + "\n..."
    return [f"value: {len(value):,} bytes, {kind}", text]


def _escaped(data: bytes) -> str:
    """Printable text: invalid UTF-8 as \\xNN, control characters escaped (no terminal tricks)."""
    text = data.decode("utf-8", "backslashreplace")
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def describe_letter(letter: Letter, dlq_topic: str, limit: int) -> list[str]:
    """`dlq show`: the decoded headers, then the payload (or why it is missing)."""
    lines = [f"dead letter {letter.position} on {dlq_topic}"]
    key = _escaped(letter.key) if letter.key is not None else "(none)"
    if letter.headers is None:
        lines.append(f"  {letter.problem or NOT_A_LETTER}")
        lines += [f"  header {name}: {_escaped(raw or b'')}" for name, raw in letter.raw_headers]
        return [*lines, f"  key               {key}", *describe_value(letter.value, limit)]
    origin = letter.headers
    lines += [
        f"  reason            {origin.reason}",
        *_error_lines(origin.errors),
        f"  original record   {origin.original_topic} partition {origin.original_partition} "
        f"offset {origin.original_offset}",
        f"  failed at         {origin.failed_at or '-'}",
        f"  key               {key}",
    ]
    lines += [
        f"  header {name}: {_escaped(raw or b'')}"
        for name, raw in letter.raw_headers
        if name not in _LETTER_HEADERS
    ]
    if letter.value_omitted:
        return [*lines, *_omitted_value(letter)]
    return [*lines, *describe_value(letter.value, limit)]


def _error_lines(errors: dict[str, Any]) -> list[str]:
    if not errors:
        return ["  errors            -"]
    lines: list[str] = []
    for path, messages in errors.items():
        text = " ".join(map(str, messages)) if isinstance(messages, list) else str(messages)
        label = "errors" if not lines else ""
        lines.append(f"  {label:<18}{path}: {text}")
    return lines


def _omitted_value(letter: Letter) -> list[str]:
    assert letter.headers is not None
    origin = letter.headers
    return [
        f"value: omitted ({HEADER_VALUE_OMITTED}: {origin.value_omitted}): the dead-letter "
        "topic refused a value that large, so this letter is headers only.",
        f"  The original record is on {origin.original_topic} partition "
        f"{origin.original_partition} offset {origin.original_offset} while that topic "
        "retains it;",
        f"  `audit-log dlq replay --partition {letter.partition} --from-offset {letter.offset} "
        f"--to-offset {letter.offset}` fetches it from there.",
    ]


# --------------------------------------------------------------------------- progress


class Progress:
    """Says when a long run should report: every `every_letters` letters or every
    `every_seconds` seconds, whichever comes first (0 turns either off)."""

    def __init__(
        self,
        every_letters: int,
        every_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._every_letters = every_letters
        self._every_seconds = every_seconds
        self._clock = clock
        self.started = self._last_time = clock()
        self._last_count = 0

    def due(self, done: int) -> bool:
        now = self._clock()
        by_count = self._every_letters > 0 and done - self._last_count >= self._every_letters
        by_time = self._every_seconds > 0 and now - self._last_time >= self._every_seconds
        if by_count or by_time:
            self._last_count, self._last_time = done, now
            return True
        return False

    def elapsed(self) -> float:
        return self._clock() - self.started
