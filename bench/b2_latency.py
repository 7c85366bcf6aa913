"""B2 end-to-end latency: ``produce()`` at a steady rate -> the log returned by the read API.

The worker and the API run as subprocesses on a fresh topic and index prefix. Events come
from ``generate_events`` (seeded) with a unique id, ``occurred_at`` = the moment they are
produced, and one of four bench partners. Two poller threads (two partners each, owner
tokens) call the list endpoint newest-first over a window starting just before the oldest
event not seen yet, following ``next_cursor`` while a page brings anything new, so each
poll is small and nothing is missed. Latency = first time the poller sees the id minus the
time just before ``produce()`` (both ``time.monotonic`` in this process).
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer
from elasticsearch import Elasticsearch

from bench.apps import ApiClient, api_env, api_path, mint_token, worker_env
from bench.events import SEED, event_bytes, rfc3339, utc_now
from bench.output import log, logs_dir
from bench.services import KAFKA, create_topics, delete_topics, drop_indices, unique
from bench.stats import summary_ms
from consumer.settings import Settings as WorkerSettings
from deploy.local.processes import Service, free_port
from schemas.demo import generate_events

WORKER_DEFAULTS = WorkerSettings()
PARTNERS = 4
POLLERS = 2
POLL_CYCLE_S = 0.05  # each partner is polled about every 50 ms
PAGE = 200
WARMUP = 40


class Tracker:
    """Produced-but-not-yet-seen events per partner, and when each was first seen."""

    def __init__(self, partners: list[str]) -> None:
        self.lock = threading.Lock()
        self.pending: dict[str, dict[str, tuple[float, datetime]]] = {p: {} for p in partners}
        self.seen: dict[str, float] = {}
        self.produced: dict[str, float] = {}
        self.requests = 0
        self.request_seconds: list[float] = []
        self.errors: list[str] = []

    def add(self, partner: str, event_id: str, mono: float, wall: datetime) -> None:
        with self.lock:
            self.pending[partner][event_id] = (mono, wall)
            self.produced[event_id] = mono

    def oldest(self, partner: str) -> datetime | None:
        with self.lock:
            pending = self.pending[partner]
            return min((wall for _, wall in pending.values()), default=None)

    def mark(self, partner: str, ids: list[str], at: float) -> int:
        new = 0
        with self.lock:
            for event_id in ids:
                if event_id in self.pending[partner]:
                    del self.pending[partner][event_id]
                    self.seen[event_id] = at
                    new += 1
        return new

    def outstanding(self) -> int:
        with self.lock:
            return sum(len(p) for p in self.pending.values())


def poller(base_url: str, partners: list[str], tracker: Tracker, stop: threading.Event) -> None:
    client = ApiClient(base_url, timeout=30)
    tokens = {p: mint_token(p) for p in partners}
    while not stop.is_set():
        cycle = time.monotonic()
        for partner in partners:
            oldest = tracker.oldest(partner)
            if oldest is None:
                continue
            params: dict[str, str] = {
                "from": rfc3339(oldest - timedelta(seconds=2)),
                "limit": str(PAGE),
            }
            while True:
                started = time.monotonic()
                try:
                    status, body = client.get(
                        api_path("/api/v1/audit-logs", params), tokens[partner]
                    )
                except OSError as error:
                    tracker.errors.append(repr(error))
                    break
                at = time.monotonic()
                tracker.requests += 1
                tracker.request_seconds.append(at - started)
                if status != 200:
                    tracker.errors.append(f"{status}: {body[:200]!r}")
                    break
                page = json.loads(body)
                new = tracker.mark(partner, [item["id"] for item in page["items"]], at)
                if not new or not page.get("next_cursor"):
                    break
                params = {**params, "cursor": page["next_cursor"]}
        rest = POLL_CYCLE_S - (time.monotonic() - cycle)
        if rest > 0:
            stop.wait(rest)
    client.close()


def stage_breakdown(
    es: Elasticsearch, prefix: str, ids: list[str], tracker: Tracker
) -> dict[str, Any]:
    """Split each latency at the worker's ``event.ingested`` (the wall time its batch was
    processed): produce -> batch processing starts (Kafka, consumer, take() buffering), and
    batch start -> returned by the API (validation, bulk, refresh, the poll)."""
    reply = es.search(
        index=f"{prefix}-*",
        size=len(ids) + 100,
        query={"ids": {"values": ids}},
        source_includes=["event.id", "event.ingested", "@timestamp"],
    )
    waited, rest = [], []
    for hit in reply["hits"]["hits"]:
        doc = hit["_source"]
        event_id = doc["event"]["id"]
        if event_id not in tracker.seen:
            continue
        occurred = datetime.fromisoformat(doc["@timestamp"].replace("Z", "+00:00"))
        ingested = datetime.fromisoformat(doc["event"]["ingested"].replace("Z", "+00:00"))
        wait = (ingested - occurred).total_seconds()
        waited.append(wait)
        rest.append(tracker.seen[event_id] - tracker.produced[event_id] - wait)
    return {
        "produce_to_batch_start": summary_ms(waited),
        "batch_start_to_api": summary_ms(rest),
    }


def refresh_interval(es: Elasticsearch, prefix: str) -> str:
    settings = es.indices.get_settings(
        index=f"{prefix}-*", name="index.refresh_interval", include_defaults=True
    )
    for index in settings.values():
        for part in ("settings", "defaults"):
            value = index.get(part, {}).get("index", {}).get("refresh_interval")
            if value:
                return str(value)
    return "1s"


def seconds_of(interval: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0}
    for unit in ("ms", "s", "m"):
        if interval.endswith(unit):
            return float(interval[: -len(unit)]) * units[unit]
    return float(interval)


def run(es: Elasticsearch, n: int, rate: float) -> dict[str, Any]:
    topic = unique("b2")
    prefix = f"{topic}-idx"
    partners = [f"{topic}-p{i}" for i in range(PARTNERS)]
    api_port = free_port()
    base_url = f"http://127.0.0.1:{api_port}"
    create_topics([topic], 4)
    create_topics([f"{topic}.dlq", f"{topic}.downloads"], 1)
    worker = Service(
        "audit-worker", worker_env(prefix, topic, free_port()), logs_dir() / f"{topic}-worker.log"
    )
    api = Service(
        "audit-api",
        api_env(prefix, f"{topic}.downloads", api_port),
        logs_dir() / f"{topic}-api.log",
    )
    tracker = Tracker(partners)
    stop = threading.Event()
    threads: list[threading.Thread] = []
    producer = Producer(
        {"bootstrap.servers": KAFKA, "linger.ms": 5, "acks": "all", "enable.idempotence": True}
    )
    try:
        api.wait_http(f"{base_url}/healthz")
        for index in range(POLLERS):
            mine = partners[index::POLLERS]
            thread = threading.Thread(
                target=poller,
                args=(base_url, mine, tracker, stop),
                daemon=True,
                name=f"poller-{index}",
            )
            thread.start()
            threads.append(thread)
        events = generate_events(
            n + WARMUP,
            seed=SEED + 2,
            now=utc_now(),
            partners=20,
            organizations=500,
            days=1,
            failure_rate=0.05,
        )

        def send(i: int, event: dict[str, Any]) -> tuple[str, float]:
            partner = partners[i % PARTNERS]
            wall = datetime.now(UTC)
            event = {
                **event,
                "event_id": f"{topic}-{i}",
                "partner_id": partner,
                "occurred_at": wall.isoformat(timespec="milliseconds"),
            }
            mono = time.monotonic()
            floor_ms = wall.replace(microsecond=wall.microsecond // 1000 * 1000)
            tracker.add(partner, event["event_id"], mono, floor_ms)
            producer.produce(topic, key=partner.encode(), value=event_bytes(event))
            producer.poll(0)
            return event["event_id"], mono

        # Warm-up: the worker joins its group and the first batch goes through.
        for i in range(WARMUP):
            send(i, next(events))
        producer.flush(30)
        deadline = time.monotonic() + 120
        while tracker.outstanding() and time.monotonic() < deadline:
            if not worker.alive():
                raise RuntimeError(f"audit-worker exited:\n{worker.tail()}")
            time.sleep(0.1)
        if tracker.outstanding():
            raise RuntimeError(f"B2 warm-up events never appeared; worker log:\n{worker.tail()}")
        log(f"B2: warm-up done; producing {n:,} events at {rate:.0f}/s")

        measured: list[str] = []
        started = time.monotonic()
        for i in range(n):
            due = started + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            measured.append(send(WARMUP + i, next(events))[0])
        produce_seconds = time.monotonic() - started
        producer.flush(30)
        deadline = time.monotonic() + 60
        while tracker.outstanding() and time.monotonic() < deadline:
            time.sleep(0.1)
        interval = refresh_interval(es, prefix)
        stages = stage_breakdown(es, prefix, measured, tracker)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
        api.stop()
        worker.stop()
        delete_topics([topic, f"{topic}.dlq", f"{topic}.downloads"])
        drop_indices(es, prefix)
    latencies = [tracker.seen[i] - tracker.produced[i] for i in measured if i in tracker.seen]
    missing = n - len(latencies)
    stats = summary_ms(latencies)
    target_ms = 2 * seconds_of(interval) * 1000
    return {
        "benchmark": "B2 end-to-end latency",
        "n_events": n,
        "rate_target_per_s": rate,
        "rate_achieved_per_s": round(n / produce_seconds, 1),
        "latency_ms": stats,
        "latencies_ms": sorted(round(x * 1000, 1) for x in latencies),
        "not_seen_within_60s": missing,
        "stages_ms": stages,
        "refresh_interval": interval,
        "worker_batch": {
            "AUDIT_BATCH_SIZE": os.environ.get(
                "AUDIT_BATCH_SIZE", f"{WORKER_DEFAULTS.batch_size} (default)"
            ),
            "AUDIT_BATCH_WINDOW_SECONDS": os.environ.get(
                "AUDIT_BATCH_WINDOW_SECONDS", f"{WORKER_DEFAULTS.batch_window_seconds} (default)"
            ),
        },
        "poller": {
            "threads": POLLERS,
            "partners": PARTNERS,
            "cycle_ms": POLL_CYCLE_S * 1000,
            "requests": tracker.requests,
            "request_ms": summary_ms(tracker.request_seconds),
            "errors": tracker.errors[:5],
        },
        "baseline": {"what": "2 x index refresh interval", "ms": target_ms},
        "ratio": round(stats["p99"] / target_ms, 3) if stats.get("p99") else None,
        "targets": {
            "p99_ms": {
                "target": f"<= {target_ms:.0f} (2 x refresh {interval})",
                "value": stats.get("p99"),
                "met": bool(stats.get("p99")) and missing == 0 and stats["p99"] <= target_ms,
            }
        },
    }
