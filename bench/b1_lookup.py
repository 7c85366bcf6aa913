"""The cost of the conflict check in B1: the stored-log lookup before each bulk create.

Issue 10 asked that the lookup (one ``ids`` search on the read alias per batch, see
``consumer.indexer.Indexer``) cost at most 5 % of B1. Measured in this process with the
worker's own ``Indexer``: the same batches (made beforehand by the pure core) are indexed
twice into two fresh prefixes, batch by batch in turn, once as shipped and once with the
lookup replaced by "nothing stored" (a monkeypatch that exists only here). Each batch's
lookup is timed on the way. Reported: the lookup's share of the indexer's time per batch,
and of the worker's whole time per batch (its B1 events/s, same run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from elasticsearch import Elasticsearch

from bench.output import log
from bench.services import ES_URL, drop_indices, unique
from consumer.indexer import Indexer, ensure_template
from consumer.pipeline import IndexAction, RawRecord, process_batch
from consumer.settings import Settings

BATCH = Settings().batch_size

Lookup = Callable[[Sequence[IndexAction]], Awaitable[dict[str, Any]]]


class TimedIndexer:
    """The worker's `Indexer` with its lookup timed (or skipped: `lookup=False`)."""

    def __init__(self, prefix: str, lookup: bool) -> None:
        settings = Settings(elasticsearch_url=ES_URL, index_prefix=prefix)
        ensure_template(settings)
        self.indexer = Indexer(settings)
        self.lookup_s = 0.0
        self.index_s = 0.0
        shipped: Lookup = self.indexer._stored

        async def timed(actions: Sequence[IndexAction]) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                return await shipped(actions) if lookup else {}
            finally:
                self.lookup_s += time.perf_counter() - started

        self.indexer._stored = timed  # type: ignore[method-assign]

    async def index(self, actions: Sequence[IndexAction]) -> None:
        started = time.perf_counter()
        await self.indexer.index(actions)
        self.index_s += time.perf_counter() - started


def _batches(records: list[RawRecord], prefix: str, now: datetime) -> list[list[IndexAction]]:
    """The worker's batches of `records`, made beforehand (the pure core is not timed here)."""
    return [
        process_batch(records[i : i + BATCH], prefix, now).actions
        for i in range(0, len(records), BATCH)
    ]


async def _measure(
    records: list[RawRecord], with_prefix: str, without_prefix: str, now: datetime
) -> Any:
    shipped, skipped = TimedIndexer(with_prefix, True), TimedIndexer(without_prefix, False)
    try:
        # In turn, batch by batch, so both meet the same load from the rest of the machine.
        for on, off in zip(
            _batches(records, with_prefix, now), _batches(records, without_prefix, now), strict=True
        ):
            await shipped.index(on)
            await skipped.index(off)
    finally:
        await shipped.indexer.close()
        await skipped.indexer.close()
    return shipped, skipped


def run(
    es: Elasticsearch, values: Sequence[bytes], now: datetime, worker_events_per_s: float | None
) -> dict[str, Any]:
    """Index `values` (as the worker would make them) with and without the lookup."""
    records = [RawRecord(value, "bench", 0, i) for i, value in enumerate(values)]
    with_prefix, without_prefix = unique("b1-lookup-on"), unique("b1-lookup-off")
    try:
        shipped, skipped = asyncio.run(_measure(records, with_prefix, without_prefix, now))
    finally:
        drop_indices(es, with_prefix)
        drop_indices(es, without_prefix)
    n, batches = len(records), -(-len(records) // BATCH)
    per_batch_ms = {
        "lookup": 1000 * shipped.lookup_s / batches,
        "indexer_with_lookup": 1000 * shipped.index_s / batches,
        "indexer_without_lookup": 1000 * skipped.index_s / batches,
    }
    worker_batch_ms = 1000 * BATCH / worker_events_per_s if worker_events_per_s else None
    result = {
        "events": n,
        "batches": batches,
        "batch_size": BATCH,
        "per_batch_ms": {k: round(v, 2) for k, v in per_batch_ms.items()},
        "share_of_indexer": round(shipped.lookup_s / shipped.index_s, 4),
        "indexer_slowdown": round(shipped.index_s / skipped.index_s - 1, 4),
        "worker_batch_ms": round(worker_batch_ms, 1) if worker_batch_ms else None,
        "share_of_worker_batch": (
            round(per_batch_ms["lookup"] / worker_batch_ms, 4) if worker_batch_ms else None
        ),
    }
    log(f"B1 conflict check: {result}")
    return result
