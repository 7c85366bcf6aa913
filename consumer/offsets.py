"""Offsets: committed by the worker itself, only past records that are stored.

How offsets are controlled (the part that makes "nothing lost" true; the Faust app and its
agent are in `consumer.app`):

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
import logging
from collections.abc import Iterable
from typing import Any

import faust
from aiokafka.structs import OffsetAndMetadata, TopicPartition

from consumer import metrics
from consumer.pipeline import RawRecord

log = logging.getLogger(__name__)

COMMIT_TIMEOUT_S = 30.0
#: The generation of records no consumer fetched (tests, benchmarks): older than any.
NO_GENERATION = -1


class OffsetCommitter:
    """Commits offsets through the Faust app's aiokafka consumer, bypassing Faust's acks."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        #: Per partition, (the consumer generation its records were fetched in, the offset
        #: to commit): compared as a pair, so a newer generation's progress replaces an
        #: older one's even when it is behind it (see `handled`).
        self._pending: dict[TopicPartition, tuple[int, int]] = {}

    def handled(self, records: Iterable[RawRecord]) -> None:
        """Remember `records` (indexed and dead-lettered) for the next commit; only their
        offsets are kept, never the records (a digest interval may span many batches).

        After a rebalance the partition is read again from its committed offset, in the new
        generation, while the highest offset handled may be an older generation's (never
        committed: another worker may own it now). Kept by offset alone, that older entry
        would hide the new generation's progress until it passed it: at the end of a
        partition, never, and the commit would stall."""
        pending = self._pending
        for record in records:
            tp = TopicPartition(record.topic, record.partition)
            generation = NO_GENERATION if record.generation is None else record.generation
            progress = (generation, record.offset + 1)
            if progress > pending.get(tp, (NO_GENERATION, -1)):
                pending[tp] = progress

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
            tp: offset for tp, (generation, offset) in pending.items() if generation == current
        }
        return await self._commit(fresh)

    async def commit(self, records: Iterable[RawRecord]) -> dict[TopicPartition, int]:
        """Commit past `records` (already indexed); failure only means redelivery, so log it."""
        self.handled(records)
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
