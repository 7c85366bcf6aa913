"""RecordFeed: batches bounded by count, bytes and time; the fetch loop's back-pressure."""

from __future__ import annotations

import asyncio

import pytest

from consumer.batching import BatchBounds, RecordFeed
from consumer.pipeline import RawRecord

DEADLINE_S = 5.0  # generous: a feed that never hands out fails here instead of hanging


def records(count: int, size: int = 10, start: int = 0) -> list[RawRecord]:
    return [RawRecord(b"x" * size, "t", 0, start + i) for i in range(count)]


def feed(max_records: int = 3, max_bytes: int = 1000, window_s: float = 0.05) -> RecordFeed:
    return RecordFeed(BatchBounds(max_records, max_bytes, window_s), prefetch_records=2)


async def take(source: RecordFeed) -> list[RawRecord]:
    return await asyncio.wait_for(source.take(), DEADLINE_S)


def offsets(batch: list[RawRecord]) -> list[int]:
    return [record.offset for record in batch]


def test_a_batch_closes_at_its_record_count_and_keeps_the_order() -> None:
    source = feed(max_records=3)
    source.add(records(7))

    async def scenario() -> list[list[int]]:
        return [offsets(await take(source)) for _ in range(3)]

    assert asyncio.run(scenario()) == [[0, 1, 2], [3, 4, 5], [6]]


def test_a_batch_closes_at_its_bytes_and_a_larger_record_is_a_batch_of_its_own() -> None:
    source = feed(max_records=100, max_bytes=1000)
    source.add([*records(3, size=400), *records(1, size=5000, start=3), *records(1, start=4)])

    async def scenario() -> list[list[int]]:
        return [offsets(await take(source)) for _ in range(4)]

    assert asyncio.run(scenario()) == [[0, 1], [2], [3], [4]]


def test_a_partial_batch_is_handed_out_when_its_window_passes() -> None:
    source = feed(max_records=1000, window_s=0.05)
    source.add(records(2))

    assert offsets(asyncio.run(take(source))) == [0, 1]


def test_a_full_batch_does_not_wait_for_the_window() -> None:
    source = feed(max_records=2, window_s=3600)  # the window would outlast the deadline
    source.add(records(2))

    assert offsets(asyncio.run(take(source))) == [0, 1]


def test_records_added_while_waiting_close_the_batch() -> None:
    source = feed(max_records=2, window_s=3600)

    async def scenario() -> list[int]:
        waiting = asyncio.ensure_future(take(source))
        await asyncio.sleep(0)
        source.add(records(1))
        await asyncio.sleep(0)
        assert not waiting.done()  # one of two: still waiting
        source.add(records(1, start=1))
        return offsets(await waiting)

    assert asyncio.run(scenario()) == [0, 1]


@pytest.mark.parametrize("idle", [True, False])
def test_idle_windows_are_empty_batches_only_when_asked_for(idle: bool) -> None:
    source = feed(window_s=0.01)

    async def scenario() -> list[list[int]]:
        batches = source.batches(idle=idle)
        first = asyncio.ensure_future(anext(batches))
        await asyncio.sleep(0.05)  # a few windows with nothing in them
        source.add(records(1))
        return [offsets(await asyncio.wait_for(first, DEADLINE_S))]

    assert asyncio.run(scenario()) == ([[]] if idle else [[0]])


def test_the_feed_holds_one_batch_plus_the_prefetch_then_has_no_room() -> None:
    source = feed(max_records=3)  # capacity: 3 + 2 prefetched
    source.add(records(4))
    assert source.has_room
    source.add(records(2, start=4))  # a fetch is taken whole, even past the bound
    assert not source.has_room
    assert len(source) == 6

    async def scenario() -> bool:
        room = asyncio.ensure_future(source.wait_for_room())
        await asyncio.sleep(0)
        assert not room.done()  # the fetch loop waits...
        await take(source)  # ...until the agent takes a batch
        await asyncio.wait_for(room, DEADLINE_S)
        return source.has_room

    assert asyncio.run(scenario())


def test_bytes_also_bound_what_the_feed_holds_one_batch_ready_and_one_filling() -> None:
    source = feed(max_records=1000, max_bytes=1000)
    source.add(records(3, size=600))
    assert source.has_room  # 1,800 bytes: a batch ready, the next still filling
    source.add(records(1, size=600, start=3))

    assert not source.has_room


def test_clear_drops_what_is_waiting_and_makes_room() -> None:
    source = feed(max_records=3)
    source.add(records(6))

    assert source.clear() == 6
    assert len(source) == 0
    assert source.has_room
    assert asyncio.run(take(source)) == []  # nothing left: the window passes empty
