"""Helpers for the worker reliability tests (QUALITY.md R1-R6): data, worker processes, counts.

Every check reads the real systems: Elasticsearch for what is indexed, the DLQ topic for what
was dead-lettered, the consumer group's committed offsets for what the worker claims is done.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from confluent_kafka import Consumer, ConsumerGroupState, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from elasticsearch import Elasticsearch
from elasticsearch.helpers import scan

from deploy.local.processes import Service, free_port
from schemas.catalogue import all_activities
from schemas.dead_letter import decode_headers
from tests.support.processes import wait_until
from tests.support.tokens import TEST_SIGNING_KEY, TEST_SIGNING_PUBLIC_KEY

FULL = os.environ.get("AUDIT_RELIABILITY_SCALE", "").lower() == "full"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def scaled(small: int, full: int = 100_000) -> int:
    """Event count: `small` for `make test`, `full` for `make test-reliability`."""
    return full if FULL else small


# --------------------------------------------------------------------------- data

POISON_KINDS: dict[str, tuple[str, Callable[[dict[str, Any]], bytes]]] = {
    "not_json": ("not_json", lambda e: b'{"event_id": "' + e["event_id"].encode() + b'", oops'),
    "wrong_types": (
        "invalid_fields",
        lambda e: json.dumps({**e, "schema_version": "one", "actor": ["x"]}).encode(),
    ),
    "missing_fields": (
        "invalid_fields",
        lambda e: json.dumps({k: v for k, v in e.items() if k not in {"actor", "status"}}).encode(),
    ),
    "too_large": (
        "too_large",
        lambda e: json.dumps({**e, "description": "x" * (300 * 1024)}).encode(),
    ),
    "bad_timestamp": (
        "invalid_fields",
        lambda e: json.dumps({**e, "occurred_at": "26/11/2026"}).encode(),
    ),
    "binary": ("not_utf8", lambda e: b"\xff\xfe\x00\x81" + os.urandom(64)),
}


def valid_event(run: str, i: int, rng: random.Random, now: datetime) -> dict[str, Any]:
    activities = all_activities()
    activity = activities[i % len(activities)]
    org = f"org-{rng.randrange(500)}"
    return {
        "event_id": f"{run}-{i}",
        "schema_version": 1,
        # 30 days back: several monthly indices, as in production.
        "occurred_at": (now - timedelta(seconds=rng.randrange(30 * 86400))).isoformat(),
        "action": activity.code,
        "partner_id": f"p-{i % 20}",
        "organization": {"id": org, "name": f"Organization {org}"},
        "actor": {
            "type": "partner_user",
            "id": f"u-{rng.randrange(1000)}",
            "name": "Jane Doe",
            "email": "jane@partner.example",
            "role": "admin",
        },
        "source": {"channel": rng.choice(["ui", "api", "system"]), "ip": "203.0.113.9"},
        "object": {"type": "organization", "id": org},
        "status": "failure" if rng.random() < 0.05 else "success",
    }


@dataclass
class Dataset:
    """What was produced, with the Kafka position of every poison record."""

    topic: str
    valid_ids: set[str] = field(default_factory=set)
    poison: dict[tuple[int, int], str] = field(default_factory=dict)  # (partition, offset)

    def add(self, other: Dataset) -> Dataset:
        """Both productions together (distinct seeds give distinct event ids)."""
        assert not self.valid_ids & other.valid_ids
        self.valid_ids |= other.valid_ids
        self.poison.update(other.poison)
        return self

    @property
    def total(self) -> int:
        return len(self.valid_ids) + len(self.poison)

    @property
    def partners(self) -> set[str]:
        """The partner of every valid event (`valid_event`: p-0 .. p-19)."""
        return {f"p-{i}" for i in range(20)} if self.valid_ids else set()


def produce(
    bootstrap: str, topic: str, valid: int, poison_every: int = 100, seed: int = 7
) -> Dataset:
    """`valid` events plus one poison record per `poison_every` (kinds in rotation)."""
    rng = random.Random(seed)
    now = datetime.now(UTC)
    run = f"{topic}-{seed}"
    dataset = Dataset(topic)
    producer = Producer(
        {
            # librdkafka's lines go to Python logging (captured by pytest), not raw stderr.
            "logger": logging.getLogger("harness.producer"),
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
        }
    )
    kinds = list(POISON_KINDS.values())
    failures: list[str] = []

    def remember(reason: str) -> Callable[[Any, Any], None]:
        def on_delivery(error: Any, message: Any) -> None:
            if error is not None:
                failures.append(str(error))
            else:
                dataset.poison[(message.partition(), message.offset())] = reason

        return on_delivery

    for i in range(valid):
        event = valid_event(run, i, rng, now)
        key = event["partner_id"].encode()
        _produce(producer, topic, key, json.dumps(event).encode())
        dataset.valid_ids.add(event["event_id"])
        if poison_every and i % poison_every == poison_every - 1:
            reason, make = kinds[(i // poison_every) % len(kinds)]
            _produce(producer, topic, key, make(event), remember(reason))
    assert producer.flush(60) == 0, "produce did not finish"
    assert not failures, failures[:3]
    return dataset


def _produce(
    producer: Producer,
    topic: str,
    key: bytes,
    value: bytes,
    on_delivery: Callable[[Any, Any], None] | None = None,
) -> None:
    while True:
        try:
            if on_delivery is None:
                producer.produce(topic, key=key, value=value)
            else:
                producer.produce(topic, key=key, value=value, on_delivery=on_delivery)
            producer.poll(0)
            return
        except BufferError:
            producer.poll(0.2)


# --------------------------------------------------------------------------- worker


@dataclass
class WorkerConfig:
    kafka_bootstrap: str
    es_url: str
    topic: str
    dlq_topic: str
    group_id: str
    index_prefix: str
    log_dir: Path
    #: More worker settings (AUDIT_BATCH_MAX_BYTES, ...), over the ones above.
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self, port: int) -> dict[str, str]:
        return self.extra_env | {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap,
            "ELASTICSEARCH_URL": self.es_url,
            "AUDIT_TOPICS": self.topic,
            "AUDIT_DLQ_TOPIC": self.dlq_topic,
            "AUDIT_GROUP_ID": self.group_id,
            "AUDIT_INDEX_PREFIX": self.index_prefix,
            "AUDIT_WORKER_PORT": str(port),
            "AUDIT_SIGNING_KEY": TEST_SIGNING_KEY,
        }


class Worker:
    """One `audit-worker` process (own process group), with its metrics."""

    count = 0

    def __init__(self, config: WorkerConfig) -> None:
        Worker.count += 1
        self.port = free_port()
        self.service = Service(
            "audit-worker", config.env(self.port), config.log_dir / f"worker-{Worker.count}.log"
        )

    def wait_healthy(self, timeout_s: float = 90) -> Worker:
        self.service.wait_http(f"http://127.0.0.1:{self.port}/healthz", timeout_s)
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to clean up, exactly like a crash or an OOM kill."""
        self.service.signal(signal.SIGKILL)
        self.service.process.wait(timeout=30)

    def stop(self, timeout_s: float = 60) -> int:
        return self.service.stop(timeout_s)

    def alive(self) -> bool:
        return self.service.alive()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of a metric's samples from /metrics (those with all of `labels`)."""
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as reply:
            text = reply.read().decode()
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        total = 0.0
        for line in text.splitlines():
            named = line.startswith(name) and line[len(name) : len(name) + 1] in {" ", "{"}
            if named and all(label in line for label in wanted):
                total += float(line.rsplit(" ", 1)[1])
        return total


