"""The worker's composition root: the Faust app, built from the settings, with its one agent
(take a batch, normalize, bulk-index, commit) and its web pages.

The rooms it wires: `consumer.fetching` and `consumer.batching` (each Kafka fetch to the
batches whole, not through Faust's per-record stream), `consumer.ingest` (a batch end to end,
and the overlap of one batch's CPU work with the previous one's I/O), `consumer.offsets`
(the commits, and why Faust's own offset machinery is bypassed), `consumer.health` (what
/healthz and /readyz say, and the pages), `consumer.indexer`, `consumer.dlq`,
`consumer.digests`.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from typing import Any

import faust
from faust.tables import TableManager
from faust.types import ConsumerT, StreamT

from consumer.batching import BatchBounds, RecordFeed
from consumer.digests import DigestLog
from consumer.dlq import DeadLetterQueue
from consumer.fetching import FeedingConsumer
from consumer.health import Health, add_pages
from consumer.indexer import Indexer
from consumer.ingest import InFlight, Ingest
from consumer.offsets import OffsetCommitter
from consumer.settings import Settings
from schemas.integrity import load_private_key


def kafka_credentials(settings: Settings) -> faust.types.auth.CredentialsT | None:
    """Faust's credentials from the `KAFKA_*` options; the TLS context is the one
    `schemas.config` makes for every aiokafka client (a bad CA file is one ConfigError)."""
    options = settings.kafka
    context = options.ssl_context()
    if options.uses_sasl:
        return faust.SASLCredentials(
            username=options.sasl_username,
            password=options.sasl_password,
            ssl_context=context,
            mechanism=options.mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


class TablelessManager(TableManager):
    """Faust's table manager without its start-up pause.

    `TableManager.on_start` sleeps 1 s before it finalizes the tables and starts recovery,
    a grace period for tables declared late; the conductor waits for that before it
    subscribes, so every start (and restart) of the worker consumed 1 s late. This worker
    declares no tables, ever (`topic_disable_leader`, no changelogs): nothing to wait for.
    """

    async def on_start(self) -> None:
        if not self.should_stop:  # as Faust's: stopped while starting, do nothing
            await self._update_channels()
            await self.recovery.start()


class WorkerApp(faust.App):
    """The Faust app whose consumer delivers whole fetches to `feed` (`consumer.fetching`)
    instead of one record at a time to the agent's stream."""

    def __init__(self, *args: Any, feed: RecordFeed, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feed = feed

    def _new_consumer(self) -> ConsumerT:
        transport = self.transport
        return FeedingConsumer(
            transport,
            feed=self.feed,
            callback=self.topics.on_message,  # never called: records go to the feed
            loop=transport.loop,
            on_partitions_revoked=self._on_partitions_revoked,
            on_partitions_assigned=self._on_partitions_assigned,
            beacon=self.beacon,
        )


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
    bounds = BatchBounds(
        settings.batch_size, settings.batch_max_bytes, settings.batch_window_seconds
    )
    feed = RecordFeed(bounds, settings.prefetch_records)
    app = WorkerApp(
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
        # A worker killed with SIGKILL holds its partitions until its session expires: 10 s
        # (Faust's default is 60) lets a restarted or surviving worker take over quickly.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        web_enabled=True,
        web_port=settings.worker_port,
        web_bind=settings.worker_bind,
        web_in_thread=False,
        datadir=settings.state_dir or _private_state_dir(),
        TableManager=TablelessManager,  # subscribe at once: no tables to wait for
        feed=feed,
    )
    topic = app.topic(*settings.topics, acks=False, key_type=bytes, value_type=bytes)
    # The agent takes its records from the feed, never from its stream; subscribing is what
    # iterating the stream would have done.
    app.topics.add(topic)
    committer = OffsetCommitter(app)

    @app.agent(topic, concurrency=1, name="ingest")
    async def ingest_agent(stream: StreamT[bytes]) -> None:
        in_flight = InFlight(ingest, committer, bounds.max_bytes)
        try:
            # An empty list is an idle window: a chance to seal and commit what is waiting.
            async for records in feed.batches(idle=True):
                await in_flight.take(records)  # normalized, then bulk-indexed
                await in_flight.commit_due()  # digests stored, then offsets committed
        finally:  # SIGTERM cancels us here; what was not committed is redelivered
            await in_flight.close()

    add_pages(app, health)
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
