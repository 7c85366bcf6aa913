"""AuditPublisher without a broker: a fake confluent Producer records what would be sent."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from schemas import publisher as publisher_module
from schemas.event import MAX_EVENT_BYTES, InvalidEvent
from schemas.kafka_config import bootstrap_servers_from_env, kafka_config_from_env
from schemas.publisher import AuditPublisher, DeliveryError, encode_event
from tests.unit.test_schemas_event import valid_event


class FakeMessage:
    def topic(self) -> str:
        return "audit.events"


class FakeProducer:
    instances: list[FakeProducer] = []  # noqa: RUF012 - test bookkeeping

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.pending: list[Any] = []
        self.fail_with: str | None = None
        self.undelivered = 0
        FakeProducer.instances.append(self)

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        self.sent.append((topic, key, value))
        self.pending.append(on_delivery)

    def poll(self, timeout: float) -> int:
        return 0

    def list_topics(self, timeout: float) -> object:
        return object()

    def flush(self, timeout: float) -> int:
        for callback in self.pending:
            callback(self.fail_with, FakeMessage())
        self.pending.clear()
        return self.undelivered


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.instances.clear()
    monkeypatch.setattr(publisher_module, "Producer", FakeProducer)
    return FakeProducer


def recent_event() -> dict[str, Any]:
    event = valid_event()
    event["occurred_at"] = datetime.now(UTC).isoformat()
    return event


def test_safety_config_cannot_be_overridden(fake: type[FakeProducer]) -> None:
    AuditPublisher(
        "k:9092", **{"acks": "1", "enable.idempotence": False, "security.protocol": "SASL_SSL"}
    )
    config = fake.instances[0].config
    assert config["acks"] == "all" and config["enable.idempotence"] is True
    assert config["bootstrap.servers"] == "k:9092"
    assert config["security.protocol"] == "SASL_SSL"


def test_publish_keys_by_partner_and_sends_json(fake: type[FakeProducer]) -> None:
    with AuditPublisher("k:9092", topic="t") as publisher:
        publisher.publish(recent_event())
    topic, key, value = fake.instances[0].sent[0]
    assert (topic, key) == ("t", b"p-100")
    assert json.loads(value)["event_id"] == valid_event()["event_id"]


def test_invalid_event_is_not_sent(fake: type[FakeProducer]) -> None:
    event = recent_event()
    event["actor"]["role"] = "root"
    publisher = AuditPublisher("k:9092")
    with pytest.raises(InvalidEvent) as caught:
        publisher.publish(event)
    assert "actor.role" in caught.value.errors
    assert fake.instances[0].sent == []


def test_aware_datetime_is_accepted_naive_is_not(fake: type[FakeProducer]) -> None:
    publisher = AuditPublisher("k:9092")
    event = recent_event()
    event["occurred_at"] = datetime.now(timezone(timedelta(hours=2)))
    publisher.publish(event)
    event["occurred_at"] = datetime.now()
    with pytest.raises(InvalidEvent):
        publisher.publish(event)


def test_too_large_is_rejected_before_sending() -> None:
    event = recent_event()
    event["description"] = "x" * 4096
    event["changes"] = [{"field": "f", "old": "y" * 3000, "new": None}] * 100
    with pytest.raises(InvalidEvent) as caught:
        encode_event(event)
    assert caught.value.reason == "too_large"
    assert MAX_EVENT_BYTES < 100 * 3000


def test_delivery_failure_raises_on_flush_and_on_exit(fake: type[FakeProducer]) -> None:
    publisher = AuditPublisher("k:9092")
    fake.instances[0].fail_with = "Broker: Not enough in-sync replicas"
    publisher.publish(recent_event())
    with pytest.raises(DeliveryError, match="in-sync"):
        publisher.flush()
    publisher.flush()  # reported once, then cleared

    with pytest.raises(DeliveryError), AuditPublisher("k:9092") as second:
        fake.instances[1].undelivered = 1
        second.publish(recent_event())


def test_kafka_config_from_env() -> None:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": "b:1",
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "PLAIN",
        "KAFKA_SASL_USERNAME": "u",
        "KAFKA_SASL_PASSWORD": "p",
        "KAFKA_SSL_CA_LOCATION": "/ca.pem",
        "OTHER": "x",
    }
    assert bootstrap_servers_from_env(env) == "b:1"
    assert bootstrap_servers_from_env({}) == "127.0.0.1:9092"
    assert kafka_config_from_env(env) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "PLAIN",
        "sasl.username": "u",
        "sasl.password": "p",
        "ssl.ca.location": "/ca.pem",
    }
    assert kafka_config_from_env({}) == {}


class ThreadedProducer(FakeProducer):
    """Serves delivery reports from whichever thread polls, as librdkafka does; the value
    of an event whose description is "refuse me" fails."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.lock = threading.Lock()
        self.queued: list[tuple[bytes, Any]] = []

    def produce(self, topic: str, value: bytes, key: bytes, on_delivery: Any) -> None:
        with self.lock:
            self.queued.append((value, on_delivery))

    def poll(self, timeout: float) -> int:
        with self.lock:
            queued, self.queued = self.queued, []
        for value, callback in queued:
            refused = json.loads(value).get("description") == "refuse me"
            callback("Broker: Message size too large" if refused else None, FakeMessage())
        return len(queued)


def test_publish_and_wait_reports_each_thread_its_own_delivery(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """flush() hands every caller everyone's failures; publish_and_wait must not."""
    monkeypatch.setattr(publisher_module, "Producer", ThreadedProducer)
    publisher = AuditPublisher("k:9092")
    outcomes: dict[int, str] = {}
    start = threading.Barrier(8)

    def send(number: int) -> None:
        event = recent_event()
        event["event_id"] = f"e-{number}"
        event["description"] = "refuse me" if number == 3 else "fine"
        start.wait()
        try:
            publisher.publish_and_wait(event, timeout=5)
        except DeliveryError:
            outcomes[number] = "failed"
        else:
            outcomes[number] = "acknowledged"

    threads = [threading.Thread(target=send, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert outcomes == {n: "failed" if n == 3 else "acknowledged" for n in range(8)}
    publisher.flush()  # and nothing of theirs is left for a flush() caller


def test_publish_and_wait_gives_up_at_its_deadline(fake: type[FakeProducer]) -> None:
    publisher = AuditPublisher("k:9092")  # the plain fake never reports deliveries on poll
    with pytest.raises(DeliveryError, match="no acknowledgement"):
        publisher.publish_and_wait(recent_event(), timeout=0.3)