@contextmanager
def workers(config: WorkerConfig) -> Iterator[list[Worker]]:
    """Every worker started through the list is stopped (killed if need be) at the end."""
    started: list[Worker] = []
    try:
        yield started
    finally:
        for worker in started:
            if worker.alive():
                worker.stop(timeout_s=30)


PARTITIONS = 4
Setup = Callable[..., WorkerConfig]


def worker_setup(
    kafka_bootstrap: str,
    es_url: str,
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
    tmp_path: Path,
) -> Setup:
    """Makes a fresh input topic, DLQ topic, consumer group and index prefix per call."""

    def make(
        partitions: int = PARTITIONS,
        topic_config: dict[str, str] | None = None,
        dlq_config: dict[str, str] | None = None,
    ) -> WorkerConfig:
        topic = create_topic(unique_name("events"), partitions, topic_config)
        dlq = create_topic(f"{topic}.dlq", 1, dlq_config)
        return WorkerConfig(
            kafka_bootstrap,
            es_url,
            topic,
            dlq,
            unique_name("group"),
            unique_name("audit"),
            tmp_path,
        )

    return make


# --------------------------------------------------------------------------- observations


def indexed_count(es: Elasticsearch, prefix: str) -> int:
    es.options(ignore_status=404).indices.refresh(index=f"{prefix}-*")
    return int(
        es.count(index=f"{prefix}-*", ignore_unavailable=True, allow_no_indices=True)["count"]
    )


