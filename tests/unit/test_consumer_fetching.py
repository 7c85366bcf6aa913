"""The fetch loop: whole fetches to the feed, with Faust's rules on which records go."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator, Sequence
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from consumer.app import create_app
from consumer.fetching import FeedingConsumer
from consumer.pipeline import RawRecord
from consumer.settings import Settings
from tests.unit.test_consumer_app import FakeDlq, FakeIndexer, ingest

TP0, TP1 = TopicPartition("t", 0), TopicPartition("t", 1)
DEADLINE_S = 5.0


@pytest.fixture(autouse=True)
def loop() -> Iterator[asyncio.AbstractEventLoop]:
    """One event loop for the consumer (Faust binds its services to the loop they are made
    in) and for the test's coroutines, as in the worker."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    asyncio.set_event_loop(None)
    loop.close()


def run(step: Awaitable[Any]) -> Any:
    return asyncio.get_event_loop().run_until_complete(asyncio.wait_for(step, DEADLINE_S))


def fetched(tp: TopicPartition, *offsets: int) -> list[ConsumerRecord[bytes, bytes]]:
    return [
        ConsumerRecord(
            tp.topic, tp.partition, o, 1_700_000_000_123 + o, 0, b"key", b"v%d" % o, None, 3, 2, ()
        )
        for o in offsets
    ]


class Fetches:
    """Stands in for the aiokafka fetch: returns the next planned fetch, once."""

    def __init__(self, consumer: FeedingConsumer, *plans: dict[TopicPartition, list[Any]]) -> None:
        self.consumer = consumer
        self.plans = list(plans)
        self.calls = 0
        self.active: set[TopicPartition] | None = None
        self.during: Any = None  # what happens while the fetch is out (a rebalance, say)

    async def __call__(self, timeout: float) -> tuple[dict[TopicPartition, list[Any]], Any]:
        self.calls += 1
        if self.during is not None:
            self.during()
        return (self.plans.pop(0) if self.plans else {}), self.active


def worker_consumer(
    monkeypatch: pytest.MonkeyPatch, *plans: dict[TopicPartition, list[Any]], batch: int = 1000
) -> tuple[FeedingConsumer, Fetches]:
    app = create_app(
        Settings(batch_size=batch, prefetch_records=1), ingest=ingest(FakeIndexer(), FakeDlq())
    )
    app.consumer_generation_id = 7
    transport: Any = app.transport
    transport.loop = asyncio.get_event_loop()  # the test's loop, whatever ran before
    consumer = app.consumer
    assert isinstance(consumer, FeedingConsumer)
    fetches = Fetches(consumer, *plans)
    monkeypatch.setattr(consumer, "_wait_next_records", fetches)
    return consumer, fetches


def fed(consumer: FeedingConsumer) -> list[RawRecord]:
    return list(consumer.feed._records)


def fetch_once(consumer: FeedingConsumer) -> None:
    run(consumer._fetch_once())


def test_a_fetch_reaches_the_feed_whole_stamped_with_its_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, _ = worker_consumer(monkeypatch, {TP0: fetched(TP0, 0, 1), TP1: fetched(TP1, 5)})

    fetch_once(consumer)

    assert fed(consumer) == [
        RawRecord(b"v0", "t", 0, 0, b"key", 1_700_000_000_123, 7),
        RawRecord(b"v1", "t", 0, 1, b"key", 1_700_000_000_124, 7),
        RawRecord(b"v5", "t", 1, 5, b"key", 1_700_000_000_128, 7),
    ]
    assert consumer._read_offset[TP0] == 1 and consumer._read_offset[TP1] == 5


def test_records_before_the_read_offset_are_not_delivered_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, _ = worker_consumer(monkeypatch, {TP0: fetched(TP0, 3, 4, 5, 6)})
    consumer._read_offset[TP0] = 5  # as Faust: the last record read is delivered again

    fetch_once(consumer)

    assert [record.offset for record in fed(consumer)] == [5, 6]


