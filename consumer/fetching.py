"""The fetch loop: each fetch from Kafka goes to the `RecordFeed` as one list.

Faust's fetch loop (`Consumer._drain_messages`) hands records to the streams one at a
time: a `Message`, an `Event`, a queue put and get, and `wait_first` (four tasks and an
`asyncio.wait`) per record. At a few thousand records a second that was as much of the
worker's one event loop as the bulk requests (issue 12). This loop keeps everything of
Faust's that decides *which* records are delivered (flow control during rebalances, the
active partitions, the generation stamp, the read offsets, seeking back to the committed
offsets when the flow stopped mid-fetch) and changes only *how*: one `RawRecord` per
record, made from aiokafka's record directly, and one hand-over per fetch.

Back-pressure: the loop fetches again only once the feed has room, so what is held in
memory is the feed's bound plus the fetch in hand (as before: the stream's buffer plus the
fetch). A rebalance (`stop_flow`) empties the feed, as Faust's `flow_control.clear()`
empties the streams' queues: the revoked records are fetched again, from the committed
offsets, by whoever owns their partitions now.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence, Set
from typing import Any

from faust.transport.drivers.aiokafka import Consumer as AIOKafkaConsumer
from faust.types import TP
from mode import ServiceT

from consumer.batching import RecordFeed
from consumer.pipeline import RawRecord

log = logging.getLogger(__name__)

#: How long one fetch may wait for records (Faust's own fetch loop uses 1 s too).
FETCH_TIMEOUT_S = 1.0


class FeedingConsumer(AIOKafkaConsumer):
    """Faust's aiokafka consumer, delivering whole fetches to a `RecordFeed`."""

    def __init__(self, *args: Any, feed: RecordFeed, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.feed = feed

    def stop_flow(self) -> None:
        super().stop_flow()
        dropped = self.feed.clear()
        if dropped:
            log.info("rebalance: %d fetched records dropped (fetched again)", dropped)

    async def _drain_messages(self, fetcher: ServiceT) -> None:  # the Fetcher's task
        consumer_stopped = self._stopped.is_set
        fetcher_stopped = fetcher._stopped.is_set  # type: ignore[attr-defined]
        try:
            while not (consumer_stopped() or fetcher_stopped()):
                await self._fetch_once()
        except self.consumer_stopped_errors:
            if not self.transport.app.should_stop:
                raise
            log.info("broker stopped the consumer; shutting down")
        except Exception:  # as Faust's loop: said, then the worker stops (and is restarted)
            log.exception("the fetch loop failed")
            raise

    async def _fetch_once(self) -> None:
        feed = self.feed
        while not feed.has_room:  # back-pressure: the agent is behind
            waited = await self.wait_first(feed.wait_for_room(), self.suspend_flow.wait())
            if waited.stopped or not self.flow_active:
                return  # stopping, or a rebalance (which emptied the feed)
        await self.sleep(0)  # as Faust's loop: a fetch that returns at once must yield
        # Waits while the flow is stopped (a rebalance), then fetches from the positions of
        # the assignment current by then: its records belong to the generation current when
        # they come back (stamped below with no await in between, as Faust stamps them).
        records, active = await self._wait_next_records(FETCH_TIMEOUT_S)
        if not records or self.should_stop:
            return
        if not self.flow_active:  # stopped mid-fetch: as Faust, go back to the committed
            await self._seek_back()
            return
        batch = self._fresh_records(records, active, self.app.consumer_generation_id)
        if batch:
            feed.add(batch)

    def _fresh_records(
        self,
        records: Mapping[TP, Sequence[Any]],
        active: Set[TP] | None,
        generation: int,
    ) -> list[RawRecord]:
        """The fetch's records of active partitions not read yet, as `RawRecord`s (Faust's
        checks, per partition instead of per record)."""
        read_offsets = self._read_offset
        batch: list[RawRecord] = []
        for tp, fetched in records.items():
            if active is not None and tp not in active:
                continue  # paused (rebalance, recovery) since the fetch began
            last_read = read_offsets.get(tp)
            if last_read is not None:
                fetched = [record for record in fetched if record.offset >= last_read]
            if fetched:
                batch.extend(to_records(fetched, generation))
                read_offsets[tp] = fetched[-1].offset
        return batch

    async def _seek_back(self) -> None:
        try:
            await self.perform_seek()
        except Exception as error:  # as Faust: logged; the next assignment seeks again
            log.warning("seek to the committed offsets failed: %r", error)


def to_records(fetched: Sequence[Any], generation: int) -> list[RawRecord]:
    """aiokafka's records as `RawRecord`s, stamped with the consumer generation they were
    fetched in (records of an older generation are indexed but never committed)."""
    return [
        RawRecord(
            record.value,
            record.topic,
            record.partition,
            record.offset,
            record.key,
            record.timestamp,
            generation,
        )
        for record in fetched
    ]
