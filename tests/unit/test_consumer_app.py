"""The batch handler and the offset committer, with fakes in place of Kafka and Elasticsearch."""

from __future__ import annotations

import asyncio
import json
import stat
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import pytest
from aiokafka.structs import TopicPartition

from consumer.app import TablelessManager, create_app, kafka_credentials
from consumer.backoff import Backoff
from consumer.indexer import BulkOutcome
from consumer.ingest import Ingest
from consumer.offsets import OffsetCommitter
from consumer.pipeline import DeadLetter, IndexAction, RawRecord
from consumer.settings import Settings
from schemas.config import ConfigError
from schemas.dead_letter import REASON_INDEX_REJECTED

VALID = json.dumps(
    {
        "event_id": "e-1",
        "schema_version": 1,
        "occurred_at": "2026-11-26T08:00:00Z",
        "action": "compliance.enable",
        "partner_id": "p-1",
        "actor": {"type": "system", "id": "s"},
        "source": {"channel": "system"},
        "status": "success",
    }
).encode()


def raw(value: bytes, offset: int, partition: int = 0) -> RawRecord:
    return RawRecord(value=value, topic="t", partition=partition, offset=offset)


class FakeIndexer:
    def __init__(self, failures: int = 0, reject: bool = False) -> None:
        self.failures = failures
        self.reject = reject
        self.calls: list[list[str]] = []

    async def index(self, actions: Sequence[IndexAction]) -> BulkOutcome:
        self.calls.append([a.document["event"]["id"] for a in actions])
        if self.failures:
            self.failures -= 1
            raise RuntimeError("a bug")
        if self.reject:
            return BulkOutcome(
                rejected=[DeadLetter(a.record, REASON_INDEX_REJECTED, {}) for a in actions]
            )
        return BulkOutcome(indexed=len(actions))

    async def close(self) -> None: ...


class FakeDlq:
    def __init__(self) -> None:
        self.sent: list[DeadLetter] = []

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        self.sent.extend(letters)

    def close(self) -> None: ...


def ingest(indexer: FakeIndexer, dlq: FakeDlq) -> Ingest:
    return Ingest(Settings(), indexer, dlq, backoff=Backoff(0, 0))  # type: ignore[arg-type]


def test_valid_records_are_indexed_and_poison_dead_lettered() -> None:
    indexer, dlq = FakeIndexer(), FakeDlq()

    asyncio.run(ingest(indexer, dlq).handle([raw(VALID, 0), raw(b"nope", 1)]))

    assert indexer.calls == [["e-1"]]
    assert [(d.record.offset, d.reason) for d in dlq.sent] == [(1, "not_json")]


def test_documents_elasticsearch_rejects_go_to_the_dlq() -> None:
    indexer, dlq = FakeIndexer(reject=True), FakeDlq()

    asyncio.run(ingest(indexer, dlq).handle([raw(VALID, 0)]))

    assert [(d.record.offset, d.reason) for d in dlq.sent] == [(0, REASON_INDEX_REJECTED)]


def test_an_unexpected_error_retries_the_batch_instead_of_raising() -> None:
    indexer, dlq = FakeIndexer(failures=2), FakeDlq()

    asyncio.run(ingest(indexer, dlq).handle([raw(VALID, 0)]))

    assert len(indexer.calls) == 3


def events(*specs: tuple[int, int, int]) -> list[RawRecord]:
    """(partition, offset, generation) -> records as the fetch loop makes them."""
    return [
        RawRecord(value=b"", topic="t", partition=p, offset=o, generation=g) for p, o, g in specs
    ]


class FakeThread:
    def __init__(self, assigned: set[TopicPartition], error: Exception | None = None) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self.assigned = assigned
        self.error = error

    def _ensure_consumer(self) -> Any:
        thread = self

        class Consumer:
            def assignment(self) -> set[TopicPartition]:
                return thread.assigned

            async def commit(self, offsets: dict[TopicPartition, Any]) -> None:
                if thread.error:
                    raise thread.error
                thread.committed.update({tp: meta.offset for tp, meta in offsets.items()})

            def highwater(self, tp: TopicPartition) -> int:
                return 100

        return Consumer()

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        return await fun(*args)


def committer(thread: FakeThread, generation: int = 5) -> OffsetCommitter:
    app = SimpleNamespace(
        consumer_generation_id=generation, consumer=SimpleNamespace(_thread=thread)
    )
    return OffsetCommitter(app)  # type: ignore[arg-type]


def test_commits_next_offset_of_each_assigned_partition() -> None:
    thread = FakeThread({TopicPartition("t", 0), TopicPartition("t", 1)})

    asyncio.run(committer(thread).commit(events((0, 4, 5), (0, 5, 5), (1, 9, 5))))

    assert thread.committed == {TopicPartition("t", 0): 6, TopicPartition("t", 1): 10}


def test_records_fetched_before_a_rebalance_are_not_committed() -> None:
    thread = FakeThread({TopicPartition("t", 0), TopicPartition("t", 1)})

    asyncio.run(committer(thread, generation=6).commit(events((0, 4, 5), (1, 9, 6))))

    assert thread.committed == {TopicPartition("t", 1): 10}


