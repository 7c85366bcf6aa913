"""The large B3/B4 dataset: N logs over 90 days bulk-loaded straight into Elasticsearch.

Documents are ``build_document`` of ``generate_events`` (seeded), written with ``op_type=create``
under the product's own index template, so the API reads them exactly as the worker would
have written them. Loading is the slow part of ``make bench``, so a loaded dataset is kept
(prefix ``bench-b3-<N>``) and reused by the next run when its manifest matches: the manifest
lives in the index template's ``_meta.bench`` (seed, N, partners, the dataset's ``now``, a hash
of the code that shapes documents, and the query latencies measured at intermediate sizes
while loading). ``python -m bench.clean`` (``make bench-clean``) deletes it.

Loading: the generator runs in this process; a pool of processes turns chunks of events into
bulk NDJSON (``build_document`` is the CPU-heavy part); bulk requests go out on two threads.
The index refresh is relaxed to 30 s while loading and set back to the template's 1 s after.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch

from bench.events import SEED
from bench.output import log
from bench.services import drop_indices, es_count
from schemas.demo import generate_events
from schemas.document import build_document, stored_log
from schemas.index_template import TEMPLATE_VERSION, index_template, read_alias, template_name

DAYS = 90
ORGANIZATIONS = 500
CHUNK = 2000


def dataset_prefix(n: int) -> str:
    return f"bench-b3-{n}"


def code_hash() -> str:
    """Fingerprint of what shapes the stored data: the template body and the documents
    ``build_document`` makes of the first generated events (not source bytes, so a
    reformatting or a comment does not force a reload of millions of logs)."""
    fixed = datetime(2026, 1, 1, tzinfo=UTC)
    events = list(generate_events(200, seed=SEED, now=fixed, partners=5, days=DAYS))
    body = {
        "template": index_template("x"),
        "documents": [build_document(event, fixed) for event in events],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()[:16]


def partners_for(n: int, export_n: int) -> int:
    """Enough logs per partner for B4's export to find ``export_n`` logs of one partner."""
    return max(1, min(20, n // max(export_n, 1)))


def read_manifest(es: Elasticsearch, prefix: str) -> dict[str, Any] | None:
    try:
        reply = es.indices.get_index_template(name=template_name(prefix))
    except Exception:
        return None
    templates = reply.get("index_templates") or []
    if not templates:
        return None
    manifest = templates[0]["index_template"].get("_meta", {}).get("bench")
    return dict(manifest) if isinstance(manifest, dict) else None


def write_manifest(
    es: Elasticsearch, prefix: str, manifest: dict[str, Any], refresh_interval: str = "1s"
) -> None:
    body = index_template(prefix, refresh_interval=refresh_interval)
    if refresh_interval != "1s":  # loading: no fsync per bulk request either
        body["template"]["settings"]["translog"] = {"durability": "async"}
    body["_meta"] = {**body.get("_meta", {}), "bench": manifest}
    es.indices.put_index_template(name=template_name(prefix), **body)


def _bulk_chunk(args: tuple[str, str, list[dict[str, Any]]]) -> tuple[bytes, int]:
    """In a pool process: events -> NDJSON of create actions + documents."""
    prefix, ingested, events = args
    ingested_at = datetime.fromisoformat(ingested)
    lines: list[str] = []
    for event in events:
        index, doc_id, document = stored_log(prefix, event, ingested_at)
        lines.append(json.dumps({"create": {"_index": index, "_id": doc_id}}))
        lines.append(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode(), len(events)


def _chunks(events: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while True:
        chunk = list(itertools.islice(events, size))
        if not chunk:
            return
        yield chunk


def _send(es: Elasticsearch, payload: bytes) -> int:
    """One bulk request; returns the number of failed items (409 = already there is fine)."""
    for attempt in range(10):
        try:
            reply = es.bulk(operations=payload, filter_path="errors,items.*.status,items.*.error")
            break
        except Exception as error:  # transient: back off and resend (create is idempotent)
            if attempt == 9:
                raise
            log(f"bulk failed ({error!r}); retrying")
            time.sleep(2 * (attempt + 1))
    if not reply.get("errors"):
        return 0
    failed = 0
    for item in reply["items"]:
        result = next(iter(item.values()))
        if result.get("status", 500) >= 300 and result.get("status") != 409:
            failed += 1
            if failed == 1:
                log(f"bulk item failed: {result}")
    return failed


def load(
    es: Elasticsearch,
    prefix: str,
    n: int,
    partners: int,
    now: datetime,
    milestones: list[int],
    at_milestone: Callable[[int], dict[str, Any]],
) -> dict[str, Any]:
    """Bulk-load ``n`` logs; at each milestone (count), pause and call ``at_milestone``."""
    drop_indices(es, prefix)
    manifest: dict[str, Any] = {
        "seed": SEED,
        "n": n,
        "partners": partners,
        "days": DAYS,
        "organizations": ORGANIZATIONS,
        "now": now.isoformat(),
        "code_hash": code_hash(),
        # Sorted indices since version 3: a dataset of another version measures another layout.
        "template_version": TEMPLATE_VERSION,
        "complete": False,
    }
    write_manifest(es, prefix, manifest, refresh_interval="30s")
    events = generate_events(
        n,
        seed=SEED,
        now=now,
        partners=partners,
        organizations=ORGANIZATIONS,
        days=DAYS,
        failure_rate=0.05,
    )
    ingested = datetime.now(UTC).isoformat()
    pending = sorted(m for m in milestones if 0 < m < n)
    scaling: list[dict[str, Any]] = []
    sent = failed = 0
    started = time.monotonic()
    paused = 0.0
    last_log = started
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(2) as pool, ThreadPoolExecutor(2) as senders:
        in_flight: list[Future[int]] = []
        jobs = ((prefix, ingested, chunk) for chunk in _chunks(events, CHUNK))
        for payload, count in pool.imap(_bulk_chunk, jobs, chunksize=1):
            while len(in_flight) >= 4:
                failed += in_flight.pop(0).result()
            in_flight.append(senders.submit(_send, es, payload))
            sent += count
            if pending and sent >= pending[0]:
                for future in in_flight:
                    failed += future.result()
                in_flight.clear()
                pause = time.monotonic()
                es.indices.put_settings(index=f"{prefix}-*", settings={"refresh_interval": "1s"})
                es.indices.refresh(index=f"{prefix}-*")
                log(f"B3 load: {sent:,} logs; measuring queries at this size")
                scaling.append({"n_logs": es_count(es, read_alias(prefix)), **at_milestone(sent)})
                es.indices.put_settings(index=f"{prefix}-*", settings={"refresh_interval": "30s"})
                pending.pop(0)
                paused += time.monotonic() - pause
            if time.monotonic() - last_log > 30:
                rate = sent / (time.monotonic() - started - paused)
                log(f"B3 load: {sent:,}/{n:,} logs ({rate:,.0f}/s)")
                last_log = time.monotonic()
        for future in in_flight:
            failed += future.result()
    es.indices.put_settings(
        index=f"{prefix}-*",
        settings={"refresh_interval": "1s", "translog": {"durability": "request"}},
    )
    seconds = time.monotonic() - started - paused
    count = es_count(es, read_alias(prefix))
    manifest.update(
        complete=count == n and failed == 0,
        count=count,
        failed=failed,
        load_seconds=round(seconds, 1),
        load_docs_per_s=round(n / seconds, 1),
        loaded_at=datetime.now(UTC).isoformat(timespec="seconds"),
        scaling=scaling,
    )
    write_manifest(es, prefix, manifest)
    log(f"B3 load: {count:,} logs in {seconds:,.0f}s ({n / seconds:,.0f}/s), {failed} failed")
    return manifest


def reusable(
    es: Elasticsearch, prefix: str, n: int, partners: int, allow_stale: bool
) -> dict[str, Any] | None:
    manifest = read_manifest(es, prefix)
    if not manifest or not manifest.get("complete"):
        return None
    if (manifest.get("seed"), manifest.get("n"), manifest.get("partners")) != (SEED, n, partners):
        return None
    if manifest.get("template_version", 2) != TEMPLATE_VERSION:
        log(f"B3: dataset {prefix} has another index template version; reloading it")
        return None
    stale = manifest.get("code_hash") != code_hash()
    if stale and not allow_stale:
        log(f"B3: dataset {prefix} was built by other document code; reloading it")
        return None
    if es_count(es, read_alias(prefix), refresh=False) != n:
        return None
    return {**manifest, "stale_code": stale}
