"""``audit-log`` against the real broker: demo publishes; publish rejects a bad line only."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer

from tests.unit.test_schemas_event import valid_event


def run_cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "schemas.cli", *args],
        input=stdin,
        capture_output=True,
        timeout=120,
        check=False,
    )


def read_values(bootstrap: str, topic: str, expected: int, deadline_s: float = 60) -> list[Any]:
    """Every record of ``topic`` until ``expected`` arrived (or the deadline passed)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"{topic}-reader",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    values: list[Any] = []
    deadline = time.monotonic() + deadline_s
    try:
        while len(values) < expected and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                values.append((message.key(), json.loads(message.value())))
    finally:
        consumer.close()
    return values


def test_demo_publishes_to_the_broker(
    kafka_bootstrap: str, create_topic: Callable[..., str], unique_name: Callable[[str], str]
) -> None:
    topic = create_topic(unique_name("cli-demo"))
    result = run_cli(
        "demo",
        "--count",
        "60",
        "--rate",
        "0",
        "--seed",
        "7",
        "--topic",
        topic,
        "--bootstrap-servers",
        kafka_bootstrap,
    )
    assert result.returncode == 0, result.stderr.decode()
    records = read_values(kafka_bootstrap, topic, 60)
    assert len(records) == 60
    assert all(key == event["partner_id"].encode() for key, event in records)
    assert len({event["action"] for _, event in records}) == 41  # all activities appear


def test_publish_rejects_invalid_line_and_sends_the_rest(
    kafka_bootstrap: str,
    create_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    topic = create_topic(unique_name("cli-publish"))
    good = valid_event() | {"occurred_at": datetime.now(UTC).isoformat()}
    bad = good | {"event_id": "bad-one", "status": "done"}
    lines = [good | {"event_id": "good-1"}, bad, good | {"event_id": "good-2"}]
    path = tmp_path / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))

    result = run_cli("publish", str(path), "--topic", topic, "--bootstrap-servers", kafka_bootstrap)

    stderr = result.stderr.decode()
    assert result.returncode == 1
    assert "line 2" in stderr and "status" in stderr and "Traceback" not in stderr
    records = read_values(kafka_bootstrap, topic, 2)
    assert sorted(event["event_id"] for _, event in records) == ["good-1", "good-2"]


def test_unreachable_broker_is_one_readable_line() -> None:
    result = run_cli(
        "demo", "--count", "1", "--bootstrap-servers", "127.0.0.1:1", "--connect-timeout", "2"
    )
    stderr = result.stderr.decode().strip()
    assert result.returncode == 2
    assert stderr.startswith("audit-log: cannot reach Kafka at 127.0.0.1:1")
    assert "\n" not in stderr
