"""The Faust app: one agent that takes batches, indexes them and only then commits their offsets.

How offsets are controlled (the part that makes "nothing lost" true):

* The input topic is declared with ``acks=False``. Faust's own offset machinery therefore never
  records, let alone commits, an offset of ours: not from ``take()``'s ``finally`` (which acks
  a batch even when the body raised or was cancelled), not from the messages the stream drops
  during a rebalance (which it acks unprocessed), and not through the off-by-one of
  faust-streaming #606 (``_new_offset`` committing past an in-flight message).
* The agent commits itself, after Elasticsearch acknowledged every document of the batch and
  Kafka acknowledged every dead letter: per partition, the batch's highest offset + 1, through
  the aiokafka consumer (on its own thread, as Faust does). One agent instance (concurrency 1)
  handles one batch at a time, so a commit never overtakes an unfinished record (the next
  batch is only validated and normalized meanwhile, see ``InFlight``).
* Records fetched before a rebalance (their generation is not the consumer's current one) are
  indexed but not committed: the partition may belong to another worker now, or was re-seeked
  to its committed offset and will be redelivered (a ``create`` of an existing id is a no-op).
* Cancellation (SIGTERM, rebalance-stop) propagates out of the batch before the commit, so the
  in-flight batch stays uncommitted and is redelivered.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import shutil
import ssl
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from time import monotonic
from typing import Any, cast

import faust
from aiohttp import web
from aiokafka.structs import OffsetAndMetadata, TopicPartition
from faust.types import EventT, StreamT
from prometheus_client import CONTENT_TYPE_LATEST

from consumer import metrics
from consumer.backoff import Backoff
from consumer.batching import BatchBounds, bounded_batches
from consumer.digests import DigestLog
from consumer.dlq import DeadLetterQueue
from consumer.health import Health
from consumer.indexer import Indexer
from consumer.pipeline import Processed, RawRecord, process_batch
from consumer.settings import Settings
from schemas.integrity import load_private_key

log = logging.getLogger(__name__)

COMMIT_TIMEOUT_S = 30.0


class Ingest:
    """Handles one batch end to end, except the commit. Never raises but for cancellation."""

    def __init__(
        self,
        settings: Settings,
        indexer: Indexer,
        dead_letters: DeadLetterQueue,
        health: Health | None = None,
        backoff: Backoff | None = None,
        digests: DigestLog | None = None,
    ) -> None:
        self.prefix = settings.index_prefix
        self.indexer = indexer
        self.dead_letters = dead_letters
        self.health = health or Health()
        self._backoff = backoff or Backoff()
        #: None only in tests of the batch path alone: production always signs digests.
        self.digests = digests

    async def prepare(self, records: Sequence[RawRecord]) -> Processed:
        """Validate and normalize a batch (CPU-bound: validation, n-grams, JSON) in a thread,
        so the event loop stays responsive and the previous batch's I/O goes on meanwhile."""
        return await asyncio.to_thread(process_batch, records, self.prefix, datetime.now(UTC))

    async def handle(
        self, records: Sequence[RawRecord], processed: Processed | None = None
    ) -> None:
        """Index the valid, dead-letter the rest; returns only when both are acknowledged.
        `processed`: `prepare(records)`, when it was made ahead of time."""
        metrics.CONSUMED.inc(len(records))
        metrics.BATCH_SIZE.observe(len(records))
        self.health.batch_started()
        # An unexpected error (a bug) must neither lose the batch (raising out of the agent
        # would let Faust move on past it) nor stop the worker: retry the whole batch, loudly.
        async for attempt in self._backoff.retrying("batch failed", retry_on=Exception):
            with attempt:
                await self._handle_once(records, processed)
            processed = None  # a retry starts over from the records
        self.health.batch_done()

    def ready_to_commit(self) -> bool:
        """Whether the records handled so far may be committed now: their logs' digests
        are due (or there are none to write)."""
        return self.digests is None or self.digests.due()

    async def seal(self) -> None:
        """Store the digests of everything handled so far; only then are its offsets
        committed (a crash before leaves them uncommitted: redelivered, covered again)."""
        if self.digests is None:
            return
        self.health.batch_started()
        await self.digests.flush()
        self.health.batch_done()

    async def close(self) -> None:
        await self.indexer.close()
        await asyncio.to_thread(self.dead_letters.close)

    async def _handle_once(self, records: Sequence[RawRecord], processed: Processed | None) -> None:
        try:
            if processed is None:
                processed = await self.prepare(records)
            outcome = await self.indexer.index(processed.actions)
            await self.dead_letters.send([*processed.dead_letters, *outcome.rejected])
            if self.digests is not None:
                self.digests.add(outcome.covered)
        except Exception:
            log.exception("batch of %d records failed unexpectedly; retrying it", len(records))
            raise


