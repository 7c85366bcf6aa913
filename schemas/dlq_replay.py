"""Replaying dead letters, the decisions: which value goes to which topic, through a fix-up
command or a corrected file, and what is reported (no Kafka here: `schemas.dlq_kafka` reads
the letters and sends what this decides).

Nothing is validated-and-dropped: a value still invalid is sent anyway (with a warning) and
the worker dead-letters it again, so it is never lost.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import subprocess
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas.dlq_letters import Letter, Progress, Selection
from schemas.event import InvalidEvent, parse_event

#: Characters of a fix-up's stderr or a validation summary quoted in one report line.
QUOTE_CHARS = 300


class Skip(Exception):
    """A letter that is not replayed; the message says why, in one line."""


@dataclass(frozen=True)
class Outgoing:
    """One record to (re-)publish for a letter: its original key keeps per-partner order."""

    letter: Letter
    topic: str
    key: bytes | None
    value: bytes | None


def _quote(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= QUOTE_CHARS else text[:QUOTE_CHARS] + "..."


# --------------------------------------------------------------------------- fix-up command


@dataclass(frozen=True)
class FixUp:
    """A shell command that reads a letter's value on stdin and writes the corrected value on
    stdout; a non-zero exit skips the letter. The letter's headers are in its environment."""

    command: str
    timeout_s: float = 30.0

    def apply(self, letter: Letter, value: bytes) -> bytes:
        try:
            done = subprocess.run(  # noqa: S603 - the operator's own command, by design
                ["/bin/sh", "-c", self.command],
                input=value,
                capture_output=True,
                timeout=self.timeout_s,
                env={**os.environ, **fix_up_environment(letter)},
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise Skip(f"the fix-up did not finish within {self.timeout_s:g} s") from None
        except OSError as error:
            raise Skip(f"the fix-up could not start: {error}") from None
        if done.returncode != 0:
            raise Skip(_failure(done.returncode, done.stderr))
        # `jq -c`, `python -c 'print(...)'` end with a newline that is not part of the value.
        return done.stdout.rstrip(b"\r\n")


def _failure(returncode: int, stderr: bytes) -> str:
    how = f"was killed by signal {-returncode}" if returncode < 0 else f"exited {returncode}"
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    # The last line: the message of a traceback, or the script's own complaint.
    return f"the fix-up {how}" + (f": {_quote(lines[-1])}" if lines else "")


def fix_up_environment(letter: Letter) -> dict[str, str]:
    """What a fix-up command may want to know besides the value."""
    env = {
        "DLQ_PARTITION": str(letter.partition),
        "DLQ_OFFSET": str(letter.offset),
        "DLQ_KEY": (letter.key or b"").decode("utf-8", "replace"),
        "DLQ_REASON": letter.reason,
    }
    if letter.headers is not None:
        env |= {
            "DLQ_ORIGINAL_TOPIC": letter.headers.original_topic,
            "DLQ_ORIGINAL_PARTITION": str(letter.headers.original_partition),
            "DLQ_ORIGINAL_OFFSET": str(letter.headers.original_offset),
            "DLQ_ERRORS": json.dumps(letter.headers.errors, ensure_ascii=False),
        }
    return env


# --------------------------------------------------------------------------- the line format


def value_fields(value: bytes | None) -> dict[str, Any]:
    """A record value in a JSON line: ``value`` (JSON), ``value_text`` (UTF-8 but not JSON)
    or ``value_base64`` (anything else), so that every value survives the round trip."""
    if value is None:
        return {"value": None}
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return {"value_base64": base64.b64encode(value).decode("ascii")}
    try:
        return {"value": json.loads(text)}
    except (ValueError, RecursionError):
        return {"value_text": text}


def value_from_fields(entry: dict[str, Any]) -> bytes:
    """The bytes `value_fields` stands for; raises ValueError naming the problem."""
    given = [name for name in ("value", "value_text", "value_base64") if name in entry]
    if len(given) != 1:
        raise ValueError('needs exactly one of "value", "value_text", "value_base64"')
    if given == ["value"]:
        return json.dumps(entry["value"], ensure_ascii=False, separators=(",", ":")).encode()
    if given == ["value_text"] and isinstance(entry["value_text"], str):
        return entry["value_text"].encode("utf-8")
    if given == ["value_base64"] and isinstance(entry["value_base64"], str):
        try:
            return base64.b64decode(entry["value_base64"], validate=True)
        except binascii.Error as error:
            raise ValueError(f"value_base64 is not base64: {error}") from None
    raise ValueError(f"{given[0]} must be a string")


def dry_run_line(outgoing: Outgoing) -> str:
    """What `replay --dry-run` prints for a letter; also a line `replay --file` accepts."""
    letter = outgoing.letter
    origin = letter.headers
    entry: dict[str, Any] = {
        "dead_letter": {
            "partition": letter.partition,
            "offset": letter.offset,
            "reason": letter.reason,
            "original_topic": letter.original_topic,
            "original_partition": origin.original_partition if origin else None,
            "original_offset": origin.original_offset if origin else None,
            "failed_at": origin.failed_at if origin else None,
        },
        "topic": outgoing.topic,
        "key": None if outgoing.key is None else outgoing.key.decode("utf-8", "replace"),
        **value_fields(outgoing.value),
    }
    return json.dumps(entry, ensure_ascii=False)


# --------------------------------------------------------------------------- corrected file


@dataclass(frozen=True)
class Correction:
    line: int
    value: bytes
    names: str  # which letter(s) the line is meant for, for messages


class CorrectionsError(ValueError):
    """The corrected file cannot be used; one message per bad line."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(problems[0])


def event_key(value: bytes | None) -> tuple[str, str] | None:
    """(partner_id, event_id) when the value is a JSON object carrying both as strings."""
    try:
        return _ids(json.loads(value or b""))
    except (ValueError, RecursionError):
        return None


def _ids(decoded: Any) -> tuple[str, str] | None:
    if not isinstance(decoded, dict):
        return None
    partner, event = decoded.get("partner_id"), decoded.get("event_id")
    return (partner, event) if isinstance(partner, str) and isinstance(event, str) else None


@dataclass
class Corrections:
    """A corrected JSON-lines file, mapped to letters. A line is either

    * a line of `replay --dry-run` (with ``"dead_letter": {"partition", "offset"}``), edited:
      it replaces the value of exactly that letter; or
    * a corrected event: it replaces the value of every selected letter whose original value
      has the same ``partner_id`` and ``event_id`` (not-JSON letters need the first form).

    Selected letters without a line are not sent; a line that no selected letter uses is
    reported (`unused`) and not sent: replay re-publishes letters, `audit-log publish` events.
    """

    name: str
    by_position: dict[tuple[int, int], Correction] = field(default_factory=dict)
    by_event: dict[tuple[str, str], Correction] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)

    @classmethod
    def from_lines(cls, name: str, lines: Iterable[bytes]) -> Corrections:
        corrections = cls(name)
        problems = []
        for number, line in enumerate(lines, start=1):
            if line.strip():
                try:
                    corrections._add(number, line)
                except ValueError as error:
                    problems.append(f"{name} line {number}: {error}")
        if problems:
            raise CorrectionsError(problems)
        return corrections

    def _add(self, number: int, line: bytes) -> None:
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError) as error:
            raise ValueError(f"not JSON ({error})") from None
        if not isinstance(entry, dict):
            raise ValueError("not a JSON object")
        if "dead_letter" in entry:
            position = _position(entry["dead_letter"])
            names = f"dead letter {position[0]}:{position[1]}"
            _put(self.by_position, position, Correction(number, value_from_fields(entry), names))
            return
        ids = _ids(entry)
        if ids is None:
            raise ValueError(
                'neither a --dry-run line (with "dead_letter") nor an event with string '
                "partner_id and event_id"
            )
        names = f"partner {ids[0]}, event {ids[1]}"
        _put(self.by_event, ids, Correction(number, line.strip(), names))

    def for_letter(self, letter: Letter, original: Callable[[], bytes | None]) -> Correction | None:
        """The line meant for `letter` (`original` gives its value, read only if needed)."""
        correction = self.by_position.get((letter.partition, letter.offset))
        if correction is None and self.by_event:
            ids = event_key(original())
            correction = self.by_event.get(ids) if ids else None
        if correction is not None:
            self.used.add(correction.line)
        return correction

    def unused(self) -> list[str]:
        """One line per correction no selected letter took."""
        every = [*self.by_position.values(), *self.by_event.values()]
        return [
            f"{self.name} line {c.line}: matches no selected dead letter ({c.names}); not sent"
            for c in sorted(every, key=lambda c: c.line)
            if c.line not in self.used
        ]


def _position(value: Any) -> tuple[int, int]:
    if not isinstance(value, dict):
        raise ValueError('"dead_letter" must be an object with "partition" and "offset"')
    partition, offset = value.get("partition"), value.get("offset")
    if not (isinstance(partition, int) and isinstance(offset, int)):
        raise ValueError('"dead_letter" needs integer "partition" and "offset"')
    return partition, offset


def _put(table: dict[Any, Correction], key: Any, correction: Correction) -> None:
    earlier = table.setdefault(key, correction)
    if earlier is not correction:
        raise ValueError(f"{correction.names} is corrected already on line {earlier.line}")


# --------------------------------------------------------------------------- the replay


@dataclass(frozen=True)
class ReplayPlan:
    selection: Selection
    to_topic: str | None = None
    fix_up: FixUp | None = None
    corrections: Corrections | None = None


@dataclass
class ReplayCounts:
    read: int = 0
    selected: int = 0
    sent: int = 0
    skipped: int = 0
    not_in_file: int = 0
    still_invalid: int = 0

    def summary(self, sent_verb: str = "sent") -> str:
        parts = [
            f"{self.read} letter(s) read",
            f"{self.selected} selected",
            f"{self.sent} {sent_verb}",
            f"{self.skipped} skipped",
        ]
        if self.not_in_file:
            parts.append(f"{self.not_in_file} not in the corrected file")
        return ", ".join(parts)


def prepare(
    letter: Letter, plan: ReplayPlan, original: Callable[[Letter], bytes | None]
) -> Outgoing | None:
    """What to send for `letter`: None when the corrected file has no line for it.

    `original` gives the letter's original value (fetched from the input topic when the
    letter is headers only); it raises `Skip` when that record is gone.
    """
    if letter.headers is None:
        raise Skip(letter.problem or "not a dead letter")
    topic = plan.to_topic or letter.headers.original_topic
    if plan.corrections is not None:
        correction = plan.corrections.for_letter(letter, lambda: original(letter))
        if correction is None:
            return None
        return Outgoing(letter, topic, letter.key, correction.value)
    value = original(letter)
    if plan.fix_up is not None:
        value = plan.fix_up.apply(letter, value or b"")
    return Outgoing(letter, topic, letter.key, value)


@dataclass
class Replay:
    """One replay run: the plan, where values come from and go, and what happened.

    `original` gives a letter's original value (see `prepare`); `send` publishes (or, in a
    dry run, prints); `say` reports a line to the operator.
    """

    plan: ReplayPlan
    original: Callable[[Letter], bytes | None]
    send: Callable[[Outgoing], None]
    say: Callable[[str], None]
    counts: ReplayCounts = field(default_factory=ReplayCounts)

    def run(self, letters: Iterable[Letter], progress: Progress) -> ReplayCounts:
        """Send what `prepare` decides for every selected letter; report skips, progress."""
        for letter in letters:
            self.counts.read += 1
            if self.plan.selection.selects(letter):
                self.counts.selected += 1
                self._one(letter)
            if progress.due(self.counts.read):
                self.say(f"progress: {self.counts.summary()} in {progress.elapsed():.0f} s")
        return self.counts

    def _one(self, letter: Letter) -> None:
        try:
            outgoing = prepare(letter, self.plan, self.original)
        except Skip as skip:
            self.counts.skipped += 1
            self.say(f"{letter.describe()}: skipped, {skip}")
            return
        if outgoing is None:
            self.counts.not_in_file += 1
            return
        problem = still_invalid(outgoing.value)
        if problem:
            self.counts.still_invalid += 1
            if self.plan.fix_up or self.plan.corrections:  # it was meant to be fixed: say so
                self.say(
                    f"{letter.describe()}: warning, still invalid ({problem}); sent anyway, "
                    "the worker will dead-letter it again"
                )
        self.send(outgoing)
        self.counts.sent += 1


def still_invalid(value: bytes | None) -> str | None:
    """Why the worker would dead-letter `value` again (by today's rules), or None."""
    try:
        parse_event(value)
    except InvalidEvent as invalid:
        return _quote(invalid.summary())
    return None
