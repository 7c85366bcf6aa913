"""InFlight: the next batch is prepared while the previous one is indexed; order is kept."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from consumer.ingest import InFlight
from consumer.pipeline import Processed, RawRecord


def event(offset: int) -> RawRecord:
    return RawRecord(value=b"{}", topic="t", partition=0, offset=offset)


class SlowIngest:
    """Indexing takes a while; every step is written down in `log`."""

    def __init__(self) -> None:
        self.log: list[str] = []

    async def prepare(self, records: Sequence[RawRecord]) -> Processed:
        self.log.append(f"prepare {records[0].offset}")
        return Processed([], [])

    async def handle(self, records: Sequence[RawRecord], processed: Processed | None) -> None:
        assert processed is not None  # made ahead, not again
        self.log.append(f"index {records[0].offset} start")
        await asyncio.sleep(0.05)
        self.log.append(f"index {records[0].offset} done")


class Committer:
    def __init__(self, log: list[str]) -> None:
        self.log = log

    def handled(self, records: Sequence[RawRecord]) -> None:
        self.log.append(f"handled {records[0].offset}")


def test_the_next_batch_is_prepared_while_the_previous_one_is_indexed() -> None:
    ingest = SlowIngest()
    in_flight = InFlight(ingest, Committer(ingest.log), max_bytes=1000)  # type: ignore[arg-type]

    async def scenario() -> None:
        await in_flight.take([event(0)])
        await in_flight.take([event(1)])
        await in_flight.take([])  # an idle window: the last batch is finished
        await in_flight.finish()

    asyncio.run(scenario())

    assert ingest.log == [
        "prepare 0",
        "index 0 start",
        "prepare 1",  # before batch 0 is done
        "index 0 done",
        "handled 0",  # handed to the committer only once done...
        "index 1 start",  # ...and only then is the next batch indexed
        "index 1 done",
        "handled 1",
    ]


def test_a_cancelled_batch_is_never_handed_to_the_committer() -> None:
    ingest = SlowIngest()
    in_flight = InFlight(ingest, Committer(ingest.log), max_bytes=1000)  # type: ignore[arg-type]

    async def scenario() -> None:
        await in_flight.take([event(0)])
        await in_flight.cancel()  # SIGTERM mid-batch
        await in_flight.finish()

    asyncio.run(scenario())

    assert "handled 0" not in ingest.log and "index 0 done" not in ingest.log


def test_large_batches_are_not_overlapped() -> None:
    # Each batch holds 2 bytes of values; 3 may be in flight: the second waits for the first.
    ingest = SlowIngest()
    in_flight = InFlight(ingest, Committer(ingest.log), max_bytes=3)  # type: ignore[arg-type]

    async def scenario() -> None:
        await in_flight.take([event(0)])
        await in_flight.take([event(1)])
        await in_flight.finish()

    asyncio.run(scenario())

    assert ingest.log.index("prepare 1") > ingest.log.index("handled 0")
