"""B1a pure core: Kafka value bytes in -> bulk-ready bytes out, on one core, no I/O.

The worker's pure steps exactly as the worker runs them (``consumer.pipeline.process_batch``
in batches of the worker's default size: validate, normalize, search representation,
fingerprint, serialize), beside the floor measured in the same process and the same run:
``orjson.loads`` of each value + ``orjson.dumps`` of the document the core made from it.
Rounds alternate core and floor, so a neighbour's load falls on both alike; CPU time of this
process (``time.process_time``) is the figure, wall time is kept beside it.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from bench.events import SEED, event_bytes, utc_now
from bench.output import log
from bench.stats import ratio
from consumer.pipeline import IndexAction, RawRecord, process_batch, tune_garbage_collector
from consumer.settings import Settings as WorkerSettings
from schemas.demo import generate_events

BATCH = WorkerSettings().batch_size
ROUNDS = 5
TARGET_EVENTS_PER_S = 15_000
PREFIX = "bench-b1a"


def records(n: int, now: datetime) -> list[RawRecord]:
    """B1's event mix (20 partners, 500 organizations, 5 % failures, 30 days) as records."""
    events = generate_events(
        n, seed=SEED, now=now, partners=20, organizations=500, days=30, failure_rate=0.05
    )
    return [
        RawRecord(event_bytes(e), "bench-b1a", i % 4, i, str(e["partner_id"]).encode())
        for i, e in enumerate(events)
    ]


def core(batch: list[RawRecord], now: datetime) -> tuple[list[IndexAction], bytes]:
    """What the worker does to a batch before the bulk call: its actions and the sources."""
    actions = process_batch(batch, PREFIX, now).actions
    return actions, b"\n".join(action.source for action in actions)


def run_core(items: list[RawRecord], now: datetime) -> list[Any]:
    """The core over `items` in the worker's batches; the documents it made (for the floor)."""
    documents: list[Any] = []
    for start in range(0, len(items), BATCH):
        actions, _body = core(items[start : start + BATCH], now)
        documents += [action.document for action in actions]
    return documents


def run_floor(values: list[bytes], documents: list[Any]) -> int:
    sent = 0
    for value, document in zip(values, documents, strict=True):
        orjson.loads(value)
        sent += len(orjson.dumps(document))
    return sent


def _mean_size(items: list[RawRecord]) -> float:
    return sum(len(r.value or b"") for r in items) / len(items)


def _round(items: list[RawRecord], now: datetime) -> dict[str, Any]:
    """Core, then floor (on the documents the core made), over the same events."""
    n = len(items)
    values = [r.value or b"" for r in items]
    made: list[Any] = []
    core_cpu, core_wall = timed(lambda: made.extend(run_core(items, now)))
    documents = made
    if len(documents) != n:
        raise RuntimeError(f"B1a: {n - len(documents)} of {n} generated events were refused")
    floor_cpu, floor_wall = timed(lambda: run_floor(values, documents))
    log(f"B1a: core {n / core_cpu:,.0f}/s, floor {n / floor_cpu:,.0f}/s (CPU time)")
    return {
        "core_events_per_s": round(n / core_cpu, 1),
        "floor_events_per_s": round(n / floor_cpu, 1),
        "core_wall_events_per_s": round(n / core_wall, 1),
        "floor_wall_events_per_s": round(n / floor_wall, 1),
        "ratio": ratio(n / core_cpu, n / floor_cpu),
    }


def timed(work: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call, from a clean heap."""
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    work()
    return time.process_time() - cpu, time.perf_counter() - wall


def run(n: int) -> dict[str, Any]:
    tune_garbage_collector()  # as the worker runs
    now = utc_now()
    # Every round gets events of its own, after a warm-up on others: a running worker's
    # caches hold recurring names, never the Log IDs of the events it is about to see.
    items = records(n * (ROUNDS + 1), now)
    run_core(items[:n], now)
    log(f"B1a: {n:,} events per round, {_mean_size(items[n:]):,.0f} bytes each on average")
    rounds = [_round(items[n * r : n * (r + 1)], now) for r in range(1, ROUNDS + 1)]
    values = [r.value or b"" for r in items[n:]]
    documents = [a.document for a in process_batch(items[n : 2 * n], PREFIX, now).actions]
    core_rate = statistics.median(r["core_events_per_s"] for r in rounds)
    return {
        "benchmark": "B1a pure core",
        "n_events": n,
        "batch_size": BATCH,
        "mean_value_bytes": round(sum(map(len, values)) / len(values), 1),
        "mean_source_bytes": round(sum(len(orjson.dumps(d)) for d in documents) / n, 1),
        "core_events_per_s": core_rate,
        "floor_events_per_s": statistics.median(r["floor_events_per_s"] for r in rounds),
        "core_wall_events_per_s": statistics.median(r["core_wall_events_per_s"] for r in rounds),
        "ratio": statistics.median(r["ratio"] for r in rounds),
        "rounds": rounds,
        "targets": {
            "core_events_per_s": {
                "target": f">= {TARGET_EVENTS_PER_S:,} on one core",
                "value": core_rate,
                "met": core_rate >= TARGET_EVENTS_PER_S,
            }
        },
    }
