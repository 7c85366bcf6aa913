"""B1 ingest throughput: the worker against the official bulk helpers, same documents, same run.

1. ``generate_events`` (seeded) -> N records in a fresh 4-partition topic (produced before
   the worker starts, so the worker is never waiting on the producer).
2. Start ``audit-worker`` (unique topic, group, index prefix); time from its start until
   ``_count`` reaches the number of valid events. While the worker runs, ``_count`` is polled
   without forcing a refresh: a forced refresh every poll made Elasticsearch write a tiny
   segment each time and merge them (40-110 us of its CPU per event more than the baseline,
   which is never refreshed while it sends); the documents become visible by the index's own
   1 s refresh, so the worker's time includes that last refresh. Peak RSS from
   /proc/<pid>/status (VmHWM, plus VmRSS samples).
3. Baseline: the same records through the worker's own pure steps (``parse_event`` +
   ``build_document`` + ``index_name``), done *before* timing, then bulk-``create``d with
   ``elasticsearch.helpers.parallel_bulk`` under a few chunk sizes / thread counts into fresh
   prefixes with the same index template; the best is the baseline (the physical limit of
   "Elasticsearch indexing these documents" on this machine).
"""

from __future__ import annotations

import multiprocessing
import os
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer
from elasticsearch import Elasticsearch
from elasticsearch.helpers import parallel_bulk

from bench import b1_lookup
from bench.apps import worker_env
from bench.events import SEED, event_bytes, utc_now
from bench.machine import RssSampler
from bench.output import Profiler, log, logs_dir
from bench.services import KAFKA, create_topics, delete_topics, drop_indices, es_count, unique
from bench.stats import ratio
from consumer.settings import Settings as WorkerSettings
from deploy.local.processes import Service, children, free_port
from schemas.demo import generate_events
from schemas.document import stored_log
from schemas.event import InvalidEvent, parse_event
from schemas.index_template import index_template, template_name

WORKER_DEFAULTS = WorkerSettings()
PARTITIONS = 4
# (chunk_size, thread_count) tried for the baseline; the best one is the baseline.
BULK_SETTINGS = ((500, 2), (1000, 2), (2000, 2), (2000, 4))
TARGET_RATIO = 0.8
TARGET_RSS_MB = 250
#: The worker without digests (B1's digest-cost comparison).
WITHOUT_DIGESTS = ("python", ("-m", "bench.worker_without_digests"))
#: Events of the run indexed twice more, with and without the conflict check (b1_lookup).
LOOKUP_EVENTS = 20_000


