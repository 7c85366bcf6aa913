"""Batches of fetched records, closed by count, by bytes or by time.

`RecordFeed` sits between the fetch loop (`consumer.fetching`, which adds each fetch of
records as a whole) and the agent (which takes batches). Records move through it as lists,
never one by one: Faust's per-message path (an event, a queue put and get, and four tasks
per record) cost about as much of the event loop as the bulk request did.

A batch is at most `max_records` records or about `max_bytes` of record values, or what
arrived within `window_s`, whichever comes first; a record larger than the byte bound is a
batch of its own. The feed holds at most one batch plus `prefetch_records`, and at most two
batches' bytes of values (one ready, the next filling: with one, large events came in
batches cut short by the window, B5 111 -> 87-91 events/s), before the fetch loop must
wait: that, with the batches in hand, is what bounds the worker's memory when events are
large. Nothing here acknowledges or
commits anything: the agent commits offsets itself (see `consumer.offsets`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from consumer.pipeline import RawRecord


@dataclass(frozen=True)
class BatchBounds:
    max_records: int
    max_bytes: int
    window_s: float


def record_size(record: RawRecord) -> int:
    value = record.value
    return len(value) if value else 0


class RecordFeed:
    """Fetched records waiting for the agent, in fetch order (per partition: offset order)."""

    def __init__(self, bounds: BatchBounds, prefetch_records: int) -> None:
        self.bounds = bounds
        self.capacity = bounds.max_records + prefetch_records
        self.capacity_bytes = 2 * bounds.max_bytes
        self._records: deque[RawRecord] = deque()
        self._bytes = 0
        #: Set while a batch is ready to take (full by count or bytes).
        self._full = asyncio.Event()
        #: Set while the feed may take another fetch.
        self._room = asyncio.Event()
        self._room.set()

    def __len__(self) -> int:
        return len(self._records)

    @property
    def has_room(self) -> bool:
        return len(self._records) < self.capacity and self._bytes < self.capacity_bytes

    async def wait_for_room(self) -> None:
        """Returns once the feed takes another fetch (the fetch loop's back-pressure)."""
        await self._room.wait()

    def add(self, records: Sequence[RawRecord]) -> None:
        """One fetch, as a whole: what is already in memory is taken even past the bounds;
        the next fetch waits for room."""
        self._records.extend(records)
        self._bytes += sum(map(record_size, records))
        self._update()

    def clear(self) -> int:
        """Drop what is waiting (its partitions were revoked: it is fetched again, from the
        committed offsets, by whoever owns them now); returns how many were dropped."""
        dropped = len(self._records)
        self._records.clear()
        self._bytes = 0
        self._update()
        return dropped

    async def batches(self, idle: bool = False) -> AsyncIterator[list[RawRecord]]:
        """Batches as they fill or their window passes; `idle`: also an empty list for each
        window in which nothing arrived (so the consumer can act on time alone)."""
        while True:
            batch = await self.take()
            if batch or idle:
                yield batch

    async def take(self) -> list[RawRecord]:
        """The next batch: waits until one is full, or `window_s`, whichever comes first."""
        if not self._full.is_set():
            with contextlib.suppress(TimeoutError):  # the window passed: hand out what is here
                await asyncio.wait_for(self._full.wait(), self.bounds.window_s)
        return self._cut()

    def _cut(self) -> list[RawRecord]:
        records, bounds = self._records, self.bounds
        batch: list[RawRecord] = []
        size = 0
        while records and len(batch) < bounds.max_records:
            next_size = record_size(records[0])
            if batch and size + next_size > bounds.max_bytes:
                break  # a record past the byte bound starts the next batch
            batch.append(records.popleft())
            size += next_size
        self._bytes -= size
        self._update()
        return batch

    def _update(self) -> None:
        bounds = self.bounds
        if len(self._records) >= bounds.max_records or self._bytes >= bounds.max_bytes:
            self._full.set()
        else:
            self._full.clear()
        if self.has_room:
            self._room.set()
        else:
            self._room.clear()