class InFlight:
    """One batch being indexed while the next one is taken and prepared.

    A batch's CPU work (`Ingest.prepare`, in a thread) and the previous batch's I/O
    (Elasticsearch, the dead-letter topic) overlap; everything else stays in order: a batch
    is handled (indexed, dead-lettered, covered by digests) only after the one before it is
    done, and its offsets are handed to the committer only once it is done.
    """

    def __init__(self, ingest: Ingest, committer: OffsetCommitter, max_bytes: int) -> None:
        self.ingest = ingest
        self.committer = committer
        #: Record values that may be in flight and prepared at once: two batches of large
        #: events are not overlapped, so memory stays what one batch needs (QUALITY B5).
        self.max_bytes = max_bytes
        self._task: asyncio.Task[None] | None = None
        self._events: Sequence[EventT] = ()
        self._bytes = 0

    async def take(self, events: Sequence[EventT]) -> None:
        """Start on `events` (possibly none) once the batch in flight is done."""
        records = [to_record(event) for event in events]
        size = sum(len(record.value or b"") for record in records)
        if self._bytes + size > self.max_bytes:
            await self.finish()
        preparing = asyncio.ensure_future(self.ingest.prepare(records)) if records else None
        await self.finish()
        if preparing is None:
            return
        try:
            processed: Processed | None = await preparing
        except Exception:  # a bug in the pure core: `handle` retries it, loudly
            processed = None
        self._events, self._bytes = events, size
        self._task = asyncio.create_task(self._handle(records, processed))

    async def finish(self) -> None:
        """Wait for the batch in flight; its records may then be committed."""
        if self._task is not None:
            await self._task
            self._task = None
            self.committer.handled(self._events)  # ES and the DLQ have acknowledged them
            self._events, self._bytes = (), 0

    async def cancel(self) -> None:
        """Stop the batch in flight (SIGTERM): it stays uncommitted and is redelivered."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _handle(self, records: Sequence[RawRecord], processed: Processed | None) -> None:
        started = monotonic()
        await self.ingest.handle(records, processed)
        metrics.BATCH_SECONDS.observe(monotonic() - started)


class OffsetCommitter:
    """Commits offsets through the Faust app's aiokafka consumer, bypassing Faust's acks."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        #: Offsets to commit, with the consumer generation their records were fetched in.
        self._pending: dict[TopicPartition, tuple[int, int | None]] = {}

    def handled(self, events: Iterable[EventT]) -> None:
        """Remember `events` (indexed and dead-lettered) for the next commit; only their
        offsets are kept, never the records (a digest interval may span many batches)."""
        for event in events:
            message = event.message
            tp = TopicPartition(message.topic, message.partition)
            offset, _generation = self._pending.get(tp, (-1, 0))
            if message.offset + 1 > offset:
                self._pending[tp] = (message.offset + 1, message.generation_id)

    @property
    def has_pending(self) -> bool:
        return bool(self._pending)

    async def commit_handled(self) -> dict[TopicPartition, int]:
        """Commit what `handled` remembered; failure only means redelivery, so log it."""
        pending, self._pending = self._pending, {}
        current = self.app.consumer_generation_id
        # Records fetched before a rebalance are not committed: they may be another
        # worker's now, or are redelivered to us (and found already stored).
        fresh = {
            tp: offset for tp, (offset, generation) in pending.items() if generation == current
        }
        return await self._commit(fresh)

    async def commit(self, events: Iterable[EventT]) -> dict[TopicPartition, int]:
        """Commit past `events` (already indexed); failure only means redelivery, so log it."""
        self.handled(events)
        return await self.commit_handled()

    async def _commit(self, offsets: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        if not offsets:
            return {}
        thread: Any = self.app.consumer._thread  # type: ignore[attr-defined]
        try:
            committed: dict[TopicPartition, int] = await asyncio.wait_for(
                thread.call_thread(_commit_in_consumer_thread, thread, offsets),
                timeout=COMMIT_TIMEOUT_S,
            )
        except Exception as error:  # not CancelledError: that must propagate
            metrics.COMMIT_FAILURES.inc()
            log.warning("offset commit failed (records will be redelivered): %r", error)
            return {}
        return committed


async def _commit_in_consumer_thread(
    thread: Any, offsets: dict[TopicPartition, int]
) -> dict[TopicPartition, int]:
    """Runs on the consumer's thread and loop, like every aiokafka call Faust makes."""
    consumer = thread._ensure_consumer()
    assigned = consumer.assignment()
    # Never commit for a partition that was revoked meanwhile: it is someone else's now.
    mine = {tp: offset for tp, offset in offsets.items() if tp in assigned}
    if mine:
        await consumer.commit({tp: OffsetAndMetadata(offset, "") for tp, offset in mine.items()})
        for tp, offset in mine.items():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    max(highwater - offset, 0)
                )
    return mine