def test_partitions_paused_since_the_fetch_began_are_left_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, fetches = worker_consumer(monkeypatch, {TP0: fetched(TP0, 0), TP1: fetched(TP1, 0)})
    fetches.active = {TP1}

    fetch_once(consumer)

    assert [(r.partition, r.offset) for r in fed(consumer)] == [(1, 0)]
    assert consumer._read_offset.get(TP0) is None  # fetched again when it is resumed


def test_a_fetch_that_waited_out_a_rebalance_belongs_to_the_new_generation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fetch waits while the flow is stopped and reads from the new assignment's
    positions: its records are the new generation's (dropping them would lose them, as
    nothing seeks back once the rebalance is over)."""
    consumer, fetches = worker_consumer(monkeypatch, {TP0: fetched(TP0, 0, 1)})

    def rebalance() -> None:
        consumer.app.consumer_generation_id = 8

    fetches.during = rebalance

    fetch_once(consumer)

    assert [(r.offset, r.generation) for r in fed(consumer)] == [(0, 8), (1, 8)]


def test_a_fetch_ending_with_the_flow_stopped_seeks_back_to_the_committed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, fetches = worker_consumer(monkeypatch, {TP0: fetched(TP0, 0, 1)})
    seeks: list[str] = []

    async def perform_seek() -> None:
        seeks.append("seek")

    monkeypatch.setattr(consumer, "perform_seek", perform_seek)
    fetches.during = consumer.stop_flow

    fetch_once(consumer)

    assert fed(consumer) == []
    assert seeks == ["seek"]


def test_a_rebalance_empties_the_feed(monkeypatch: pytest.MonkeyPatch) -> None:
    consumer, _ = worker_consumer(monkeypatch, {TP0: fetched(TP0, 0, 1)})
    fetch_once(consumer)
    assert len(consumer.feed) == 2

    consumer.stop_flow()

    assert len(consumer.feed) == 0


def test_a_full_feed_stops_the_fetching_until_a_batch_is_taken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, fetches = worker_consumer(
        monkeypatch, {TP0: fetched(TP0, 0, 1, 2)}, {TP0: fetched(TP0, 3)}, batch=2
    )

    async def scenario() -> Sequence[int]:
        await consumer._fetch_once()  # 3 records: one batch of 2 + 1 prefetched, full
        assert not consumer.feed.has_room
        fetching = asyncio.ensure_future(consumer._fetch_once())
        for _ in range(5):
            await asyncio.sleep(0)
        assert fetches.calls == 1  # waiting for room, not fetching
        taken = await asyncio.wait_for(consumer.feed.take(), DEADLINE_S)
        await asyncio.wait_for(fetching, DEADLINE_S)
        assert fetches.calls == 2
        return [record.offset for record in [*taken, *fed(consumer)]]

    assert run(scenario()) == [0, 1, 2, 3]


def test_a_rebalance_releases_a_fetch_loop_waiting_for_room(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    consumer, fetches = worker_consumer(monkeypatch, {TP0: fetched(TP0, 0, 1, 2)}, batch=2)

    async def scenario() -> None:
        await consumer._fetch_once()
        fetching = asyncio.ensure_future(consumer._fetch_once())
        await asyncio.sleep(0)
        consumer.stop_flow()  # empties the feed; the waiting loop returns without fetching
        await asyncio.wait_for(fetching, DEADLINE_S)

    run(scenario())
    assert fetches.calls == 1


def test_an_unexpected_fetch_error_is_said_and_stops_the_loop(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    consumer, _ = worker_consumer(monkeypatch)

    async def broken(timeout: float) -> Any:
        raise RuntimeError("the broker answered nonsense")

    monkeypatch.setattr(consumer, "_wait_next_records", broken)
    fetcher = SimpleNamespace(_stopped=asyncio.Event())

    with pytest.raises(RuntimeError, match="nonsense"):
        run(consumer._drain_messages(fetcher))  # type: ignore[arg-type]

    assert "the fetch loop failed" in caplog.text
