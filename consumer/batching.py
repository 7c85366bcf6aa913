"""Batches from a Faust stream, closed by count, by bytes or by time, with no Faust acks.

Faust's `Stream.noack_take(max_, within)` bounds a batch by count only: 500 events of
200 KB each would be taken, normalized and held at once. This is the same mechanism (a
stream processor fills a buffer in the background; the consumer of the batches waits for
"full" or for the window to pass) with one more way for the buffer to be full: the sum of
the record values' sizes. A record larger than the byte bound is a batch of its own.

Like `noack_take`, nothing is acknowledged to Faust: the agent commits offsets itself once
Elasticsearch and the dead-letter topic have acknowledged the batch (see `consumer.offsets`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, cast

import faust
from faust.types import ChannelT, EventT
from mode.utils.futures import notify


@dataclass(frozen=True)
class BatchBounds:
    max_records: int
    max_bytes: int
    window_s: float


def record_size(event: EventT) -> int:
    value = event.message.value
    return len(value) if value else 0


async def bounded_batches(
    stream: faust.Stream, bounds: BatchBounds, idle: bool = False
) -> AsyncIterator[list[Any]]:
    """Lists of Faust events: at most `max_records` of them, about `max_bytes` of values,
    or what arrived within `window_s`, whichever comes first. `idle`: also an empty list
    for each window in which nothing arrived (so the consumer can act on time alone)."""
    events: list[EventT] = []
    size = 0
    full = asyncio.Event()
    consumed = asyncio.Event()
    # Set while a batch is handed out: the processor waits on it instead of adding to it.
    handing_out: asyncio.Future[None] | None = None

    async def add_to_batch(value: Any) -> Any:
        nonlocal size, handing_out
        if handing_out is not None:
            try:
                await handing_out
            finally:
                handing_out = None
        event = stream.current_event
        if event is None:
            raise RuntimeError("stream processor ran without a current event")
        events.append(event)
        size += record_size(event)
        if len(events) >= bounds.max_records or size >= bounds.max_bytes:
            full.set()
            consumed.clear()
            # Strictly bounded: wait until this batch is taken before adding to the next.
            await stream.wait(consumed)  # type: ignore[arg-type]
        return value

    stream.enable_acks = False
    stream.add_processor(add_to_batch)
    stream._enable_passive(cast(ChannelT, stream.channel))
    try:
        while not stream.should_stop:
            await stream.wait_for_stopped(full, timeout=bounds.window_s)  # type: ignore[arg-type]
            if not events:
                if idle:
                    yield []
                continue
            handing_out = stream.loop.create_future()
            try:
                yield list(events)
            finally:
                events.clear()
                size = 0
                notify(handing_out)
                full.clear()
                consumed.set()
    finally:
        stream._processors.remove(add_to_batch)