def test_a_partition_read_again_after_a_rebalance_is_committed_as_it_goes() -> None:
    """R6 stalled here: offsets 0-9 handled in generation 5 (not committed), then read again
    from 4 in generation 6; the older, higher entry hid the new progress."""
    thread = FakeThread({TopicPartition("t", 0)})
    offsets = committer(thread, generation=6)
    offsets.handled(events(*((0, o, 5) for o in range(10))))
    offsets.handled(events(*((0, o, 6) for o in range(4, 8))))
    offsets.handled(events((0, 3, 5)))  # a late record of the older generation changes nothing

    asyncio.run(offsets.commit_handled())

    assert thread.committed == {TopicPartition("t", 0): 8}


def test_revoked_partitions_are_not_committed() -> None:
    thread = FakeThread({TopicPartition("t", 1)})

    asyncio.run(committer(thread).commit(events((0, 4, 5), (1, 9, 5))))

    assert thread.committed == {TopicPartition("t", 1): 10}


def test_a_failed_commit_is_logged_not_raised() -> None:
    thread = FakeThread({TopicPartition("t", 0)}, error=RuntimeError("broker down"))

    assert asyncio.run(committer(thread).commit(events((0, 4, 5)))) == {}


def test_app_subscribes_without_faust_acks() -> None:
    app = create_app(
        Settings(topics=("a", "b"), group_id="g-unit"), ingest=ingest(FakeIndexer(), FakeDlq())
    )

    [agent] = app.agents.values()
    channel: Any = agent.channel
    assert set(channel.topics) == {"a", "b"}
    assert channel.acks is False  # so Faust itself never commits our offsets
    assert agent.concurrency == 1
    assert app.conf.id == "g-unit"
    assert app.conf.consumer_auto_offset_reset == "earliest"


def test_the_table_manager_starts_without_faust_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    """Faust's TableManager sleeps 1 s before the conductor may subscribe; ours does not."""
    app = create_app(Settings(), ingest=ingest(FakeIndexer(), FakeDlq()))
    manager = app.tables
    assert isinstance(manager, TablelessManager)
    ran: list[str] = []
    slept: list[float] = []

    async def update_channels() -> None:
        ran.append("update_channels")

    async def start_recovery() -> None:
        ran.append("recovery.start")

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(manager, "_update_channels", update_channels)
    monkeypatch.setattr(manager.recovery, "start", start_recovery)
    monkeypatch.setattr(manager, "sleep", sleep)

    asyncio.run(manager.on_start())

    assert ran == ["update_channels", "recovery.start"]
    assert slept == []


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_app_has_health_and_metrics_pages(path: str) -> None:
    app = create_app(Settings(), ingest=ingest(FakeIndexer(), FakeDlq()))

    assert path in app.web.views


def test_health_pages_bind_loopback_and_state_is_private_by_default() -> None:
    app = create_app(Settings(), ingest=ingest(FakeIndexer(), FakeDlq()))

    assert app.conf.web_bind == "127.0.0.1"
    datadir = Path(str(app.conf.datadir))
    assert datadir != Path(tempfile.gettempdir()) / "audit-worker"  # not a guessable path
    assert datadir.name.startswith("audit-worker-") and datadir.is_dir()
    assert stat.S_IMODE(datadir.stat().st_mode) == 0o700


def test_containers_may_bind_every_interface() -> None:
    settings = Settings(worker_bind="0.0.0.0", state_dir="/var/lib/audit-worker")
    app = create_app(settings, ingest=ingest(FakeIndexer(), FakeDlq()))

    assert (app.conf.web_bind, str(app.conf.datadir)) == ("0.0.0.0", "/var/lib/audit-worker")


def test_kafka_credentials_follow_the_shared_kafka_options() -> None:
    assert kafka_credentials(Settings()) is None
    sasl = kafka_credentials(
        Settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_username="worker",
            kafka_sasl_password="s3cret",
        )
    )
    assert isinstance(sasl, faust.SASLCredentials)
    assert (sasl.username, sasl.mechanism.value, sasl.ssl_context) == ("worker", "PLAIN", None)
    assert isinstance(
        kafka_credentials(Settings(kafka_security_protocol="SSL")), faust.SSLCredentials
    )
    scram_tls = kafka_credentials(
        Settings(
            kafka_security_protocol="SASL_SSL",
            kafka_sasl_mechanism="SCRAM-SHA-512",
            kafka_sasl_username="worker",
            kafka_sasl_password="s3cret",
        )
    )
    assert isinstance(scram_tls, faust.SASLCredentials)
    assert scram_tls.mechanism.value == "SCRAM-SHA-512"
    assert scram_tls.ssl_context is not None  # SASL over TLS keeps the TLS context


def test_a_bad_kafka_ca_file_is_one_config_error(tmp_path: Path) -> None:
    missing = tmp_path / "missing-ca.pem"
    with pytest.raises(ConfigError, match=r"^KAFKA_SSL_CA_LOCATION='.*missing-ca.pem': "):
        kafka_credentials(
            Settings(kafka_security_protocol="SSL", kafka_ssl_ca_location=str(missing))
        )
