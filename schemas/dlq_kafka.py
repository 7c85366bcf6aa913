"""The dead-letter topic on Kafka, for `audit-log dlq`: read letters, fetch an original
record, re-publish.

Reading uses `assign()` with explicit partitions and offsets up to the high watermark taken
at the start, then stops: it never joins a consumer group and never commits an offset, so an
operator's look leaves no trace and takes no partition from anyone. Re-publishing uses an
idempotent, ``acks=all`` producer and waits for every delivery report.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from schemas.dead_letter import HEADER_REPLAYED_FROM
from schemas.dlq_letters import Letter, Progress, Selection, letter_from_record
from schemas.dlq_replay import Outgoing, Replay, ReplayCounts, ReplayPlan, Skip, dry_run_line
from schemas.kafka_config import quiet_logger

#: Required by the client, never joined: the readers only `assign()` and never commit.
READER_GROUP = "audit-log-dlq-reader"
#: The producer must not refuse a record before the broker does: the original of a
#: headers-only letter can be larger than librdkafka's default 1,000,000 bytes. Each topic's
#: own `max.message.bytes` still applies, at the broker.
MAX_RECORD_BYTES = 64 * 1024 * 1024


class DlqError(Exception):
    """Kafka cannot do what was asked; the message is one readable line."""


class NoRecord(DlqError):
    """No record at the requested partition and offset (never there, or no longer retained)."""


class NoTopic(DlqError):
    """The topic does not exist."""


def _reason(error: KafkaException) -> str:
    first = error.args[0] if error.args else error
    return str(first.str()) if isinstance(first, KafkaError) else str(first)


@dataclass(frozen=True)
class Connection:
    """Where Kafka is, and how long to wait for it."""

    bootstrap_servers: str
    timeout_s: float = 10.0
    #: A read stops with an error when no record arrives for this long before the end.
    idle_timeout_s: float = 30.0
    #: librdkafka's security properties (`KafkaOptions.security_config()`; a password).
    security: Mapping[str, str] = field(default_factory=dict, repr=False)

    def client_config(self) -> dict[str, Any]:
        return {
            **self.security,
            "bootstrap.servers": self.bootstrap_servers,
            "logger": quiet_logger("schemas.dlq_kafka.librdkafka"),
        }

    def unreachable(self, error: KafkaException) -> DlqError:
        return DlqError(f"cannot reach Kafka at {self.bootstrap_servers}: {_reason(error)}")


@dataclass(frozen=True)
class PartitionSpan:
    partition: int
    low: int
    high: int  # the next offset: the partition holds [low, high)

    def describe(self) -> str:
        if self.high <= self.low:
            return f"partition {self.partition}: empty (next offset {self.high})"
        return f"partition {self.partition}: offsets {self.low}-{self.high - 1}"


class TopicReader:
    """Reads records at explicit partitions and offsets, never as a group member."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self._consumer = Consumer(
            {
                **connection.client_config(),
                "group.id": READER_GROUP,
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "enable.partition.eof": True,
                "auto.offset.reset": "earliest",
                "allow.auto.create.topics": False,
            }
        )
        self._closed = False

    def exists(self, topic: str) -> bool:
        try:
            self._partitions(topic)
        except NoTopic:
            return False
        return True

    def spans(self, topic: str) -> list[PartitionSpan]:
        """Every partition of `topic` with its low and high watermarks."""
        partitions = self._partitions(topic)
        try:
            return [
                PartitionSpan(
                    p,
                    *self._consumer.get_watermark_offsets(
                        TopicPartition(topic, p), timeout=self._connection.timeout_s
                    ),
                )
                for p in partitions
            ]
        except KafkaException as error:
            raise self._connection.unreachable(error) from None

    def _partitions(self, topic: str) -> list[int]:
        try:
            metadata = self._consumer.list_topics(topic, timeout=self._connection.timeout_s)
        except KafkaException as error:
            raise self._connection.unreachable(error) from None
        found = metadata.topics.get(topic)
        problem = found.error if found is not None else None
        if found is None or (problem and problem.code() == KafkaError.UNKNOWN_TOPIC_OR_PART):
            servers = self._connection.bootstrap_servers
            raise NoTopic(f"topic {topic} does not exist on {servers}")
        if problem is not None:
            raise DlqError(f"topic {topic}: {problem.str()}")
        return sorted(found.partitions)

    def read(self, topic: str, ranges: dict[int, range]) -> Iterator[Message]:
        """The records of each partition's range, in order per partition, then stop."""
        pending = {p: r for p, r in ranges.items() if len(r)}
        if not pending:
            return
        self._consumer.assign([TopicPartition(topic, p, r.start) for p, r in pending.items()])
        try:
            yield from self._records_until_done(topic, pending)
        finally:
            if not self._closed:  # an abandoned read may be collected after `close`
                self._consumer.unassign()

    def record_at(self, topic: str, partition: int, offset: int) -> Message:
        """The one record at `offset`; `NoRecord` when the partition does not hold it."""
        span = next((s for s in self.spans(topic) if s.partition == partition), None)
        if span is None:
            raise NoRecord(f"{topic} has no partition {partition}")
        if not span.low <= offset < span.high:
            raise NoRecord(
                f"no record at {topic} partition {partition} offset {offset} ({span.describe()})"
            )
        for message in self.read(topic, {partition: range(offset, offset + 1)}):
            return message
        raise NoRecord(f"no record at {topic} partition {partition} offset {offset}")

    def _records_until_done(self, topic: str, pending: dict[int, range]) -> Iterator[Message]:
        idle_since = time.monotonic()
        while pending:
            message = self._consumer.poll(1.0)
            if message is None:
                if time.monotonic() - idle_since > self._connection.idle_timeout_s:
                    raise DlqError(self._stalled(topic, pending))
                continue
            idle_since = time.monotonic()
            error = message.error()
            if error is not None and error.code() != KafkaError._PARTITION_EOF:
                raise DlqError(f"reading {topic}: {error.str()}")
            partition, offset = message.partition(), message.offset()
            if partition is None or offset is None or partition not in pending:
                continue  # a partition already read to its end
            stop = pending[partition].stop  # the end as seen at the start: later ones wait
            if error is not None or offset + 1 >= stop:  # its end of file, or its last offset
                del pending[partition]
            if error is None and offset < stop:
                yield message

    def _stalled(self, topic: str, pending: dict[int, range]) -> str:
        where = ", ".join(f"partition {p} before offset {r.stop}" for p, r in pending.items())
        seconds = self._connection.idle_timeout_s
        return f"reading {topic}: no record for {seconds:g} s ({where}); stopped"

    def close(self) -> None:
        self._closed = True
        self._consumer.close()


