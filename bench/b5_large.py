"""B5 large events: 500 valid events of ~200 KB each through the worker; peak RSS, all indexed.

Half the events carry a ~200 KB actor name in non-ASCII text (the costliest case for the
search representation, which covers only the first characters of a value), half carry
~200 KB of change values (stored, never searched). All are produced before the worker
starts, so it meets them as fast as Kafka delivers.

In the same run, for comparison, the worker again with its byte bounds lifted
(`AUDIT_BATCH_MAX_BYTES` of 1 GiB, Faust's default prefetch of 4,096 records): what the
bounds buy in peak RSS.
"""

from __future__ import annotations

import json
from typing import Any

from elasticsearch import Elasticsearch

from bench.b1_ingest import produce, run_worker
from bench.events import utc_now
from bench.output import log
from bench.services import create_topics, delete_topics, drop_indices, unique
from schemas.demo import generate_events
from schemas.event import MAX_EVENT_BYTES

N_EVENTS = 500
TARGET_BYTES = 200 * 1024
TARGET_RSS_MB = 250
PARTITIONS = 4
UNBOUNDED = {"AUDIT_BATCH_MAX_BYTES": str(2**30), "AUDIT_PREFETCH_RECORDS": "4096"}


def large_events(n: int) -> list[tuple[bytes, bytes]]:
    """(key, value) records of valid events of ~`TARGET_BYTES` each."""
    records = []
    for i, event in enumerate(generate_events(n, seed=5, now=utc_now(), days=1)):
        if i % 2:
            # 2 bytes per character in UTF-8: ~100,000 characters make ~200 KB.
            event["actor"] = {**event["actor"], "name": "Łukasz " + "ż" * (TARGET_BYTES // 2)}
        else:
            blob = "v" * (TARGET_BYTES // 2)
            event["changes"] = [{"field": "settings", "old": blob, "new": blob[::-1]}]
        value = json.dumps(event, ensure_ascii=False, default=str).encode()
        assert value.__len__() <= MAX_EVENT_BYTES, len(value)
        records.append((str(event["partner_id"]).encode(), value))
    return records


def one_run(es: Elasticsearch, records: list[tuple[bytes, bytes]], env: dict[str, str]) -> Any:
    topic = unique("b5")
    prefix = f"{topic}-worker"
    create_topics([topic], PARTITIONS)
    create_topics([f"{topic}.dlq"], 1)
    try:
        produce(topic, records)
        return run_worker(es, topic, prefix, len(records), profile=False, extra_env=env)
    finally:
        delete_topics([topic, f"{topic}.dlq"])
        drop_indices(es, prefix)


def run(es: Elasticsearch, n: int = N_EVENTS) -> dict[str, Any]:
    records = large_events(n)
    mean_kb = sum(len(v) for _, v in records) / len(records) / 1024
    log(f"B5: {len(records)} events of {mean_kb:,.0f} KB on average")
    worker = one_run(es, records, {})
    log(f"B5: worker {worker['events_per_s']} events/s, peak RSS {worker['peak_rss_mb']} MB")
    unbounded = one_run(es, records, UNBOUNDED)
    log(f"B5: without byte bounds, peak RSS {unbounded['peak_rss_mb']} MB")
    complete = worker["complete"] and worker["indexed"] == len(records)
    return {
        "benchmark": "B5 large events",
        "n_events": len(records),
        "mean_event_kb": round(mean_kb, 1),
        "partitions": PARTITIONS,
        "worker": worker,
        "without_byte_bounds": {"settings": UNBOUNDED, **unbounded},
        "targets": {
            "peak_rss_mb": {
                "target": f"<= {TARGET_RSS_MB}",
                "value": worker["peak_rss_mb"],
                "met": 0 < worker["peak_rss_mb"] <= TARGET_RSS_MB,
            },
            "all_indexed": {"target": "every event", "value": worker["indexed"], "met": complete},
        },
    }
