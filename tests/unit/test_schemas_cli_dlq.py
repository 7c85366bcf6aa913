"""`audit-log dlq` without a broker: argument errors, output and exit codes (Kafka faked)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from schemas import cli
from schemas.dlq_kafka import NoRecord, PartitionSpan, ReplayResult
from schemas.dlq_letters import Letter, Selection
from schemas.dlq_replay import ReplayCounts, ReplayPlan
from tests.unit.test_schemas_dlq_letters import make_letter


def one_line_error(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err and "usage:" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--since", "yesterday"], "argument --since: not a time: 'yesterday'"),
        (["replay", "--all", "--until", "26/11"], "argument --until: not a time"),
        (["list", "--since", "2h", "--until", "3h"], "--since must be before --until"),
        (["list", "--from-offset", "9", "--to-offset", "2"], "--from-offset must not be after"),
        (["list", "--partition", "-1"], "argument --partition: must not be negative"),
        (["show", "x"], "argument OFFSET: not a whole number: 'x'"),
        (["list", "--reason", "typo"], "argument --reason: invalid choice: 'typo'"),
        (["replay"], "say which letters: --reason"),
        (["replay", "--all", "--fix-up", "cat", "--file", "f"], "not allowed with argument"),
        (["replay", "--all", "--to-topic", "audit.events.dlq"], "is the dead-letter topic"),
    ],
)
def test_argument_errors_are_one_readable_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    err = one_line_error(capsys, "dlq", *argv, "--dlq-topic", "audit.events.dlq")
    assert message in err
    assert err.startswith(f"audit-log dlq {argv[0]}:") and "--help)" in err


def test_the_help_says_replay_is_safe_twice(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["dlq", "replay", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "running it twice is safe" in text
    assert "still invalid is dead-lettered again by the worker, never lost" in text
    assert "--dry-run" in text and "--fix-up" in text and "--file" in text


def test_the_dlq_topic_defaults_to_the_workers_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDIT_DLQ_TOPIC", "prod.dlq")
    assert cli._parser().parse_args(["dlq", "list"]).dlq_topic == "prod.dlq"
    monkeypatch.delenv("AUDIT_DLQ_TOPIC")
    assert cli._parser().parse_args(["dlq", "list"]).dlq_topic == "audit.events.dlq"


# --------------------------------------------------------------------------- with fake Kafka


class FakeDlq:
    def __init__(self, letters: list[Letter]) -> None:
        self.letters = letters
        self.spans = [PartitionSpan(0, 0, len(letters))]
        self.selections: list[Selection] = []

    def selected(self, selection: Selection) -> Iterator[Letter]:
        self.selections.append(selection)
        return (letter for letter in self.letters if selection.selects(letter))

    def letter_at(self, partition: int, offset: int) -> Letter:
        for letter in self.letters:
            if (letter.partition, letter.offset) == (partition, offset):
                return letter
        raise NoRecord(f"no record at dlq partition {partition} offset {offset}")

    def describe(self) -> str:
        return "dlq (partition 0: offsets 0-2)"


@pytest.fixture
def fake_dlq(monkeypatch: pytest.MonkeyPatch) -> FakeDlq:
    dlq = FakeDlq(
        [make_letter(0, "not_json", value=b"{oops"), make_letter(1), make_letter(2, "not_json")]
    )

    @contextmanager
    def opened(connection: Any, topic: str) -> Iterator[FakeDlq]:
        yield dlq

    monkeypatch.setattr(cli, "opened_dlq", opened)
    return dlq


def test_list_prints_the_counts(fake_dlq: FakeDlq, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dlq", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "dlq (partition 0: offsets 0-2): 3 letter(s) selected"
    assert out[1].split()[:2] == ["REASON", "ORIGINAL"]
    assert [line.split()[:3] for line in out[2:]] == [
        ["not_json", "audit.events", "2"],
        ["invalid_fields", "audit.events", "1"],
    ]


def test_list_as_json_with_a_filter(fake_dlq: FakeDlq, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dlq", "list", "--json", "--reason", "invalid_fields"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["letters"] == 1
    assert document["partitions"] == [{"partition": 0, "low": 0, "high": 3}]
    assert [(g["reason"], g["letters"]) for g in document["groups"]] == [("invalid_fields", 1)]
    assert fake_dlq.selections == [Selection(reasons=frozenset({"invalid_fields"}))]


def test_show_one_letter(fake_dlq: FakeDlq, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dlq", "show", "0"]) == 0
    out = capsys.readouterr().out
    assert "dead letter 0:0 on audit.events.dlq" in out and "not JSON, shown escaped" in out


def test_show_a_missing_letter_is_one_line_and_exit_1(
    fake_dlq: FakeDlq, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["dlq", "show", "9"]) == 1
    assert capsys.readouterr().err == "audit-log: no record at dlq partition 0 offset 9\n"


def test_show_raw_writes_the_value_bytes(
    fake_dlq: FakeDlq, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    assert cli.main(["dlq", "show", "0", "--raw"]) == 0
    assert capsysbinary.readouterr().out == b"{oops"


class FakeReplay:
    def __init__(self, result: ReplayResult) -> None:
        self.result = result
        self.plans: list[ReplayPlan] = []
        self.dry_runs: list[bool] = []

    def __call__(
        self,
        connection: Any,
        dlq_topic: str,
        plan: ReplayPlan,
        progress: Any,
        say: Any,
        out: Any = None,
    ) -> ReplayResult:
        self.plans.append(plan)
        self.dry_runs.append(out is not None)
        return self.result


def fake_replay(monkeypatch: pytest.MonkeyPatch, **counts: int) -> FakeReplay:
    failures = ["dlq 0:1 -> audit.events: Broker: Message size too large"] * counts.pop(
        "failures", 0
    )
    replay = FakeReplay(ReplayResult(ReplayCounts(**counts), failures, "dlq (partition 0)"))
    monkeypatch.setattr(cli, "run_replay", replay)
    return replay


@pytest.mark.parametrize(
    ("counts", "exit_code"),
    [
        ({"read": 3, "selected": 3, "sent": 3}, 0),
        ({"read": 3, "selected": 3, "sent": 2, "skipped": 1}, 1),
        ({"read": 3, "selected": 3, "sent": 3, "failures": 1}, 2),
    ],
)
def test_replay_exit_codes(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    counts: dict[str, int],
    exit_code: int,
) -> None:
    fake_replay(monkeypatch, **counts)
    assert cli.main(["dlq", "replay", "--all"]) == exit_code
    err = capsys.readouterr().err
    assert "replay from dlq (partition 0) to their original topics: 3 letter(s) read" in err
    if exit_code == 2:
        assert "delivery failed: dlq 0:1 -> audit.events: Broker: Message size too large" in err


def test_replay_passes_the_selection_fix_up_and_dry_run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    replay = fake_replay(monkeypatch, read=2, selected=1, sent=1, still_invalid=1)
    argv = ["dlq", "replay", "--reason", "not_json", "--from-offset", "4", "--dry-run"]
    assert cli.main([*argv, "--fix-up", "jq -c .", "--to-topic", "retry"]) == 0
    plan = replay.plans[0]
    assert plan.selection == Selection(reasons=frozenset({"not_json"}), from_offset=4)
    assert plan.fix_up is not None and plan.fix_up.command == "jq -c ."
    assert plan.to_topic == "retry" and replay.dry_runs == [True]
    err = capsys.readouterr().err
    assert "dry run, to retry: 2 letter(s) read, 1 selected, 1 would be sent" in err
    assert "nothing was sent" in err
    assert "1 of them are still invalid by the current rules" in err


def test_replay_file_problems_stop_before_kafka(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    replay = fake_replay(monkeypatch)
    corrected = tmp_path / "fixed.jsonl"
    corrected.write_text('{"dead_letter": {"partition": 0, "offset": 1}, "value": {}}\n{oops\n')
    assert cli.main(["dlq", "replay", "--file", str(corrected)]) == 2
    assert capsys.readouterr().err.startswith(f"audit-log: {corrected} line 2: not JSON")
    assert replay.plans == []


def test_replay_reports_file_lines_no_letter_took(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    fake_replay(monkeypatch, read=1, selected=1)
    corrected = tmp_path / "fixed.jsonl"
    corrected.write_text('{"dead_letter": {"partition": 0, "offset": 1}, "value": {}}\n')
    assert cli.main(["dlq", "replay", "--file", str(corrected)]) == 1
    assert "line 1: matches no selected dead letter (dead letter 0:1); not sent" in (
        capsys.readouterr().err
    )


def test_a_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["dlq", "replay", "--file", "/nonexistent/fixed.jsonl"]) == 2
    assert capsys.readouterr().err == (
        "audit-log: cannot read /nonexistent/fixed.jsonl: No such file or directory\n"
    )
