"""R8 on the worker: hostile input never stops ingest, loses an event, or lets a tenant shadow
another (real Kafka, real Elasticsearch, the real `audit-worker` process).

Each test tries one edge of a promise: a record at each size limit (ours, librdkafka's, the
broker's), one event id used by two partners, a reused id with other content (same month
and another month), a closed index, a missing topic, batches of large events.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer
from elasticsearch import Elasticsearch

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings as ApiSettings
from schemas.dead_letter import REASON_ID_CONFLICT
from schemas.document import index_name
from tests.integration.worker_harness import (
    Setup,
    Worker,
    WorkerConfig,
    dead_letters,
    indexed_ids,
    wait_all_committed,
    workers,
)
from tests.support.doubles import RecordingPublisher
from tests.support.events import install_template, make_event
from tests.support.processes import wait_until

MiB = 1024 * 1024
NOW = datetime.now(UTC)


def producer(config: WorkerConfig, max_bytes: int = 1_000_000) -> Producer:
    return Producer(
        {
            "bootstrap.servers": config.kafka_bootstrap,
            "enable.idempotence": True,
            "message.max.bytes": max_bytes,
            "logger": logging.getLogger("test.producer"),
        }
    )


def send(config: WorkerConfig, values: list[bytes], max_bytes: int = 1_000_000) -> list[int]:
    """Produce `values` in order to partition 0; their offsets (all acknowledged)."""
    kafka = producer(config, max_bytes)
    offsets: list[int] = []
    errors: list[str] = []

    def delivered(error: Any, message: Any) -> None:
        if error is None:
            offsets.append(message.offset())
        else:
            errors.append(str(error))

    for value in values:
        kafka.produce(config.topic, value=value, key=b"p-1", partition=0, on_delivery=delivered)
        kafka.flush(30)
    assert not errors, errors
    return offsets


def event_bytes(**fields: Any) -> bytes:
    return json.dumps(make_event(**fields), ensure_ascii=False).encode()


@contextmanager
def caught_up(config: WorkerConfig, **env: str) -> Iterator[Worker]:
    """A worker that has committed the end of the topic (stopped when the block ends)."""
    config = dataclasses.replace(config, extra_env=env)
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        wait_all_committed(
            config.kafka_bootstrap, config.group_id, config.topic, 1, 180, worker.alive
        )
        yield worker


def run_until_committed(config: WorkerConfig, **env: str) -> None:
    with caught_up(config, **env):
        pass


def oversized(total: int) -> bytes:
    """Not an event (over 256 KiB): exactly `total` bytes of JSON."""
    head = b'{"event_id": "big", "description": "'
    return head + b"x" * (total - len(head) - 2) + b'"}'


# --------------------------------------------------------------------------- sizes


@pytest.mark.parametrize(
    "size",
    [
        262_145,  # one byte over our limit
        1_000_001,  # one byte over librdkafka's default message.max.bytes
        1_020_000,  # between librdkafka's default and the broker's default (1,048,588)
    ],
    ids=["over-ours", "over-librdkafka", "under-broker"],
)
def test_a_record_over_a_client_limit_is_dead_lettered_with_its_value(
    es: Elasticsearch, setup: Setup, size: int
) -> None:
    config = setup(partitions=1)
    after = [event_bytes(event_id=f"after-{i}") for i in range(3)]
    offsets = send(config, [oversized(size), *after], max_bytes=1_048_588)

    run_until_committed(config)

    [letter] = dead_letters(config.kafka_bootstrap, config.dlq_topic)
    assert (letter.original_offset, letter.reason) == (offsets[0], "too_large")
    assert letter.value is not None and len(letter.value) == size
    assert sorted(indexed_ids(es, config.index_prefix)) == ["after-0", "after-1", "after-2"]


@pytest.mark.parametrize(
    ("dlq_limit", "value_kept"),
    [(None, False), (str(6 * MiB), True)],
    ids=["dlq-default-headers-only", "dlq-raised-value-kept"],
)
def test_a_5_mb_record_on_a_raised_topic_never_stops_the_partition(
    es: Elasticsearch, setup: Setup, dlq_limit: str | None, value_kept: bool
) -> None:
    config = setup(
        partitions=1,
        topic_config={"max.message.bytes": str(6 * MiB)},
        dlq_config={"max.message.bytes": dlq_limit} if dlq_limit else None,
    )
    offsets = send(
        config, [oversized(5 * MiB), event_bytes(event_id="after-5mb")], max_bytes=6 * MiB
    )

    run_until_committed(config)

    [letter] = dead_letters(config.kafka_bootstrap, config.dlq_topic)
    assert (letter.original_offset, letter.reason) == (offsets[0], "too_large")
    assert letter.original_partition == 0
    if value_kept:
        assert letter.value is not None and len(letter.value) == 5 * MiB
    else:  # headers only, naming where the original still is
        assert letter.value is None
        assert letter.value_omitted == "too_large_for_dlq"
        assert letter.original_topic == config.topic
    assert indexed_ids(es, config.index_prefix) == ["after-5mb"]


# --------------------------------------------------------------------------- tenants


def api_detail(es_url: str, prefix: str, partner: str, log_id: str) -> tuple[int, Any]:
    secret = "hostile-input-test-secret-0123456789abcdef"
    client = create_app(
        ApiSettings(jwt_secret=secret, index_prefix=prefix, elasticsearch_url=es_url),
        publisher=RecordingPublisher(),
    ).test_client()
    token = mint_token(secret, "u-1", partner, "owner", [])
    response = client.get(
        f"/api/v1/audit-logs/{log_id}", headers={"Authorization": f"Bearer {token}"}
    )
    return response.status_code, response.json


def test_two_partners_may_use_the_same_event_id(
    es: Elasticsearch, es_url: str, setup: Setup
) -> None:
    config = setup(partitions=1)
    shared = "shared-id-0001"
    send(
        config,
        [
            event_bytes(event_id=shared, partner_id="p-a", description="Alpha's log"),
            event_bytes(event_id=shared, partner_id="p-b", description="Beta's log"),
        ],
    )

    with caught_up(config) as worker:
        assert worker.metric("audit_worker_indexed_total") == 2

    assert indexed_ids(es, config.index_prefix) == [shared, shared]
    assert dead_letters(config.kafka_bootstrap, config.dlq_topic) == []
    for partner, description in (("p-a", "Alpha's log"), ("p-b", "Beta's log")):
        status, body = api_detail(es_url, config.index_prefix, partner, shared)
        assert status == 200
        assert (body["partner_id"], body["description"]) == (partner, description)
    assert api_detail(es_url, config.index_prefix, "p-c", shared)[0] == 404


def test_a_reused_id_with_other_content_is_an_id_conflict_in_any_month(
    es: Elasticsearch, setup: Setup
) -> None:
    """Same month (the create collides) and another month (another index: only the lookup
    across indices can see it). A true redelivery stays a silent no-op."""
    config = setup(partitions=1)
    now = datetime.now(UTC) - timedelta(minutes=5)
    last_month = now - timedelta(days=40)
    original = event_bytes(event_id="reused-1", occurred_at=now, description="The original")
    send(config, [original])
    run_until_committed(config)  # stored and searchable before the reuses arrive
    offsets = send(
        config,
        [
            original,  # redelivery: same bytes
            event_bytes(event_id="reused-1", occurred_at=now, description="Changed"),
            event_bytes(event_id="reused-1", occurred_at=last_month, description="Moved"),
        ],
    )
    assert index_name("x", now) != index_name("x", last_month)

    with caught_up(config) as worker:
        assert worker.metric("audit_worker_id_conflicts_total") == 2
        assert worker.metric("audit_worker_already_indexed_total") == 1

    letters = dead_letters(config.kafka_bootstrap, config.dlq_topic)
    assert sorted((d.original_offset, d.reason) for d in letters) == [
        (offsets[1], REASON_ID_CONFLICT),
        (offsets[2], REASON_ID_CONFLICT),
    ]
    es.indices.refresh(index=f"{config.index_prefix}-*")
    hits = es.search(index=f"{config.index_prefix}-*", query={"term": {"event.id": "reused-1"}})
    [stored] = hits["hits"]["hits"]
    assert stored["_source"]["message"] == "The original"  # never overwritten


# --------------------------------------------------------------------------- large events


def large_event(i: int, kind: str) -> bytes:
    """A valid event of ~200 KB: a huge actor name, or big change values."""
    if kind == "name":
        actor = {"type": "system", "id": f"s-{i}", "name": f"n{i} " + "ü" * 100_000}
        return event_bytes(event_id=f"large-{i}", actor=actor)
    change = {"field": "settings", "old": "o" * 100_000, "new": "n" * 100_000}
    return event_bytes(event_id=f"large-{i}", changes=[change])


def test_large_events_are_batched_by_bytes_and_searchable_in_their_first_characters(
    es: Elasticsearch, setup: Setup
) -> None:
    config = setup(partitions=1)
    values = [large_event(i, "name" if i % 2 else "changes") for i in range(20)]
    assert all(190_000 < len(v) < 262_144 for v in values)
    send(config, values)

    with caught_up(config, AUDIT_BATCH_MAX_BYTES=str(1 * MiB)) as worker:
        # Every batch closed at ~1 MiB of values (6 events of ~200 KB at most), not at the
        # count (500) or the window: all 20 were waiting when the worker started.
        batches = worker.metric("audit_worker_batch_size_count")
        assert worker.metric("audit_worker_batch_size_bucket", le="10.0") == batches >= 4

    assert len(indexed_ids(es, config.index_prefix)) == 20
    found = es.count(
        index=f"{config.index_prefix}-*",
        query={"match_phrase": {"audit.search.grams": {"query": "n19"}}},
    )["count"]
    assert found == 1


# --------------------------------------------------------------------------- cluster side


def readyz(worker: Worker) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{worker.port}/readyz", timeout=5) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_a_closed_index_is_retried_and_reported_never_dead_lettered(
    es: Elasticsearch, setup: Setup
) -> None:
    config = setup(partitions=1)
    last_month = datetime.now(UTC) - timedelta(days=40)
    closed = index_name(config.index_prefix, last_month)
    install_template(es, config.index_prefix)
    es.indices.create(index=closed)
    es.indices.close(index=closed)
    send(config, [event_bytes(event_id="into-closed", occurred_at=last_month)])

    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        _status, body = wait_until(
            lambda: (reply := readyz(worker))[0] == 503 and reply,
            90,
            "/readyz to report the retrying batch",
        )
        assert "index_closed_exception" in body["reason"]
        assert dead_letters(config.kafka_bootstrap, config.dlq_topic) == []

        es.indices.open(index=closed)
        wait_all_committed(
            config.kafka_bootstrap, config.group_id, config.topic, 1, 120, worker.alive
        )
        assert readyz(worker)[0] == 200
    assert indexed_ids(es, config.index_prefix) == ["into-closed"]
    assert dead_letters(config.kafka_bootstrap, config.dlq_topic) == []


# --------------------------------------------------------------------------- topics


def test_a_missing_dead_letter_topic_stops_the_worker_with_one_line(setup: Setup) -> None:
    config = dataclasses.replace(setup(partitions=1), dlq_topic="t-missing-dlq-topic-0001")
    worker = Worker(config)
    assert worker.service.process.wait(timeout=60) == 2
    lines = [line for line in worker.service.log().splitlines() if "do not exist" in line]
    assert len(lines) == 1 and "t-missing-dlq-topic-0001" in lines[0]
    assert "Traceback" not in worker.service.log()


def test_missing_topics_are_created_when_configured(
    setup: Setup, kafka_admin: Any, unique_name: Any
) -> None:
    config = dataclasses.replace(setup(partitions=1), dlq_topic=unique_name("made-dlq"))
    config = dataclasses.replace(config, extra_env={"AUDIT_CREATE_TOPICS": "true"})
    try:
        with workers(config) as running:
            running.append(Worker(config).wait_healthy())
            assert config.dlq_topic in kafka_admin.list_topics(timeout=10).topics
    finally:
        kafka_admin.delete_topics([config.dlq_topic])
