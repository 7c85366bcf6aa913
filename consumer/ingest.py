"""One batch end to end: normalize (`consumer.pipeline`, in a thread), bulk-index, dead-letter,
cover by digests; `InFlight` overlaps a batch's CPU work with the previous batch's I/O and
hands the offsets of what is done to the committer (`consumer.offsets`)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from time import monotonic

from consumer import metrics
from consumer.backoff import Backoff
from consumer.batching import record_size
from consumer.digests import DigestLog
from consumer.dlq import DeadLetterQueue
from consumer.health import Health
from consumer.indexer import Indexer
from consumer.offsets import OffsetCommitter
from consumer.pipeline import Processed, RawRecord, process_batch
from consumer.settings import Settings

log = logging.getLogger(__name__)


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
        self._records: Sequence[RawRecord] = ()
        self._bytes = 0

    async def take(self, records: Sequence[RawRecord]) -> None:
        """Start on `records` (possibly none) once the batch in flight is done."""
        size = sum(map(record_size, records))
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
        self._records, self._bytes = records, size
        self._task = asyncio.create_task(self._handle(records, processed))

    async def finish(self) -> None:
        """Wait for the batch in flight; its records may then be committed."""
        if self._task is not None:
            await self._task
            self._task = None
            self.committer.handled(self._records)  # ES and the DLQ have acknowledged them
            self._records, self._bytes = (), 0

    async def commit_due(self) -> None:
        """Commit what is handled, once its digests are due: the batch in flight is finished
        first (no batch may add logs to the digests while they are being sealed), the digests
        are stored, and only then the offsets."""
        if self.committer.has_pending and self.ingest.ready_to_commit():
            await self.finish()
            await self.ingest.seal()
            await self.committer.commit_handled()

    async def close(self) -> None:
        """SIGTERM, or the stream ended: what was not committed is redelivered."""
        await self.cancel()
        await self.ingest.close()

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
