"""audit-log without a broker (a fake producer): line-level rejection and exit codes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from schemas import cli
from tests.unit.test_schemas_publisher import FakeProducer, fake, recent_event

__all__ = ["fake"]  # the fixture is used by name


def test_publish_rejects_bad_lines_and_sends_the_rest(
    fake: type[FakeProducer], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = recent_event()
    bad["actor"]["type"] = "robot"
    lines = [
        json.dumps(recent_event()),
        json.dumps(bad),
        "",
        "{oops",
        json.dumps([1]),
        json.dumps({**recent_event(), "event_id": "second"}),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n")

    assert cli.main(["publish", str(path), "--bootstrap-servers", "k:1"]) == 1

    err = capsys.readouterr().err
    assert "line 2: rejected" in err and "actor.type" in err and "one of" in err
    assert "line 4: rejected, not_json" in err
    assert "line 5: rejected, not_object" in err
    assert "published 2 event(s)" in err and "rejected 3" in err
    sent = [json.loads(value)["event_id"] for _, _, value in fake.instances[0].sent]
    assert sent == [recent_event()["event_id"], "second"]


def test_publish_reads_stdin(fake: type[FakeProducer], monkeypatch: pytest.MonkeyPatch) -> None:
    stdin = io.TextIOWrapper(io.BytesIO(json.dumps(recent_event()).encode() + b"\n"))
    monkeypatch.setattr("sys.stdin", stdin)
    assert cli.main(["publish", "-", "--topic", "t"]) == 0
    assert fake.instances[0].sent[0][0] == "t"


def test_demo_publishes_count(fake: type[FakeProducer]) -> None:
    assert cli.main(["demo", "--count", "50", "--rate", "0", "--seed", "1"]) == 0
    assert len(fake.instances[0].sent) == 50


def test_unreachable_broker_is_one_line(
    fake: type[FakeProducer], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def unreachable(self: Any, timeout: float) -> None:
        raise KafkaException(KafkaError(KafkaError._TRANSPORT, "Broker transport failure"))

    monkeypatch.setattr(FakeProducer, "list_topics", unreachable)
    assert cli.main(["demo", "--count", "1", "--bootstrap-servers", "nowhere:9"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "cannot reach Kafka at nowhere:9" in err
    assert "Traceback" not in err


def test_missing_file_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["publish", "/nonexistent/events.jsonl"]) == 2
    assert "cannot read /nonexistent/events.jsonl" in capsys.readouterr().err