def indexed_ids(es: Elasticsearch, prefix: str) -> list[str]:
    """The Log ID (`event.id`) of every stored document, one entry per document."""
    es.indices.refresh(index=f"{prefix}-*")
    return [
        hit["_source"]["event"]["id"]
        for hit in scan(
            es,
            index=f"{prefix}-*",
            query={"query": {"match_all": {}}},
            _source=["event.id"],
            size=5000,
        )
    ]


def end_offsets(bootstrap: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "harness-probe"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


def committed_offsets(bootstrap: str, group: str, topic: str, partitions: int) -> dict[int, int]:
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False}
    )
    try:
        tps = consumer.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return {tp.partition: tp.offset for tp in tps}
    finally:
        consumer.close()


def wait_all_committed(
    bootstrap: str,
    group: str,
    topic: str,
    partitions: int,
    timeout_s: float,
    alive: Callable[[], bool] = lambda: True,
) -> None:
    """Until the group has committed the end of every partition (the worker says: all done)."""
    ends = end_offsets(bootstrap, topic, partitions)

    def done() -> bool:
        assert alive(), "the worker stopped"
        try:
            return committed_offsets(bootstrap, group, topic, partitions) == ends
        except Exception:  # the broker restarting in R3
            return False

    wait_until(done, timeout_s, f"group {group} to commit {ends}", interval_s=1.0)


def group_assignment(bootstrap: str, group: str, topic: str) -> list[set[int]]:
    """The partitions of `topic` each member of a stable group holds ([] while rebalancing)."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    if description.state != ConsumerGroupState.STABLE:
        return []
    return [
        {tp.partition for tp in member.assignment.topic_partitions if tp.topic == topic}
        for member in description.members
    ]


@dataclass(frozen=True)
class DeadLettered:
    original_partition: int
    original_offset: int
    reason: str
    value: bytes | None
    original_topic: str = ""
    value_omitted: str | None = None


def dead_letters(bootstrap: str, dlq_topic: str) -> list[DeadLettered]:
    """Every record of the DLQ topic (single partition or not), read to its end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"harness-{time.time()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    metadata = consumer.list_topics(dlq_topic, timeout=10).topics[dlq_topic]
    partitions = list(metadata.partitions)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(dlq_topic, p), timeout=10)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(dlq_topic, p, 0) for p in partitions])
    found: list[DeadLettered] = []
    remaining = sum(ends.values())
    deadline = time.monotonic() + 60
    try:
        while remaining > 0 and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None or message.error():
                continue
            remaining -= 1
            headers = decode_headers(message.headers())
            found.append(
                DeadLettered(
                    headers.original_partition,
                    headers.original_offset,
                    headers.reason,
                    message.value(),
                    headers.original_topic,
                    headers.value_omitted,
                )
            )
    finally:
        consumer.close()
    assert remaining == 0, f"could not read {remaining} DLQ records"
    return found


def assert_exact(
    es: Elasticsearch, prefix: str, dataset: Dataset, bootstrap: str, dlq_topic: str
) -> None:
    """None lost, none doubled, every poison record dead-lettered once with its reason."""
    ids = indexed_ids(es, prefix)
    assert len(ids) == len(set(ids)), "an event was indexed twice"
    missing = dataset.valid_ids - set(ids)
    extra = set(ids) - dataset.valid_ids
    assert not missing and not extra, f"{len(missing)} lost, {len(extra)} unexpected"
    letters = dead_letters(bootstrap, dlq_topic)
    by_position = {(d.original_partition, d.original_offset): d.reason for d in letters}
    # At-least-once: a crash between DLQ ack and commit can repeat a dead letter; never lose one.
    assert by_position == dataset.poison


