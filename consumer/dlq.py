"""Dead-letter adapter: the original record, unchanged, to the DLQ topic, acknowledged by Kafka."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, Producer

from consumer import metrics
from consumer.backoff import Backoff
from consumer.health import Health
from consumer.pipeline import DeadLetter
from consumer.settings import Settings
from schemas.dead_letter import (
    HEADER_VALUE_OMITTED,
    VALUE_OMITTED_TOO_LARGE,
    LetterHeaders,
    format_failed_at,
)

log = logging.getLogger(__name__)


class ProducerLike(Protocol):
    def produce(
        self,
        topic: str,
        value: Any = ...,
        key: Any = ...,
        headers: Any = ...,
        on_delivery: Any = ...,
    ) -> None: ...
    def poll(self, timeout: float = ...) -> int: ...
    def flush(self, timeout: float = ...) -> int: ...


def dlq_headers(letter: DeadLetter, failed_at: datetime) -> list[tuple[str, str | bytes | None]]:
    """Headers naming why and where from (`schemas.dead_letter`): UTF-8, errors as JSON."""
    record = letter.record
    headers = LetterHeaders(
        reason=letter.reason,
        original_topic=record.topic,
        original_partition=record.partition,
        original_offset=record.offset,
        failed_at=format_failed_at(failed_at),
        errors=dict(letter.errors),
    ).encode()
    return list(headers)  # the producer's header type is a list of (str, str|bytes|None)


#: librdkafka's bounds for `message.max.bytes`.
LIBRDKAFKA_MIN_MESSAGE_BYTES = 1000
LIBRDKAFKA_MAX_MESSAGE_BYTES = 1_000_000_000
#: librdkafka's default `batch.size` (a larger message still goes, in a batch of its own).
BATCH_BYTES = 1_000_000


def producer_config(settings: Settings, max_message_bytes: int | None = None) -> dict[str, Any]:
    """librdkafka settings; `max_message_bytes` is the DLQ topic's own `max.message.bytes`,
    so a value the topic accepts is never refused by the producer's default (1,000,000)."""
    config = settings.kafka_client_config()
    config.update(
        {
            # Idempotent + acks=all: a retried send is written once, and "acked" means durable.
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # A failed delivery surfaces within 30 s (then we retry) instead of librdkafka's 5 min.
            "message.timeout.ms": 30000,
            "client.id": f"{settings.group_id}-dlq",
            # librdkafka's own log lines go through Python logging (JSON), not raw to stderr.
            "logger": logging.getLogger("consumer.dlq.librdkafka"),
        }
    )
    if max_message_bytes is not None:
        limit = min(
            max(max_message_bytes, LIBRDKAFKA_MIN_MESSAGE_BYTES), LIBRDKAFKA_MAX_MESSAGE_BYTES
        )
        config["message.max.bytes"] = limit
        config["batch.size"] = min(BATCH_BYTES, limit)
    return config


class DeadLetterQueue:
    """Sends dead letters and returns only when Kafka acknowledged every one of them."""

    def __init__(
        self,
        settings: Settings,
        producer_factory: Callable[[dict[str, Any]], ProducerLike] | None = None,
        backoff: Backoff | None = None,
        max_message_bytes: int | None = None,
        health: Health | None = None,
    ) -> None:
        self.topic = settings.dlq_topic
        config = producer_config(settings, max_message_bytes)
        self._producer = producer_factory(config) if producer_factory else Producer(config)
        self._backoff = backoff or Backoff()
        self._health = health or Health()
        self._lock = threading.Lock()

    async def send(self, letters: Sequence[DeadLetter]) -> None:
        """Retry until every letter is acknowledged: the batch's offsets depend on it."""
        pending = list(letters)
        attempt = 0
        failed_at = datetime.now(UTC)
        while pending:
            pending = await asyncio.to_thread(self._send_and_wait, pending, failed_at)
            if pending:
                attempt += 1
                metrics.DLQ_RETRIES.inc()
                delay = self._backoff.delay(attempt)
                self._health.retrying(
                    f"dead-letter topic {self.topic}: {len(pending)} sends failed"
                )
                log.warning(
                    "dead-letter topic %s: %d sends failed; retrying in %.1fs",
                    self.topic,
                    len(pending),
                    delay,
                )
                await asyncio.sleep(delay)
        for letter in letters:
            metrics.DEAD_LETTERED.labels(reason=letter.reason).inc()

    def _send_and_wait(self, letters: list[DeadLetter], failed_at: datetime) -> list[DeadLetter]:
        """Produce all, wait for every delivery report; return those that failed."""
        failed: list[DeadLetter] = []
        remaining = [len(letters)]

        def report(letter: DeadLetter) -> Callable[[Any, Any], None]:
            def on_delivery(error: KafkaError | None, _message: Any) -> None:
                remaining[0] -= 1
                if error is not None:
                    self._log_failure(letter, error)
                    failed.append(self._without_value(letter, error))

            return on_delivery

        with self._lock:  # one batch at a time keeps the bookkeeping simple
            for letter in letters:
                self._produce(letter, failed_at, report(letter))
            while remaining[0] > 0:
                self._producer.flush(1.0)
        return failed

    def _produce(
        self, letter: DeadLetter, failed_at: datetime, on_delivery: Callable[[Any, Any], None]
    ) -> None:
        """Queue one letter; a refusal at `produce()` itself is handled like a failed delivery
        (never raised: an exception here would retry the whole batch for ever)."""
        while True:
            headers = dlq_headers(letter, failed_at)
            value = letter.record.value
            if isinstance(letter, _OmittedValue):
                headers.append((HEADER_VALUE_OMITTED, VALUE_OMITTED_TOO_LARGE.encode()))
                value = None
            try:
                self._producer.produce(
                    self.topic,
                    value=value,
                    key=letter.record.key,
                    headers=headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:  # local queue full: let deliveries drain, then try again
                self._producer.poll(0.5)
            except KafkaException as exception:
                error = exception.args[0] if exception.args else KafkaError(KafkaError._FAIL)
                smaller = self._without_value(letter, error)
                if smaller is letter:  # not a size problem: a failed send, retried later
                    on_delivery(error, None)
                    return
                letter = smaller  # over message.max.bytes: send the headers alone, now

    @staticmethod
    def _without_value(letter: DeadLetter, error: KafkaError) -> DeadLetter:
        # The one permanent failure: the DLQ topic refuses a value this large. Retrying the
        # same bytes would block the partition forever, so keep the headers and drop the value.
        if error.code() == KafkaError.MSG_SIZE_TOO_LARGE and not isinstance(letter, _OmittedValue):
            return _OmittedValue(letter.record, letter.reason, letter.errors)
        return letter

    def _log_failure(self, letter: DeadLetter, error: KafkaError) -> None:
        record = letter.record
        log.warning(
            "dead-letter send failed, will retry",
            extra={
                "original_topic": record.topic,
                "original_partition": record.partition,
                "original_offset": record.offset,
                "error": str(error),
            },
        )

    def close(self, timeout: float = 5.0) -> None:
        try:
            self._producer.flush(timeout)
        except KafkaException:
            log.warning("dead-letter producer did not flush on close")


class _OmittedValue(DeadLetter):
    """A dead letter whose value the DLQ topic refused as too large."""