def to_record(event: EventT) -> RawRecord:
    message = event.message
    return RawRecord(
        value=message.value,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        timestamp_ms=int(message.timestamp * 1000) if message.timestamp else None,
    )


def kafka_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    protocol = settings.kafka_security_protocol or "PLAINTEXT"
    context: ssl.SSLContext | None = None
    if protocol in {"SSL", "SASL_SSL"}:
        context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_location)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            ssl_context=context,
            mechanism=settings.kafka_sasl_mechanism or "PLAIN",
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def create_app(
    settings: Settings,
    ingest: Ingest | None = None,
    health: Health | None = None,
    dlq_max_message_bytes: int | None = None,
) -> faust.App:
    """The Faust app with its agent and web pages; connects to nothing until it is started.

    `dlq_max_message_bytes`: the dead-letter topic's own `max.message.bytes` (read at
    start-up), so the DLQ producer accepts every value the topic accepts.
    """
    health = health or (ingest.health if ingest else Health())
    if ingest is None:
        indexer = Indexer(settings, health=health)
        ingest = Ingest(
            settings,
            indexer,
            DeadLetterQueue(settings, max_message_bytes=dlq_max_message_bytes, health=health),
            health,
            digests=_digest_log(settings, indexer, health),
        )
    app = faust.App(
        settings.group_id,  # Faust's app id is the Kafka consumer group id
        broker=[f"kafka://{host}" for host in settings.bootstrap_list],
        broker_credentials=kafka_credentials(settings),
        key_serializer="raw",
        value_serializer="raw",  # invalid JSON must reach our code, not crash a deserializer
        autodiscover=False,
        consumer_auto_offset_reset="earliest",  # a new group starts at the first event
        topic_allow_declare=False,  # topics are provisioned, never guessed by the worker
        topic_disable_leader=True,  # no leader topic, no tables: no internal topics at all
        topic_replication_factor=1,
        stream_wait_empty=False,  # nothing of ours is tracked by Faust's acks anyway
        # Records held ahead of the batch in hand: a count, so it is what bounds memory
        # (with AUDIT_BATCH_MAX_BYTES) when events are large. Faust's default is 4,096.
        stream_buffer_maxsize=settings.prefetch_records,
        # A worker killed with SIGKILL holds its partitions until its session expires: 10 s
        # (Faust's default is 60) lets a restarted or surviving worker take over quickly.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        web_enabled=True,
        web_port=settings.worker_port,
        web_bind=settings.worker_bind,
        web_in_thread=False,
        datadir=settings.state_dir or _private_state_dir(),
    )
    topic = app.topic(*settings.topics, acks=False, key_type=bytes, value_type=bytes)
    committer = OffsetCommitter(app)
    bounds = BatchBounds(
        settings.batch_size, settings.batch_max_bytes, settings.batch_window_seconds
    )

    @app.agent(topic, concurrency=1, name="ingest")
    async def ingest_agent(stream: StreamT[bytes]) -> None:
        in_flight = InFlight(ingest, committer, bounds.max_bytes)
        try:
            # An empty list is an idle window: a chance to seal and commit what is waiting.
            async for events in bounded_batches(cast(faust.Stream, stream), bounds, idle=True):
                await in_flight.take(events)
                if committer.has_pending and ingest.ready_to_commit():
                    # No batch may add logs to the digests while they are being sealed.
                    await in_flight.finish()
                    await ingest.seal()  # their digests are stored...
                    await committer.commit_handled()  # ...and only now their offsets
        finally:  # SIGTERM cancels us here; what was not committed is redelivered
            await in_flight.cancel()
            await ingest.close()

    _add_pages(app, health)
    return app


def _digest_log(settings: Settings, indexer: Indexer, health: Health) -> DigestLog | None:
    if settings.signing_key is None:  # load_settings requires one: only tests get here
        return None
    return DigestLog(
        lambda: indexer.client,  # the indexer's client, created in the running loop
        settings.index_prefix,
        load_private_key(settings.signing_key),
        interval_s=settings.digest_interval_s,
        max_leaves=settings.digest_max_leaves,
        health=health,
    )


def _private_state_dir() -> str:
    """A folder only this process knows (mode 0700, random name), removed at exit: a fixed
    /tmp path is one another local user could create first, or point elsewhere."""
    folder = tempfile.mkdtemp(prefix="audit-worker-")
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _add_pages(app: faust.App, health: Health) -> None:
    @app.page("/healthz")
    async def healthz(self: Any, request: Any) -> Any:
        return self.json(health.snapshot())

    @app.page("/readyz")
    async def readyz(self: Any, request: Any) -> Any:
        snapshot = health.snapshot()
        return self.json(snapshot, status=503 if health.stuck else 200)

    @app.page("/metrics")
    async def prometheus(self: Any, request: Any) -> Any:
        # A plain aiohttp response: Faust's helper refuses the charset in Prometheus' type.
        return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
