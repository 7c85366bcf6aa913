"""Replay decisions (schemas.dlq_replay): fix-up commands, the corrected file, what is sent."""

from __future__ import annotations

import json
import sys
from typing import Any

import pytest

from schemas.dlq_letters import Letter, Progress, Selection, letter_from_record
from schemas.dlq_replay import (
    Corrections,
    CorrectionsError,
    FixUp,
    Outgoing,
    Replay,
    ReplayCounts,
    ReplayPlan,
    Skip,
    dry_run_line,
    prepare,
    value_fields,
    value_from_fields,
)
from tests.unit.test_schemas_dlq_letters import FakeClock, make_letter
from tests.unit.test_schemas_event import valid_event

PYTHON = sys.executable


def event_bytes(**changes: Any) -> bytes:
    return json.dumps({**valid_event(), **changes}).encode()


def own_value(letter: Letter) -> bytes | None:
    return letter.value


# --------------------------------------------------------------------------- fix-up


def python_fix_up(code: str, timeout_s: float = 30) -> FixUp:
    return FixUp(f"{PYTHON} -c '{code}'", timeout_s)


def test_fix_up_turns_stdin_into_the_value_sent() -> None:
    fix = python_fix_up(
        'import json, sys; e = json.load(sys.stdin); e["status"] = "success"; print(json.dumps(e))'
    )
    fixed = fix.apply(make_letter(1), event_bytes(status="maybe"))
    assert json.loads(fixed)["status"] == "success"
    assert not fixed.endswith(b"\n")  # print's newline is not part of the value


def test_fix_up_sees_the_letter_in_its_environment() -> None:
    fix = FixUp('printf "%s|%s|%s|%s" "$DLQ_REASON" "$DLQ_OFFSET" "$DLQ_ORIGINAL_TOPIC" "$DLQ_KEY"')
    assert fix.apply(make_letter(4, "not_json"), b"") == b"not_json|4|audit.events|p-1"


def test_a_failing_fix_up_skips_the_letter_with_its_last_complaint() -> None:
    fix = FixUp("cat >/dev/null; echo 'looking...' >&2; echo 'cannot fix status' >&2; exit 3")
    with pytest.raises(Skip, match=r"^the fix-up exited 3: cannot fix status$"):
        fix.apply(make_letter(1), b"{}")


def test_a_fix_up_that_fails_silently_still_says_how() -> None:
    with pytest.raises(Skip, match=r"^the fix-up exited 1$"):
        FixUp("false").apply(make_letter(1), b"{}")


def test_a_fix_up_killed_by_a_signal() -> None:
    with pytest.raises(Skip, match="killed by signal 9"):
        FixUp("kill -9 $$").apply(make_letter(1), b"{}")


def test_a_fix_up_that_hangs_is_stopped_and_skipped() -> None:
    with pytest.raises(Skip, match=r"did not finish within 0.3 s"):
        FixUp("sleep 10", timeout_s=0.3).apply(make_letter(1), b"{}")


def test_a_long_complaint_is_cut_to_one_line() -> None:
    with pytest.raises(Skip) as skipped:
        FixUp(f"{PYTHON} -c 'import sys; sys.exit(\"x\" * 5000)'").apply(make_letter(1), b"")
    assert len(str(skipped.value)) < 400 and "\n" not in str(skipped.value)


# --------------------------------------------------------------------------- line format


