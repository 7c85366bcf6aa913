"""Dead letters: original bytes and key, the six headers, and no return before Kafka acked."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer.backoff import Backoff
from consumer.dlq import DeadLetterQueue, dlq_headers, producer_config
from consumer.pipeline import DeadLetter, RawRecord
from consumer.settings import Settings


def letter(offset: int = 41, value: bytes | None = b"\xffnot json") -> DeadLetter:
    record = RawRecord(value=value, topic="audit.events", partition=3, offset=offset, key=b"p-1")
    return DeadLetter(record, "not_utf8", {"_event": ["Not UTF-8: invalid start byte."]})


def test_headers_name_reason_errors_origin_and_time() -> None:
    failed_at = datetime(2026, 11, 26, 9, 0, 1, 250000, tzinfo=UTC)

    headers = dict(dlq_headers(letter(), failed_at))

    assert headers == {
        "x-dlq-reason": b"not_utf8",
        "x-dlq-errors": json.dumps({"_event": ["Not UTF-8: invalid start byte."]}).encode(),
        "x-dlq-original-topic": b"audit.events",
        "x-dlq-original-partition": b"3",
        "x-dlq-original-offset": b"41",
        "x-dlq-failed-at": b"2026-11-26T09:00:01.250Z",
    }


def test_producer_is_idempotent_and_waits_for_all_replicas() -> None:
    config = producer_config(Settings(dlq_topic="dead"))

    assert config["enable.idempotence"] is True
    assert config["acks"] == "all"


class FakeProducer:
    """Delivers on flush(); `fail(n, message)` returns an error for the n-th delivery or None."""

    def __init__(self, fail: Callable[[int, dict[str, Any]], KafkaError | None]) -> None:
        self.fail = fail
        self.queued: list[tuple[dict[str, Any], Callable[..., None]]] = []
        self.delivered: list[dict[str, Any]] = []
        self.attempts = 0

    def produce(
        self,
        topic: str,
        value: Any = None,
        key: Any = None,
        headers: Any = None,
        on_delivery: Any = None,
    ) -> None:
        self.queued.append(
            ({"topic": topic, "value": value, "key": key, "headers": dict(headers)}, on_delivery)
        )

    def poll(self, timeout: float = 0) -> int:
        return 0

    def flush(self, timeout: float = 0) -> int:
        queued, self.queued = self.queued, []
        for message, on_delivery in queued:
            self.attempts += 1
            error = self.fail(self.attempts, message)
            if error is None:
                self.delivered.append(message)
            on_delivery(error, None)
        return 0


def send(producer: FakeProducer, letters: list[DeadLetter]) -> None:
    queue = DeadLetterQueue(
        Settings(dlq_topic="dead"), producer_factory=lambda c: producer, backoff=Backoff(0, 0)
    )
    asyncio.run(queue.send(letters))


def test_original_value_and_key_are_sent_unchanged() -> None:
    producer = FakeProducer(lambda n, m: None)

    send(producer, [letter()])

    [message] = producer.delivered
    assert (message["topic"], message["value"], message["key"]) == ("dead", b"\xffnot json", b"p-1")
    assert message["headers"]["x-dlq-reason"] == b"not_utf8"


def test_failed_deliveries_are_retried_until_acknowledged() -> None:
    # The 2nd and 3rd deliveries fail (broker restarting): only those two are sent again.
    def fail(n: int, message: dict[str, Any]) -> KafkaError | None:
        return KafkaError(KafkaError._MSG_TIMED_OUT) if n in (2, 3) else None

    producer = FakeProducer(fail)

    send(producer, [letter(1), letter(2), letter(3)])

    offsets = sorted(int(m["headers"]["x-dlq-original-offset"]) for m in producer.delivered)
    assert offsets == [1, 2, 3]
    assert producer.attempts == 5


def test_a_value_too_large_for_the_dlq_is_sent_without_it() -> None:
    def fail(n: int, message: dict[str, Any]) -> KafkaError | None:
        return KafkaError(KafkaError.MSG_SIZE_TOO_LARGE) if message["value"] else None

    producer = FakeProducer(fail)

    send(producer, [letter(value=b"x" * 2_000_000)])

    [message] = producer.delivered
    assert message["value"] is None
    assert message["headers"]["x-dlq-value-omitted"] == b"too_large_for_dlq"
    assert message["headers"]["x-dlq-original-offset"] == b"41"


def test_nothing_to_send_is_a_no_op() -> None:
    producer = FakeProducer(lambda n, m: None)

    send(producer, [])

    assert producer.attempts == 0


class RefusingProducer(FakeProducer):
    """librdkafka refusing at produce() itself, as it does above message.max.bytes."""

    def __init__(self, limit: int, transient_failures: int = 0) -> None:
        super().__init__(lambda n, m: None)
        self.limit = limit
        self.transient_failures = transient_failures

    def produce(self, topic: str, value: Any = None, **kwargs: Any) -> None:
        if value is not None and len(value) > self.limit:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        if self.transient_failures:
            self.transient_failures -= 1
            raise KafkaException(KafkaError(KafkaError._TRANSPORT))
        super().produce(topic, value=value, **kwargs)


def test_a_value_refused_at_produce_is_sent_as_headers_only() -> None:
    """Between librdkafka's message.max.bytes and the broker's limit: used to raise out of
    send() and retry the whole batch for ever."""
    producer = RefusingProducer(limit=1_000_000)

    send(producer, [letter(value=b"x" * 1_020_000), letter(offset=42, value=b"small")])

    omitted, kept = producer.delivered
    assert omitted["value"] is None
    assert omitted["headers"]["x-dlq-value-omitted"] == b"too_large_for_dlq"
    assert omitted["headers"]["x-dlq-original-offset"] == b"41"
    assert omitted["headers"]["x-dlq-original-topic"] == b"audit.events"
    assert kept["value"] == b"small"


def test_other_refusals_at_produce_are_retried_not_raised() -> None:
    producer = RefusingProducer(limit=10**9, transient_failures=2)

    send(producer, [letter()])

    [message] = producer.delivered
    assert message["value"] == b"\xffnot json"


@pytest.mark.parametrize(
    ("topic_limit", "expected"),
    [(5_242_880, 5_242_880), (1_048_588, 1_048_588), (10, 1000), (None, None)],
)
def test_the_producer_is_sized_from_the_dlq_topic(
    topic_limit: int | None, expected: int | None
) -> None:
    config = producer_config(Settings(), max_message_bytes=topic_limit)

    assert config.get("message.max.bytes") == expected
