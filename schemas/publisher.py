"""The publisher SDK for upstream services: validated audit events onto Kafka.

    with AuditPublisher("kafka:9092") as publisher:
        publisher.publish(event)   # raises InvalidEvent (with field errors) before sending
    # leaving the block waits for the broker and raises DeliveryError if any event failed

The producer is idempotent with ``acks=all`` (no duplicates from producer retries, nothing
acknowledged before the in-sync replicas have it) and keys records by ``partner_id`` so one
tenant's events keep their order within a partition.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaException, Message, Producer

from schemas.config import DEFAULT_EVENTS_TOPIC
from schemas.event import MAX_EVENT_BYTES, InvalidEvent, validate_event

DEFAULT_TOPIC = DEFAULT_EVENTS_TOPIC
log = logging.getLogger(__name__)

# Defaults the caller may override (the safety settings below may not be overridden).
_DEFAULTS: dict[str, Any] = {
    "linger.ms": 5,
    # Fail a delivery after 30 s instead of librdkafka's 5 minutes, so a caller learns soon.
    "message.timeout.ms": 30000,
    "logger": logging.getLogger("schemas.publisher.kafka"),
}


class DeliveryError(Exception):
    """One or more events were not acknowledged by the broker."""

    def __init__(self, failures: list[str]) -> None:
        self.failures = failures
        super().__init__(f"{len(failures)} delivery failure(s): {failures[0]}")


class BrokerUnavailable(Exception):
    """The Kafka cluster could not be reached."""


def to_wire(event: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-ready event: a Python caller may give ``occurred_at`` as an aware datetime."""
    wire = dict(event)
    occurred_at = wire.get("occurred_at")
    if isinstance(occurred_at, datetime):
        if occurred_at.tzinfo is None:
            raise InvalidEvent(
                "invalid_fields", {"occurred_at": ["A datetime must carry a timezone."]}
            )
        wire["occurred_at"] = occurred_at.isoformat()
    return wire


def encode_event(event: Mapping[str, Any]) -> tuple[bytes, bytes]:
    """Validate and encode; return (key, value). Raises InvalidEvent."""
    wire = to_wire(event)
    validate_event(wire)
    value = json.dumps(wire, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if len(value) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            "too_large", {"_event": [f"{len(value)} bytes; the limit is {MAX_EVENT_BYTES}."]}
        )
    return wire["partner_id"].encode("utf-8"), value


class AuditPublisher:
    """Publishes audit events; thread-safe. ``flush()`` raises DeliveryError on failures."""

    def __init__(
        self, bootstrap_servers: str, topic: str = DEFAULT_TOPIC, **kafka_config: Any
    ) -> None:
        self.topic = topic
        self.bootstrap_servers = bootstrap_servers
        config = {
            **_DEFAULTS,
            **kafka_config,
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
        }
        self._producer = Producer(config)
        self._failures: list[str] = []
        self._lock = threading.Lock()

    def check_connection(self, timeout: float = 10.0) -> None:
        """Raise BrokerUnavailable unless the cluster answers within ``timeout`` seconds."""
        try:
            self._producer.list_topics(timeout=timeout)
        except KafkaException as error:
            reason = error.args[0].str() if hasattr(error.args[0], "str") else error
            raise BrokerUnavailable(
                f"cannot reach Kafka at {self.bootstrap_servers}: {reason}"
            ) from error

    def publish(self, event: Mapping[str, Any]) -> None:
        """Validate and enqueue one event (asynchronous: see ``flush``)."""
        key, value = encode_event(event)
        self._produce(key, value, self._on_delivery)
        self._producer.poll(0)  # serve delivery callbacks of earlier events

    def publish_and_wait(self, event: Mapping[str, Any], timeout: float = 35.0) -> None:
        """Publish one event and return once the broker acknowledged *it*.

        Raises DeliveryError for this event's own failure only: threads sharing the
        publisher each wait for their own message, and never receive (or swallow) another
        thread's failure the way ``flush`` would hand them out.
        """
        key, value = encode_event(event)
        acknowledged = threading.Event()
        errors: list[Any] = []

        def on_delivery(error: Any, _message: Message) -> None:
            errors.append(error)
            acknowledged.set()

        self._produce(key, value, on_delivery)
        deadline = time.monotonic() + timeout
        # Any thread's poll may serve our callback; we only wait for it to have run.
        while not acknowledged.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeliveryError([f"topic {self.topic}: no acknowledgement in {timeout:g} s"])
            self._producer.poll(min(0.1, remaining))
        if errors[0] is not None:
            raise DeliveryError([f"topic {self.topic}: {errors[0]}"])

    def _produce(self, key: bytes, value: bytes, on_delivery: Callable[[Any, Any], None]) -> None:
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=on_delivery)
                return
            except BufferError:
                self._producer.poll(0.5)  # local queue full: let deliveries drain it

    def _on_delivery(self, error: Any, message: Message) -> None:
        if error is not None:
            with self._lock:
                self._failures.append(f"topic {message.topic()}: {error}")

    def flush(self, timeout: float = 60.0) -> None:
        """Wait for every enqueued event; raise DeliveryError if any was not delivered."""
        remaining = self._producer.flush(timeout)
        with self._lock:
            failures, self._failures = self._failures, []
        if remaining:
            failures.append(f"{remaining} event(s) still undelivered after {timeout:g} s")
        if failures:
            raise DeliveryError(failures)

    def __enter__(self) -> AuditPublisher:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is None:
            self.flush()
            return
        try:  # still deliver what was accepted, without hiding the original exception
            self.flush()
        except DeliveryError as error:
            log.error("while handling %r: %s", exc, error)
