"""`audit-log dlq` against the real Kafka and the real worker (`audit-worker` process).

The worker dead-letters what is invalid; the operator lists, shows and replays it; the
worker indexes what the fix-up repaired and dead-letters again what is still invalid.
"""

from __future__ import annotations

import functools
import json
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from elasticsearch import Elasticsearch

from deploy.local.processes import free_port
from schemas.dlq_kafka import READER_GROUP
from tests.integration.worker_harness import (
    Setup,
    Worker,
    WorkerConfig,
    committed_offsets,
    dead_letters,
    end_offsets,
    indexed_ids,
    valid_event,
    wait_all_committed,
    workers,
)

NOW = datetime.now(UTC)

# Reads a letter's value on stdin. An event with a capitalised role is repaired; one whose
# status cannot be guessed is refused (exit 1 with a message); anything that is not JSON is
# passed through unchanged, so that the worker dead-letters it again.
FIX_UP = """\
import json, sys
raw = sys.stdin.buffer.read()
try:
    event = json.loads(raw)
except ValueError:
    sys.stdout.buffer.write(raw)
    sys.exit(0)
if event["status"] not in ("success", "failure"):
    sys.exit("cannot guess the status")
event["actor"]["role"] = event["actor"]["role"].lower()
event["description"] = (event.get("description") or "")[:100]
print(json.dumps(event))
"""