def assert_verified(es: Elasticsearch, es_url: str, prefix: str, partners: Iterable[str]) -> int:
    """`audit-log verify`'s checks (in process) find nothing for any partner: every stored
    log is covered by a signed digest with its leaf, and every chain is whole. Returns the
    number of digests checked."""
    from schemas.index_template import digest_index
    from schemas.integrity import key_id, load_public_key
    from schemas.integrity_store import StoreAddress, StoreReader
    from schemas.integrity_verify import verify_store

    # The last digests were stored moments ago: make them searchable, as a second would.
    es.options(ignore_status=404).indices.refresh(index=digest_index(prefix))
    key = load_public_key(TEST_SIGNING_PUBLIC_KEY)
    reader = StoreReader(StoreAddress(es_url), prefix)
    window = ("0001-01-01T00:00:00.000Z", "9999-12-31T23:59:59.999Z")
    digests = 0
    for partner in sorted(set(partners)):
        findings = verify_store(
            reader.digests(partner),
            {key_id(key): key},
            reader.logs(partner, window),
            window,
            window[1],  # everything is past the digest lag: the worker committed all of it
        )
        assert findings.clean, f"partner {partner}: {findings.lines()[:10]}"
        digests += findings.checked_digests
    return digests


def record_figures(test: str, **figures: Any) -> None:
    """Append the run's figures to test-artifacts/worker-reliability.jsonl (for the report)."""
    ARTIFACTS.mkdir(exist_ok=True)
    entry = {
        "test": test,
        "scale": "full" if FULL else "small",
        "cores": os.cpu_count(),
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        **figures,
    }
    with (ARTIFACTS / "worker-reliability.jsonl").open("a") as out:
        out.write(json.dumps(entry) + "\n")
    print(json.dumps(entry))


# --------------------------------------------------------------------------- outages


class Stoppable(Protocol):
    """A worker process (Worker) or container (tests/integration/containers.py)."""

    def metric(self, name: str, **labels: str) -> float: ...

    def stop(self, timeout_s: float = 60) -> int: ...


def stop_mid_batch(
    es: Elasticsearch,
    config: WorkerConfig,
    proxy: CuttableProxy,
    worker: Stoppable,
    dataset: Dataset,
) -> int:
    """Cut Elasticsearch (`proxy`, for this worker only) during a batch, then SIGTERM: the
    worker must exit 0 within 30 s and leave the batch uncommitted, every committed offset
    indexed. Needs one partition and no poison, so that offset i is event `{run}-{i}`.
    Returns the committed offset; `proxy` is restored for the next worker."""
    wait_until(lambda: indexed_count(es, config.index_prefix) >= 500, 120, "first batches")
    proxy.cut()
    wait_until(
        lambda: worker.metric("audit_worker_es_retries_total") > 0,
        60,
        "the worker to retry a batch against the missing Elasticsearch",
    )
    before = committed_offsets(config.kafka_bootstrap, config.group_id, config.topic, 1)[0]
    stopping = time.monotonic()
    assert worker.stop(timeout_s=60) == 0
    assert time.monotonic() - stopping < 30, "SIGTERM took too long"
    after = committed_offsets(config.kafka_bootstrap, config.group_id, config.topic, 1)[0]
    assert after == before, "the abandoned batch was committed on the way out"
    run = next(iter(dataset.valid_ids)).rsplit("-", 1)[0]
    indexed = set(indexed_ids(es, config.index_prefix))
    assert {f"{run}-{i}" for i in range(after)} <= indexed, "committed past unindexed"
    assert after < dataset.total, "nothing was in flight: the stop proved nothing"
    proxy.restore()
    return after


class CuttableProxy:
    """A TCP forwarder in front of a service: `cut()` is an outage only this worker sees.

    It lets tests take Elasticsearch away from one worker without stopping the shared server.
    """

    def __init__(self, upstream: str) -> None:
        host, port = upstream.rsplit("//", 1)[-1].rsplit(":", 1)
        self.upstream = (host, int(port))
        self.port = free_port()
        self.is_cut = threading.Event()
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut(self) -> None:
        self.is_cut.set()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                    sock.close()
            self._open.clear()

    def restore(self) -> None:
        self.is_cut.clear()

    def close(self) -> None:
        self.cut()
        self._server.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            if self.is_cut.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update({client, upstream})
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                target.sendall(chunk)
        for sock in (source, target):
            with contextlib.suppress(OSError):
                sock.close()