def produce(topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce every record (batched, async delivery), return events/s of the producer."""
    producer = Producer(
        {
            "bootstrap.servers": KAFKA,
            "linger.ms": 50,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 2_000_000,
            "queue.buffering.max.kbytes": 2_000_000,
            "enable.idempotence": True,
        }
    )
    failures: list[str] = []

    def delivered(error: Any, _message: Any) -> None:
        if error is not None:
            failures.append(str(error))

    started = time.perf_counter()
    for key, value in records:
        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=delivered)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    remaining = producer.flush(120)
    elapsed = time.perf_counter() - started
    if remaining or failures:
        raise RuntimeError(f"produce failed: {remaining} undelivered, {failures[:3]}")
    return len(records) / elapsed


def _normalize_chunk(args: tuple[list[bytes], str]) -> list[tuple[str, str, dict[str, Any]]]:
    values, ingested = args
    ingested_at = datetime.fromisoformat(ingested)
    out = []
    for raw in values:
        try:
            event = parse_event(raw, now=ingested_at)
        except InvalidEvent:
            continue
        suffix, doc_id, document = stored_log("", event, ingested_at)  # "-YYYY.MM"
        out.append((suffix, doc_id, document))
    return out


def normalize(values: list[bytes], ingested_at: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    """What the worker does to each record (its pure part: ``parse_event``, ``index_name``,
    ``build_document``), on a process pool: (index suffix, _id, document), distinct ids."""
    chunks = [(values[i : i + 5000], ingested_at.isoformat()) for i in range(0, len(values), 5000)]
    documents: dict[str, tuple[str, str, dict[str, Any]]] = {}
    with multiprocessing.get_context("fork").Pool(2) as pool:
        for part in pool.imap(_normalize_chunk, chunks):
            for item in part:
                documents[item[1]] = item
    return list(documents.values())


def wait_count(
    es: Elasticsearch,
    index: str,
    expected: int,
    timeout: float,
    alive: Any = None,
    interval: float = 0.5,
    refresh: bool = True,
) -> tuple[float | None, list[tuple[float, int]]]:
    """Poll ``_count`` until ``expected``; (seconds to reach it, series). ``refresh``: force
    a refresh before each count (the baseline, once everything is sent); without, the count
    is what the index's own refresh has made visible (the worker, while it indexes)."""
    started = time.monotonic()
    series: list[tuple[float, int]] = []
    while True:
        count = es_count(es, index, refresh=refresh)
        elapsed = time.monotonic() - started
        series.append((round(elapsed, 2), count))
        if count >= expected:
            return elapsed, series
        if elapsed > timeout or (alive is not None and not alive()):
            return None, series
        time.sleep(interval)


def run_worker(
    es: Elasticsearch,
    topic: str,
    prefix: str,
    expected: int,
    profile: bool,
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
    processes: int = 1,
    digests: bool = True,
) -> dict[str, Any]:
    """``workers`` separate ``audit-worker`` commands in one consumer group, each with
    ``processes`` worker processes (``AUDIT_WORKER_PROCESSES``); 1 x 1 = the benchmark.
    ``digests=False``: the same worker without its integrity digests (a benchmark-only shim,
    ``bench.worker_without_digests``), to measure what they cost."""
    profiler = Profiler(profile, "b1-worker")
    extra = {"AUDIT_WORKER_PROCESSES": str(processes), **(extra_env or {})}
    script, argv = ("audit-worker", ()) if digests else WITHOUT_DIGESTS
    services = [
        Service(
            script,
            {**worker_env(prefix, topic, free_port()), **extra},
            logs_dir() / f"{prefix}-worker{i}.log",
            argv,
        )
        for i in range(workers)
    ]
    service = services[0]
    timeout = max(180.0, expected / 200)
    try:
        for i, each in enumerate(services):
            profiler.attach(each.pid, f"worker{i}" if i else "worker")
        with RssSampler(lambda: [p for s in services for p in (s.pid, *children(s.pid))]) as rss:
            elapsed, series = wait_count(
                es,
                f"{prefix}-*",
                expected,
                timeout,
                alive=lambda: all(s.alive() for s in services),
                interval=0.2,
                refresh=False,
            )
            rss.sample()
        profiler.stop()
        startup = next((t for t, c in series if c > 0), None)
    finally:
        for each in services:
            each.stop()
    indexed = series[-1][1] if series else 0
    result: dict[str, Any] = {
        "complete": elapsed is not None,
        "indexed": indexed,
        "seconds": round(elapsed, 2) if elapsed else None,
        "events_per_s": round(expected / elapsed, 1) if elapsed else None,
        "first_document_after_s": startup,
        "peak_rss_mb": rss.peak_mb(),
        "rss_series_mb": [(t, max(s.values(), default=None)) for t, s, _ in rss.series],
        "count_series": series,
        "settings": worker_settings(extra),
        "profiles": profiler.outputs,
        "processes": workers * processes,
    }
    if elapsed and startup is not None and elapsed > startup:
        result["steady_events_per_s"] = round(expected / (elapsed - startup), 1)
    if not result["complete"]:
        result["events_per_s"] = round(indexed / (series[-1][0] or 1), 1)
        log(f"B1 worker did not finish: {indexed}/{expected} indexed; log tail:\n{service.tail()}")
    return result


def scale_out(
    es: Elasticsearch, topic: str, valid: int, workers: int, processes: int, best: dict[str, Any]
) -> dict[str, Any] | None:
    """QUALITY B1's second figure: the worker with as many processes as the best baseline
    has threads (`AUDIT_WORKER_PROCESSES`), on the same topic from the start, in a group of
    its own; None when the run already had that many."""
    count = int(best["thread_count"])
    if workers * processes >= count:
        return None
    prefix = f"{topic}-scaled"
    try:
        result = run_worker(
            es, topic, prefix, valid, False, workers, {"AUDIT_GROUP_ID": f"{prefix}-group"}, count
        )
    finally:
        drop_indices(es, prefix)
    log(f"B1: worker with {count} processes {result['events_per_s']} events/s")
    return {
        **result,
        "ratio": ratio(result["events_per_s"], best["events_per_s"]),
        "steady_ratio": ratio(result.get("steady_events_per_s"), best["events_per_s"]),
    }


def digest_cost(with_digests: dict[str, Any], without: dict[str, Any]) -> dict[str, Any]:
    """Issue 14's figure: the worker's throughput with digests over without, same run (the
    run without comes second, on a topic already read once: if anything, it is favoured)."""
    share = ratio(with_digests["events_per_s"], without["events_per_s"])
    return {
        "with_events_per_s": with_digests["events_per_s"],
        "without_events_per_s": without["events_per_s"],
        "without_peak_rss_mb": without["peak_rss_mb"],
        "ratio": share,
        "target": ">= 0.9 (within 10 %)",
        "met": share is not None and share >= 0.9,
    }


def worker_settings(extra: dict[str, str]) -> dict[str, str]:
    """The batch settings the worker ran with (its defaults unless the run set them)."""
    names = {
        "AUDIT_BATCH_SIZE": WORKER_DEFAULTS.batch_size,
        "AUDIT_BATCH_WINDOW_SECONDS": WORKER_DEFAULTS.batch_window_seconds,
        "AUDIT_BATCH_MAX_BYTES": WORKER_DEFAULTS.batch_max_bytes,
        "AUDIT_PREFETCH_RECORDS": WORKER_DEFAULTS.prefetch_records,
    }
    env = {**os.environ, **extra}
    return {name: env.get(name, f"{default} (default)") for name, default in names.items()}


def run_baseline(
    es: Elasticsearch, docs: list[tuple[str, str, dict[str, Any]]], chunk: int, threads: int
) -> dict[str, Any]:
    prefix = unique(f"b1-bulk{chunk}x{threads}")
    es.indices.put_index_template(name=template_name(prefix), **index_template(prefix))
    errors = 0
    try:
        started = time.monotonic()
        actions = (
            {"_op_type": "create", "_index": prefix + suffix, "_id": doc_id, "_source": doc}
            for suffix, doc_id, doc in docs
        )
        for ok, _item in parallel_bulk(
            es,
            actions,
            chunk_size=chunk,
            thread_count=threads,
            max_chunk_bytes=50 * 2**20,
            raise_on_error=False,
        ):
            errors += not ok
        sent = time.monotonic() - started
        elapsed, _series = wait_count(es, f"{prefix}-*", len(docs), timeout=600, interval=0.2)
        total = time.monotonic() - started
    finally:
        drop_indices(es, prefix)
    return {
        "chunk_size": chunk,
        "thread_count": threads,
        "errors": errors,
        "seconds": round(total, 2),
        "bulk_seconds": round(sent, 2),
        "events_per_s": round(len(docs) / total, 1) if elapsed is not None else None,
    }


def run(
    es: Elasticsearch, n: int, profile: bool = False, workers: int = 1, processes: int = 1
) -> dict[str, Any]:
    now = utc_now()
    log(f"B1: generating {n:,} events (seed {SEED})")
    events = list(
        generate_events(
            n, seed=SEED, now=now, partners=20, organizations=500, days=30, failure_rate=0.05
        )
    )
    records = [(str(e["partner_id"]).encode(), event_bytes(e)) for e in events]
    del events
    topic = unique("b1")
    prefix = f"{topic}-worker"
    create_topics([topic], PARTITIONS)
    create_topics([f"{topic}.dlq"], 1)
    try:
        rate = produce(topic, records)
        log(f"B1: produced {len(records):,} records into {topic} ({rate:,.0f}/s)")
        docs = normalize([value for _, value in records], datetime.now(UTC))
        valid = len(docs)
        log(f"B1: {valid:,} valid distinct events; starting audit-worker")
        worker = run_worker(es, topic, prefix, valid, profile, workers, processes=processes)
        log(f"B1: worker {worker['events_per_s']} events/s, peak RSS {worker['peak_rss_mb']} MB")
        drop_indices(es, prefix)
        digests_off = run_worker(
            es,
            topic,
            f"{topic}-nodigests",
            valid,
            False,
            workers,
            {"AUDIT_GROUP_ID": f"{topic}-nodigests-group"},
            processes,
            digests=False,
        )
        drop_indices(es, f"{topic}-nodigests")
        log(f"B1: worker without digests {digests_off['events_per_s']} events/s")
        conflict_check = b1_lookup.run(
            es, [value for _, value in records[:LOOKUP_EVENTS]], now, worker["events_per_s"]
        )
        baselines = []
        for chunk, threads in BULK_SETTINGS:
            result = run_baseline(es, docs, chunk, threads)
            log(f"B1: bulk chunk={chunk} threads={threads}: {result['events_per_s']} events/s")
            baselines.append(result)
        best = max(baselines, key=lambda b: b["events_per_s"] or 0)
        scaled = scale_out(es, topic, valid, workers, processes, best)
    finally:
        delete_topics([topic, f"{topic}.dlq"])
        drop_indices(es, prefix)
    worker_ratio = ratio(worker["events_per_s"], best["events_per_s"])
    steady_ratio = ratio(worker.get("steady_events_per_s"), best["events_per_s"])
    return {
        "benchmark": "B1 ingest throughput",
        "n_events": n,
        "n_valid": valid,
        "partitions": PARTITIONS,
        "producer_events_per_s": round(rate, 1),
        "worker": worker,
        "baseline": {
            "method": "elasticsearch.helpers.parallel_bulk, op_type=create, same "
            "index template, documents built beforehand",
            "best": best,
            "tried": baselines,
        },
        "ratio": worker_ratio,
        "steady_ratio": steady_ratio,
        "scaled": scaled,
        "conflict_check": conflict_check,
        "digests": digest_cost(worker, digests_off),
        "targets": {
            "ratio": {
                "target": f">= {TARGET_RATIO}",
                "value": worker_ratio,
                "met": worker_ratio is not None and worker_ratio >= TARGET_RATIO,
            },
            "peak_rss_mb": {
                "target": f"<= {TARGET_RSS_MB}",
                "value": worker["peak_rss_mb"],
                "met": 0 < worker["peak_rss_mb"] <= TARGET_RSS_MB,
            },
        },
    }