def run_dlq(bootstrap: str, dlq_topic: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`audit-log dlq ARGS` as an operator runs it, a process of its own."""
    where = ["--bootstrap-servers", bootstrap, "--dlq-topic", dlq_topic]
    return subprocess.run(
        [sys.executable, "-m", "schemas.cli", "dlq", *args, *where],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def cli_for(config: WorkerConfig) -> Callable[..., subprocess.CompletedProcess[str]]:
    return functools.partial(run_dlq, config.kafka_bootstrap, config.dlq_topic)


def event(config: WorkerConfig, i: int, **changes: Any) -> dict[str, Any]:
    return {**valid_event(config.topic, i, random.Random(i), NOW), **changes}


def produce(config: WorkerConfig, records: list[tuple[str, bytes]], partition: int = -1) -> None:
    producer = Producer({"bootstrap.servers": config.kafka_bootstrap, "enable.idempotence": True})
    for key, value in records:
        producer.produce(config.topic, key=key.encode(), value=value, partition=partition)
    assert producer.flush(30) == 0


def caught_up(config: WorkerConfig, worker: Worker, partitions: int) -> None:
    """Until the worker committed the end of every input partition: all of it is settled."""
    wait_all_committed(
        config.kafka_bootstrap, config.group_id, config.topic, partitions, 120, worker.alive
    )


@contextmanager
def running_worker(config: WorkerConfig) -> Iterator[Worker]:
    with workers(config) as started:
        worker = Worker(config).wait_healthy()
        started.append(worker)
        yield worker


def reasons(config: WorkerConfig) -> list[str]:
    return sorted(
        letter.reason for letter in dead_letters(config.kafka_bootstrap, config.dlq_topic)
    )


def write_fix_up(tmp_path: Path) -> str:
    script = tmp_path / "fix_up.py"
    script.write_text(FIX_UP)
    return f"{sys.executable} {script}"


def test_list_show_fix_up_replay_twice_and_a_corrected_file(
    es: Elasticsearch, setup: Setup, tmp_path: Path
) -> None:
    config = setup(partitions=2)
    run_cli = cli_for(config)
    valid = [event(config, i) for i in range(6)]
    fixable = [
        event(config, 10 + i, actor={"type": "system", "id": "s", "role": "Admin"})
        for i in range(3)
    ]
    refused = event(config, 20, status="maybe")
    records = [(e["partner_id"], json.dumps(e).encode()) for e in [*valid, *fixable, refused]]
    records += [("p-1", b'{"event_id": "half-written-1", oops'), ("p-2", b"{not json")]
    produce(config, records)
    fix_up = write_fix_up(tmp_path)

    with running_worker(config) as worker:
        caught_up(config, worker, 2)
        assert reasons(config) == ["invalid_fields"] * 4 + ["not_json"] * 2
        assert len(indexed_ids(es, config.index_prefix)) == 6

        # list: counts by reason and original topic (JSON and table).
        listed = run_cli("list", "--json")
        assert listed.returncode == 0, listed.stderr
        groups = {
            (g["reason"], g["original_topic"]): g for g in json.loads(listed.stdout)["groups"]
        }
        assert {key: g["letters"] for key, g in groups.items()} == {
            ("invalid_fields", config.topic): 4,
            ("not_json", config.topic): 2,
        }
        table = run_cli("list", "--reason", "not_json").stdout
        assert "2 letter(s) selected" in table and f"not_json  {config.topic}" in table

        # show: one letter, headers decoded and payload.
        first_not_json = groups[("not_json", config.topic)]["dlq_offsets"]["0"][0]
        shown = run_cli("show", str(first_not_json))
        assert shown.returncode == 0, shown.stderr
        assert "reason            not_json" in shown.stdout
        assert f"original record   {config.topic} partition" in shown.stdout
        assert "not JSON, shown escaped" in shown.stdout

        # A dry run prints what would be sent, and sends nothing.
        input_ends = end_offsets(config.kafka_bootstrap, config.topic, 2)
        dry = run_cli("replay", "--all", "--fix-up", fix_up, "--dry-run")
        assert dry.returncode == 1, dry.stderr  # 1: the refused letter is skipped
        would_send = [json.loads(line) for line in dry.stdout.splitlines()]
        assert len(would_send) == 5
        assert {line["value"]["actor"]["role"] for line in would_send if "value" in line} == {
            "admin"
        }
        assert "nothing was sent" in dry.stderr
        assert end_offsets(config.kafka_bootstrap, config.topic, 2) == input_ends

        # The replay: repaired events get indexed, the refused one is skipped with a line,
        # the still-invalid ones are dead-lettered again (never lost).
        replay = run_cli("replay", "--all", "--fix-up", fix_up, "--progress-every", "2")
        assert replay.returncode == 1, replay.stderr
        assert "skipped, the fix-up exited 1: cannot guess the status" in replay.stderr
        assert "progress: 2 letter(s) read" in replay.stderr
        assert "6 letter(s) read, 6 selected, 5 sent, 1 skipped" in replay.stderr
        caught_up(config, worker, 2)
        ids = indexed_ids(es, config.index_prefix)
        assert sorted(ids) == sorted(e["event_id"] for e in [*valid, *fixable])
        assert reasons(config) == ["invalid_fields"] * 4 + ["not_json"] * 4

        # The same letters again (DLQ offsets 0-5): nothing doubles; the not-JSON ones come
        # back once more, as they must.
        again = run_cli("replay", "--to-offset", "5", "--fix-up", fix_up)
        assert again.returncode == 1, again.stderr
        caught_up(config, worker, 2)
        assert sorted(indexed_ids(es, config.index_prefix)) == sorted(ids)
        assert reasons(config) == ["invalid_fields"] * 4 + ["not_json"] * 6

        # A corrected file: the refused event, with a status, matched by its ids.
        corrected = tmp_path / "corrected.jsonl"
        corrected.write_text(json.dumps({**refused, "status": "failure"}) + "\n")
        from_file = run_cli("replay", "--file", str(corrected))
        assert from_file.returncode == 0, from_file.stderr
        assert "1 sent" in from_file.stderr and "not in the corrected file" in from_file.stderr
        caught_up(config, worker, 2)
        assert refused["event_id"] in indexed_ids(es, config.index_prefix)
        assert len(indexed_ids(es, config.index_prefix)) == 10

    # None of it joined a consumer group or committed an offset.
    assert all(
        offset < 0
        for offset in committed_offsets(
            config.kafka_bootstrap, READER_GROUP, config.dlq_topic, 1
        ).values()
    )


def test_a_headers_only_letter_is_replayed_from_its_original_record(
    es: Elasticsearch, setup: Setup, tmp_path: Path
) -> None:
    """A DLQ that refuses large values keeps headers only; replay fetches the original from
    the input topic while it is retained, and says so when it is not."""
    config = setup(partitions=1, dlq_config={"max.message.bytes": "2048"})
    run_cli = cli_for(config)
    gone, kept = (event(config, i, description="x" * 5000) for i in (1, 2))  # > 4096: invalid
    produce(config, [(e["partner_id"], json.dumps(e).encode()) for e in (gone, kept)], 0)

    with running_worker(config) as worker:
        caught_up(config, worker, 1)
        letters = dead_letters(config.kafka_bootstrap, config.dlq_topic)
        assert [(d.reason, d.value, d.value_omitted) for d in letters] == [
            ("invalid_fields", None, "too_large_for_dlq")
        ] * 2

        shown = run_cli("show", "0")
        assert "value: omitted (x-dlq-value-omitted: too_large_for_dlq)" in shown.stdout
        assert f"{config.topic} partition 0 offset 0" in shown.stdout

        # Retention takes the first original away.
        admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
        for future in admin.delete_records([TopicPartition(config.topic, 0, 1)]).values():
            future.result(timeout=30)

        replay = run_cli("replay", "--all", "--fix-up", write_fix_up(tmp_path))
        assert replay.returncode == 1, replay.stderr
        assert (
            f"dlq 0:0 (invalid_fields, from {config.topic} 0:0): skipped, its value was too "
            f"large for the DLQ and {config.topic} 0:0 cannot be read: no record at "
            f"{config.topic} partition 0 offset 0 (partition 0: offsets 1-1)"
        ) in replay.stderr
        assert "1 sent, 1 skipped" in replay.stderr
        caught_up(config, worker, 1)
        assert indexed_ids(es, config.index_prefix) == [kept["event_id"]]


def test_unreachable_broker_and_missing_topic_are_one_line(kafka_bootstrap: str) -> None:
    missing = run_dlq(kafka_bootstrap, "t-missing-dlq", "list")
    assert (missing.returncode, missing.stderr) == (
        2,
        f"audit-log: topic t-missing-dlq does not exist on {kafka_bootstrap}\n",
    )
    nowhere = f"127.0.0.1:{free_port()}"
    unreachable = run_dlq(nowhere, "t-dlq", "replay", "--all", "--connect-timeout", "2")
    assert unreachable.returncode == 2
    assert unreachable.stderr.startswith(f"audit-log: cannot reach Kafka at {nowhere}: ")
    assert unreachable.stderr.count("\n") == 1 and "Traceback" not in unreachable.stderr