@pytest.mark.parametrize(
    ("value", "field"),
    [
        (b'{"a": [1, "\xc3\xa9"]}', "value"),
        (b'{"event_id": "x", oops', "value_text"),
        (b"\xff\xfe\x00\x81", "value_base64"),
        (b"null", "value"),
    ],
)
def test_every_value_survives_a_line(value: bytes, field: str) -> None:
    fields = value_fields(value)
    assert list(fields) == [field]
    again = value_from_fields(json.loads(json.dumps(fields)))
    assert json.loads(again) == json.loads(value) if field == "value" else again == value


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({}, "exactly one of"),
        ({"value": 1, "value_text": "1"}, "exactly one of"),
        ({"value_text": 5}, "value_text must be a string"),
        ({"value_base64": "!!"}, "value_base64 is not base64"),
    ],
)
def test_a_line_value_must_be_one_clear_thing(entry: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        value_from_fields(entry)


def test_a_dry_run_line_names_the_letter_and_what_would_go_where() -> None:
    letter = make_letter(6, value=event_bytes())
    line = json.loads(dry_run_line(Outgoing(letter, "audit.events", b"p-1", letter.value)))
    assert line["dead_letter"] == {
        "partition": 0,
        "offset": 6,
        "reason": "invalid_fields",
        "original_topic": "audit.events",
        "original_partition": 3,
        "original_offset": 106,
        "failed_at": "2026-11-26T09:00:00.000Z",
    }
    assert (line["topic"], line["key"], line["value"]) == ("audit.events", "p-1", valid_event())


# --------------------------------------------------------------------------- corrected file


def lines(*entries: Any) -> list[bytes]:
    return [e if isinstance(e, bytes) else json.dumps(e).encode() for e in entries]


def test_a_dry_run_line_corrects_exactly_its_letter() -> None:
    letter = make_letter(6, "not_json", value=b"{oops")
    edited = json.loads(dry_run_line(Outgoing(letter, "audit.events", b"p-1", letter.value)))
    assert edited.pop("value_text") == "{oops"
    edited["value"] = valid_event()
    corrections = Corrections.from_lines("fixed.jsonl", lines(edited))

    found = corrections.for_letter(letter, lambda: pytest.fail("not needed"))
    assert found is not None and json.loads(found.value) == valid_event()
    assert corrections.for_letter(make_letter(7, "not_json"), lambda: b"{oops") is None
    assert corrections.unused() == []


def test_a_corrected_event_corrects_the_letters_with_its_ids() -> None:
    fixed = {**valid_event(), "status": "success"}
    corrections = Corrections.from_lines("f", lines(b"", fixed))
    ids = {"partner_id": fixed["partner_id"], "event_id": fixed["event_id"]}
    original = json.dumps({**ids, "status": "maybe"}).encode()

    first = corrections.for_letter(make_letter(1), lambda: original)
    again = corrections.for_letter(make_letter(9), lambda: original)  # dead-lettered twice
    assert first is not None and first == again and json.loads(first.value) == fixed
    other = json.dumps({**ids, "partner_id": "p-other"}).encode()
    assert corrections.for_letter(make_letter(2), lambda: other) is None
    assert corrections.for_letter(make_letter(3), lambda: b"{oops") is None


def test_lines_no_letter_took_are_reported() -> None:
    corrections = Corrections.from_lines(
        "f", lines({"dead_letter": {"partition": 0, "offset": 40}, "value": {}}, valid_event())
    )
    assert corrections.unused() == [
        "f line 1: matches no selected dead letter (dead letter 0:40); not sent",
        f"f line 2: matches no selected dead letter (partner p-100, event "
        f"{valid_event()['event_id']}); not sent",
    ]


def test_a_bad_file_names_every_bad_line() -> None:
    position = {"dead_letter": {"partition": 0, "offset": 1}, "value": {}}
    with pytest.raises(CorrectionsError) as bad:
        Corrections.from_lines(
            "f",
            lines(
                b"{oops",
                [1],
                {"no": "ids"},
                {"dead_letter": {"partition": "0", "offset": 1}, "value": {}},
                position,
                position,
                valid_event(),
                valid_event(),
            ),
        )
    assert bad.value.problems == [
        "f line 1: not JSON (Expecting property name enclosed in double quotes: line 1 column 2 "
        "(char 1))",
        "f line 2: not a JSON object",
        'f line 3: neither a --dry-run line (with "dead_letter") nor an event with string '
        "partner_id and event_id",
        'f line 4: "dead_letter" needs integer "partition" and "offset"',
        "f line 6: dead letter 0:1 is corrected already on line 5",
        f"f line 8: partner p-100, event {valid_event()['event_id']} is corrected already on "
        "line 7",
    ]


# --------------------------------------------------------------------------- prepare


def test_plain_replay_sends_the_value_unchanged_with_the_original_key() -> None:
    letter = make_letter(1, value=b"{oops", key=b"p-7")
    assert prepare(letter, ReplayPlan(Selection()), own_value) == Outgoing(
        letter, "audit.events", b"p-7", b"{oops"
    )
    moved = prepare(letter, ReplayPlan(Selection(), to_topic="audit.retry"), own_value)
    assert moved is not None and moved.topic == "audit.retry"


def test_a_headers_only_letter_is_sent_from_its_original_record() -> None:
    letter = make_letter(1, omitted=True)
    sent = prepare(letter, ReplayPlan(Selection()), lambda _: b"the original")
    assert sent is not None and sent.value == b"the original"


def test_a_gone_original_skips_the_letter() -> None:
    def gone(_: Letter) -> bytes:
        raise Skip("no longer retained")

    with pytest.raises(Skip, match="no longer retained"):
        prepare(make_letter(1, omitted=True), ReplayPlan(Selection()), gone)


def test_a_record_without_letter_headers_is_skipped() -> None:
    letter = letter_from_record(0, 1, None, b"x", None)
    with pytest.raises(Skip, match="not a dead letter: missing header"):
        prepare(letter, ReplayPlan(Selection()), own_value)


# --------------------------------------------------------------------------- replay


class Sent(list[Outgoing]):
    def __call__(self, outgoing: Outgoing) -> None:
        self.append(outgoing)


def run(
    letters: list[Letter], plan: ReplayPlan, progress: Progress | None = None
) -> tuple[ReplayCounts, Sent, list[str]]:
    sent, said = Sent(), []
    counts = Replay(plan, own_value, sent, said.append).run(letters, progress or Progress(0, 0))
    return counts, sent, said


def test_replay_sends_the_selection_and_counts_what_it_read() -> None:
    letters = [make_letter(o, "not_json" if o % 2 else "invalid_fields") for o in range(6)]
    counts, sent, said = run(letters, ReplayPlan(Selection(reasons=frozenset({"not_json"}))))
    assert [o.letter.offset for o in sent] == [1, 3, 5]
    assert (counts.read, counts.selected, counts.sent, counts.skipped) == (6, 3, 3, 0)
    # Not fixed, still invalid: counted, but no warning per letter (nobody expected a fix).
    assert counts.still_invalid == 3 and said == []


def test_replay_through_a_fix_up_skips_failures_and_warns_on_what_stays_invalid() -> None:
    letters = [
        make_letter(0, value=event_bytes(status="maybe")),  # the fix-up repairs it
        make_letter(1, value=event_bytes(status="unknown")),  # the fix-up refuses it
        make_letter(2, "not_json", value=b"{oops"),  # passed through unchanged
    ]
    fix = python_fix_up(
        "import json, sys\n"
        "raw = sys.stdin.read()\n"
        "try: e = json.loads(raw)\n"
        'except ValueError: sys.exit(print(raw, end=""))\n'
        'if e["status"] == "unknown": sys.exit("cannot guess the status")\n'
        'e["status"] = "success"; print(json.dumps(e))'
    )
    counts, sent, said = run(letters, ReplayPlan(Selection(), fix_up=fix))

    assert [o.letter.offset for o in sent] == [0, 2]
    assert json.loads(sent[0].value or b"")["status"] == "success" and sent[1].value == b"{oops"
    assert (counts.sent, counts.skipped, counts.still_invalid) == (2, 1, 1)
    assert said == [
        "dlq 0:1 (invalid_fields, from audit.events 3:101): skipped, the fix-up exited 1: "
        "cannot guess the status",
        "dlq 0:2 (not_json, from audit.events 3:102): warning, still invalid (not_json: _event: "
        "Not JSON: Expecting property name enclosed in double quotes: line 1 column 2 (char "
        "1).); sent anyway, the worker will dead-letter it again",
    ]


def test_replay_from_a_file_sends_only_the_letters_it_corrects() -> None:
    fixed = {**valid_event(), "status": "success"}
    corrections = Corrections.from_lines("f", lines(fixed))
    letters = [
        make_letter(0, value=event_bytes(status="maybe")),
        make_letter(1, "not_json", value=b"{oops"),
    ]
    counts, sent, _ = run(letters, ReplayPlan(Selection(), corrections=corrections))
    assert [(o.letter.offset, json.loads(o.value or b"")) for o in sent] == [(0, fixed)]
    assert (counts.sent, counts.not_in_file, counts.skipped) == (1, 1, 0)
    assert "1 not in the corrected file" in counts.summary()


def test_replay_reports_progress() -> None:
    clock = FakeClock()
    progress = Progress(every_letters=2, every_seconds=0, clock=clock)
    _, _, said = run([make_letter(o) for o in range(5)], ReplayPlan(Selection()), progress)
    assert said == [
        "progress: 2 letter(s) read, 2 selected, 2 sent, 0 skipped in 0 s",
        "progress: 4 letter(s) read, 4 selected, 4 sent, 0 skipped in 0 s",
    ]


def test_a_send_failure_stops_the_replay() -> None:
    def refuse(_: Outgoing) -> None:
        raise RuntimeError("topic gone")

    with pytest.raises(RuntimeError, match="topic gone"):
        Replay(ReplayPlan(Selection()), own_value, refuse, print).run(
            [make_letter(0)], Progress(0, 0)
        )
