"""B4 export: stream N matching logs as CSV through the API; rows/s and the API's memory.

Uses the B3 dataset. The caller is the owner of its largest partner; the window is the
newest whole days of that partner that hold at least N logs. A fresh ``audit-api`` serves
the export; the RSS of its gunicorn processes is sampled every 0.5 s with the number of
rows received so far, so memory can be read against progress (flat = streaming).
Baseline in the same run: the same query through the product's own store scan
(``api.store.ElasticsearchStore.scan``: point in time + ``search_after``, 1,000 a page)
straight from Elasticsearch, without Flask, conversion or CSV: what reading those logs
costs at all (with the GIL switch interval of the API's workers). After one untimed scan
(so both read from a warm page cache), the two run in pairs, ROUNDS times, the API first
in odd rounds and the scan first in even ones, and the result is the round with the
median ratio, each round kept: on a shared 2-core machine one pair can land in a busy
minute. Memory is read on the first export (a fresh process), and the peak of each round
shows whether anything stays between exports.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from api.auth import Caller
from api.main import shorten_gil_switch_interval
from api.query import build_export_query
from api.store import ElasticsearchStore
from bench import dataset
from bench.apps import api_env, api_path, mint_token
from bench.events import rfc3339
from bench.machine import RssSampler
from bench.output import log, logs_dir
from bench.services import create_topics, delete_topics, unique
from bench.stats import ratio
from deploy.local.processes import Service, children, free_port
from schemas.index_template import read_alias

FLAT_GROWTH_MB = 20  # RSS growth allowed between 25 % and 100 % of the rows
ROUNDS = 5  # the API export and the bare scan, in turn; the result is the median round


def choose_window(
    es: Elasticsearch, alias: str, target: int, now: datetime
) -> tuple[str, datetime]:
    """The largest partner, and the start of the newest days holding >= ``target`` of its logs."""
    reply = es.search(
        index=alias, size=0, aggs={"p": {"terms": {"field": "audit.partner_id", "size": 100}}}
    )
    partner = reply["aggregations"]["p"]["buckets"][0]["key"]
    reply = es.search(
        index=alias,
        size=0,
        query={"term": {"audit.partner_id": partner}},
        aggs={
            "d": {
                "date_histogram": {
                    "field": "@timestamp",
                    "calendar_interval": "day",
                    "order": {"_key": "desc"},
                }
            }
        },
    )
    total = 0
    start = now - timedelta(days=dataset.DAYS + 1)
    for bucket in reply["aggregations"]["d"]["buckets"]:
        total += bucket["doc_count"]
        start = datetime.fromisoformat(bucket["key_as_string"].replace("Z", "+00:00"))
        if total >= target:
            break
    return partner, start


def stream_export(base_url: str, path: str, token: str, progress: list[int]) -> dict[str, Any]:
    host, port = base_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    started = time.perf_counter()
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    reply = conn.getresponse()
    first_byte = time.perf_counter() - started
    if reply.status != 200:
        raise RuntimeError(f"export answered {reply.status}: {reply.read(500)!r}")
    newlines = size = 0
    while True:
        chunk = reply.read(256 * 1024)
        if not chunk:
            break
        size += len(chunk)
        newlines += chunk.count(b"\n")
        progress[0] = newlines
    elapsed = time.perf_counter() - started
    conn.close()
    return {
        "rows": newlines - 1,
        "bytes": size,
        "seconds": round(elapsed, 2),
        "first_byte_ms": round(first_byte * 1000, 1),
        "content_type": reply.getheader("Content-Type"),
    }


def run(es: Elasticsearch, b3_n: int, target: int) -> dict[str, Any]:
    prefix = dataset.dataset_prefix(b3_n)
    alias = read_alias(prefix)
    manifest = dataset.read_manifest(es, prefix)
    if not manifest or not manifest.get("complete"):
        raise RuntimeError(f"B4 needs the B3 dataset {prefix}: run B3 first")
    now = datetime.fromisoformat(manifest["now"])
    partner, start = choose_window(es, alias, target, now)
    end = now + timedelta(seconds=1)
    caller = Caller(sub="bench-owner", name="Bench User", partner_id=partner, role="owner")
    body = build_export_query({"from_": start, "to": end}, caller, now)
    expected = int(es.count(index=alias, query=body["query"])["count"])
    log(f"B4: exporting {expected:,} logs of {partner} since {start:%Y-%m-%d} as CSV")

    topic = unique("b4") + ".downloads"
    create_topics([topic], 1)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    api = Service("audit-api", api_env(prefix, topic, port), logs_dir() / f"{topic}-api.log")
    store = ElasticsearchStore(es, alias)
    rounds: list[dict[str, Any]] = []
    progress = [0]
    try:
        api.wait_http(f"{base_url}/healthz")
        path = api_path(
            "/api/v1/audit-logs/export",
            [("format", "csv"), ("from", rfc3339(start)), ("to", rfc3339(end))],
        )
        # Untimed: both sides then read from the same warm page cache (without it the first
        # round's API export, the first reader, paid for the cold one: ratio 0.72 vs 0.85+).
        warm_rows, warm_seconds = bare_scan(store, body)
        log(f"B4 warm-up: direct scan {warm_rows:,} logs in {warm_seconds:.1f}s")
        for number in range(1, ROUNDS + 1):
            # Alternate which side goes first, so neither always follows the other.
            scan_first = number % 2 == 0
            if scan_first:
                scanned, scan_seconds = bare_scan(store, body)
            progress[0] = 0
            with RssSampler(
                lambda: [api.pid, *children(api.pid)], interval=0.5, progress=lambda: progress[0]
            ) as rss:
                rss.sample()
                before = dict(rss.series[0][1])
                exported = stream_export(base_url, path, mint_token(partner), progress)
                rss.sample()
            if not scan_first:
                scanned, scan_seconds = bare_scan(store, body)
            rows_per_s = exported["rows"] / exported["seconds"]
            scan_rate = scanned / scan_seconds
            log(
                f"B4 round {number}: API {exported['rows']:,} rows in {exported['seconds']}s "
                f"({rows_per_s:,.0f} rows/s); direct scan {scanned:,} logs in "
                f"{scan_seconds:.1f}s ({scan_rate:,.0f}/s), "
                f"{'before' if scan_first else 'after'} it: ratio {rows_per_s / scan_rate:.3f}"
            )
            rounds.append(
                {
                    "api": {**exported, "rows_per_s": round(rows_per_s, 1)},
                    "baseline": {
                        "rows": scanned,
                        "seconds": round(scan_seconds, 2),
                        "rows_per_s": round(scan_rate, 1),
                    },
                    "ratio": ratio(rows_per_s, scan_rate),
                    "api_rows_per_s_by_quarter": rate_by_quarter(rss.series, exported["rows"]),
                    "load_average": [round(x, 2) for x in os.getloadavg()],
                    # The first round's memory is a fresh process's; later rounds show
                    # whether anything stays behind between exports.
                    "memory": memory_profile(rss, exported["rows"], before),
                }
            )
    finally:
        api.stop()
        delete_topics([topic])

    middle = sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]
    memory = rounds[0]["memory"]
    complete = all(r["api"]["rows"] == expected for r in rounds)
    if expected < target:
        log(f"B4: {partner}, the dataset's largest partner, holds {expected:,} logs (< {target:,})")
    return {
        "benchmark": "B4 export",
        "n_rows_target": target,
        # An export is one partner's: the dataset's largest may hold fewer than the target
        # (the 1,000,000-log dataset has 4 partners of ~250,000; 5,000,000 has 5 of 1 M).
        "target_reached": expected >= target,
        "dataset": {
            "prefix": prefix,
            "logs": manifest.get("n"),
            "partners": manifest.get("partners"),
        },
        "partner": partner,
        "window": {"from": rfc3339(start), "to": rfc3339(end)},
        "expected_rows": expected,
        # The round with the median ratio (of ROUNDS pairs, after a warm-up scan).
        "api": middle["api"],
        "baseline": {
            "what": "api.store.ElasticsearchStore.scan straight from Elasticsearch "
            "(PIT + search_after, 1000/page), no CSV, beside each API export (after it "
            "in odd rounds, before it in even ones; one untimed warm-up scan first)",
            **middle["baseline"],
        },
        "ratio": middle["ratio"],
        "api_rows_per_s_by_quarter": middle["api_rows_per_s_by_quarter"],
        "rounds": [{k: v for k, v in r.items() if k != "memory"} for r in rounds],
        "peak_rss_mb_by_round": [r["memory"]["peak_rss_mb"] for r in rounds],
        "memory": memory,
        "targets": {
            "rows_complete": {
                "target": f"= {expected}",
                "value": min(r["api"]["rows"] for r in rounds),
                "met": complete,
            },
            "rss_flat": {
                "target": f"growth <= {FLAT_GROWTH_MB} MB from 25 % to 100 % of rows",
                "value": memory["growth_after_25pct_mb"],
                "met": memory["growth_after_25pct_mb"] <= FLAT_GROWTH_MB,
            },
        },
    }


def bare_scan(store: ElasticsearchStore, body: dict[str, Any]) -> tuple[int, float]:
    """The baseline: the export's logs through the store alone (the API sits idle)."""
    with switch_interval_as_in_the_api():
        started = time.perf_counter()
        scanned = sum(1 for _ in store.scan(body))
        return scanned, time.perf_counter() - started