def as_letter(message: Message) -> Letter:
    return letter_from_record(
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        message.headers(),
    )


class DeadLetterTopic:
    """The letters of the dead-letter topic, as they were when it was opened."""

    def __init__(self, reader: TopicReader, topic: str) -> None:
        self.topic = topic
        self.reader = reader
        self.spans = reader.spans(topic)

    def ranges(self, selection: Selection) -> dict[int, range]:
        """The DLQ offsets to read for `selection` (from the watermarks seen at opening)."""
        wanted = set(selection.partitions(span.partition for span in self.spans))
        return {
            span.partition: selection.offsets(span.low, span.high)
            for span in self.spans
            if span.partition in wanted
        }

    def letters(self, selection: Selection) -> Iterator[Letter]:
        """Every letter in the selection's partitions and offset range (the caller applies
        the other criteria, so that it can count what it read)."""
        for message in self.reader.read(self.topic, self.ranges(selection)):
            yield as_letter(message)

    def selected(self, selection: Selection) -> Iterator[Letter]:
        return (letter for letter in self.letters(selection) if selection.selects(letter))

    def letter_at(self, partition: int, offset: int) -> Letter:
        return as_letter(self.reader.record_at(self.topic, partition, offset))

    def describe(self) -> str:
        return f"{self.topic} ({'; '.join(span.describe() for span in self.spans)})"


class OriginalRecords:
    """A letter's original value: its own, or for a headers-only letter (too large for the
    DLQ) the record still on its input topic, read with a reader of its own."""

    def __init__(self, open_reader: Callable[[], TopicReader]) -> None:
        self._open_reader = open_reader
        self._reader: TopicReader | None = None

    def value_of(self, letter: Letter) -> bytes | None:
        if not letter.value_omitted or letter.headers is None:
            return letter.value
        origin = letter.headers
        where = f"{origin.original_topic} {origin.original_partition}:{origin.original_offset}"
        try:
            return self._fetch(
                origin.original_topic, origin.original_partition, origin.original_offset
            )
        except DlqError as error:
            raise Skip(
                f"its value was too large for the DLQ and {where} cannot be read: {error}"
            ) from None

    def _fetch(self, topic: str, partition: int, offset: int) -> bytes | None:
        if self._reader is None:
            self._reader = self._open_reader()
        return self._reader.record_at(topic, partition, offset).value()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()