@contextlib.contextmanager
def switch_interval_as_in_the_api() -> Iterator[None]:
    """This process's GIL switch interval set as in the API's workers
    (`api.main.shorten_gil_switch_interval`) for the baseline's scan, restored after it:
    the scan has the same prefetch thread, so it gets the same chance to overlap."""
    interval = sys.getswitchinterval()
    shorten_gil_switch_interval()
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def rate_by_quarter(
    series: list[tuple[float, dict[int, float], float | None]], rows: int
) -> list[float | None]:
    """The API's rows/s over each quarter of the rows (from the progress samples): whether
    the export slows down as it goes."""
    points = [(t, done) for t, _, done in series if done is not None]
    rates: list[float | None] = []
    for quarter in range(4):
        low, high = rows * quarter / 4, rows * (quarter + 1) / 4
        inside = [(t, done) for t, done in points if low <= done <= high]
        if len(inside) < 2 or inside[-1][0] <= inside[0][0]:
            rates.append(None)
            continue
        (t0, d0), (t1, d1) = inside[0], inside[-1]
        rates.append(round((d1 - d0) / (t1 - t0), 1))
    return rates


def memory_profile(rss: RssSampler, rows: int, before: dict[int, float]) -> dict[str, Any]:
    """Peak and growth of the gunicorn worker that served the export (the one that grew most)."""
    series = rss.series
    pids = {pid for _, sizes, _ in series for pid in sizes}

    def growth(pid: int) -> float:
        values = [s[pid] for _, s, _ in series if pid in s]
        return max(values) - values[0] if values else 0.0

    server = max(pids, key=growth) if pids else 0
    points = [(t, sizes.get(server), done) for t, sizes, done in series if server in sizes]
    quarter = next((mb for _, mb, done in points if done is not None and done >= rows / 4), None)
    final = points[-1][1] if points else None
    peak = max((mb for _, mb, _ in points if mb is not None), default=0.0)
    return {
        "serving_pid": server,
        "rss_before_mb": before.get(server),
        "rss_at_25pct_mb": quarter,
        "rss_end_mb": final,
        "peak_rss_mb": max(peak, rss.hwm_mb.get(server, 0.0)),
        "growth_after_25pct_mb": round((peak - quarter) if quarter is not None else peak, 1),
        "all_processes_peak_mb": {str(pid): mb for pid, mb in rss.hwm_mb.items()},
        "series": [(t, mb, done) for t, mb, done in points],
    }