class TargetTopics:
    """Checks each target topic once: a missing one stops the replay with one line (rather
    than a 30 s delivery timeout per record)."""

    def __init__(self, reader: TopicReader) -> None:
        self._reader = reader
        self._known: set[str] = set()

    def require(self, topic: str) -> None:
        if topic not in self._known:
            if not self._reader.exists(topic):
                raise NoTopic(f"topic {topic} does not exist; nothing more is sent")
            self._known.add(topic)


class Replayer:
    """Re-publishes with an idempotent, acks=all producer; `finish` waits for every report."""

    def __init__(self, connection: Connection, dlq_topic: str, targets: TargetTopics) -> None:
        self._dlq_topic = dlq_topic
        self._targets = targets
        self.failures: list[str] = []
        self._producer = Producer(
            {
                **connection.client_config(),
                # Idempotent + acks=all: a retried send is written once, "acked" means durable.
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 5,
                "message.timeout.ms": 30000,
                "message.max.bytes": MAX_RECORD_BYTES,
                "allow.auto.create.topics": False,
            }
        )

    def send(self, outgoing: Outgoing) -> None:
        self._targets.require(outgoing.topic)
        letter = outgoing.letter
        replayed_from: str | bytes | None = f"{self._dlq_topic}:{letter.position}".encode()
        headers = [(HEADER_REPLAYED_FROM, replayed_from)]

        def on_delivery(error: KafkaError | None, _message: Any) -> None:
            if error is not None:
                self.failures.append(f"{letter.describe()} -> {outgoing.topic}: {error.str()}")

        while True:
            try:
                self._producer.produce(
                    outgoing.topic,
                    value=outgoing.value,
                    key=outgoing.key,
                    headers=headers,
                    on_delivery=on_delivery,
                )
                break
            except BufferError:  # local queue full: let deliveries drain it
                self._producer.poll(0.5)
            except KafkaException as error:  # refused before sending (size, say)
                self.failures.append(f"{letter.describe()} -> {outgoing.topic}: {_reason(error)}")
                return
        self._producer.poll(0)

    def finish(self) -> list[str]:
        """Wait for every delivery report (each is bounded by message.timeout.ms)."""
        while len(self._producer) > 0:
            self._producer.flush(1.0)
        return self.failures


@dataclass
class ReplayResult:
    counts: ReplayCounts
    failures: list[str] = field(default_factory=list)
    dlq: str = ""


def run_replay(
    connection: Connection,
    dlq_topic: str,
    plan: ReplayPlan,
    progress: Progress,
    say: Callable[[str], None],
    out: Callable[[str], None] | None = None,
) -> ReplayResult:
    """Replay the selected letters; with `out` (a dry run) print each instead of sending."""
    originals = OriginalRecords(lambda: TopicReader(connection))
    replayer: Replayer | None = None
    with opened_dlq(connection, dlq_topic) as dlq:
        targets = TargetTopics(dlq.reader)
        try:
            send: Callable[[Outgoing], None]
            if out is None:
                replayer = Replayer(connection, dlq_topic, targets)
                send = replayer.send
            else:
                send = _printer(targets, out)
            replay = Replay(plan, originals.value_of, send, say)
            counts = replay.run(dlq.letters(plan.selection), progress)
        finally:
            # Also on an error or ^C: what was already accepted is delivered and reported.
            failures = replayer.finish() if replayer else []
            originals.close()
        return ReplayResult(counts, failures, dlq.describe())


def _printer(targets: TargetTopics, out: Callable[[str], None]) -> Callable[[Outgoing], None]:
    def show(outgoing: Outgoing) -> None:
        targets.require(outgoing.topic)
        out(dry_run_line(outgoing))

    return show


@contextmanager
def opened_dlq(connection: Connection, dlq_topic: str) -> Iterator[DeadLetterTopic]:
    """The dead-letter topic, checked to exist; its reader is closed afterwards."""
    reader = TopicReader(connection)
    try:
        yield DeadLetterTopic(reader, dlq_topic)
    finally:
        reader.close()
