"""``python -m bench.run [--quick] [--only B1,B1a,B2,B3,B4,B5] [--profile]``: QUALITY.md's B1-B5.

Needs Kafka and Elasticsearch (``python3 deploy/local/services.py up``, or
``KAFKA_BOOTSTRAP_SERVERS`` / ``ELASTICSEARCH_URL``) and the project installed in the venv
(``audit-worker`` and ``audit-api`` are started as subprocesses). Writes
``bench/results/<name>.json`` (``-quick`` suffix for ``--quick``), PNG plots and
``docs/benchmarks.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

from bench import report
from bench.machine import environment
from bench.output import log, write_result
from bench.services import es_client

SIZES: dict[str, dict[str, Any]] = {
    "full": {
        "b1_n": 200_000,
        "b1_workers": 1,
        "b1_processes": 1,
        "b1a_n": 20_000,
        "b2_n": 5_000,
        "b2_rate": 500,
        "b3_n": 5_000_000,
        "b3_per_kind": 300,
        "b3_naive_per_kind": 25,
        "b3_naive_cap_s": 300,
        "b3_milestones": [500_000, 1_000_000, 2_500_000],
        "b4_n": 1_000_000,
        "b5_n": 500,
    },
    "quick": {
        "b1_n": 20_000,
        "b1_workers": 1,
        "b1_processes": 1,
        "b1a_n": 5_000,
        "b2_n": 1_000,
        "b2_rate": 500,
        "b3_n": 200_000,
        "b3_per_kind": 60,
        "b3_naive_per_kind": 8,
        "b3_naive_cap_s": 60,
        "b3_milestones": [50_000, 100_000],
        "b4_n": 100_000,
        "b5_n": 500,
    },
}
BENCHES = ("B1", "B1A", "B2", "B3", "B4", "B5")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes (< 10 minutes)")
    parser.add_argument(
        "--only", default=",".join(BENCHES), help="comma-separated subset, e.g. B1,B3"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record py-spy flame graphs of the worker (B1) and API (B3) in "
        "bench/results/profiles/ (results go to <name>-profile.json, not the report)",
    )
    parser.add_argument(
        "--reuse-stale-dataset",
        action="store_true",
        help="reuse the B3 dataset even if the document code changed since",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=N",
        help="override a size, e.g. --set b3_n=1000000",
    )
    parser.add_argument(
        "--tag",
        default="",
        help="write results as <name>[-quick]-<tag>.json (an experiment, left out of the report)",
    )
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="only redraw plots and docs/benchmarks.md from the JSON results",
    )
    return parser.parse_args(argv)


def wait_for_services(es: Any, timeout: float = 300) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            es.cluster.health(wait_for_status="yellow", timeout="10s")
            return True
        except Exception:
            time.sleep(5)
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    mode = "quick" if args.quick else "full"
    sizes = dict(SIZES[mode])
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in sizes:
            raise SystemExit(f"unknown size {key!r}; one of {', '.join(sorted(sizes))}")
        sizes[key] = (
            type(sizes[key])(value)
            if not isinstance(sizes[key], list)
            else [int(v) for v in value.split(",") if v]
        )
    if args.report_only:
        report.write_all()
        return 0
    wanted = [b.strip().upper() for b in args.only.split(",") if b.strip()]
    unknown = set(wanted) - set(BENCHES)
    if unknown:
        raise SystemExit(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    suffix = ("-quick" if args.quick else "") + ("-profile" if args.profile else "")
    suffix += f"-{args.tag}" if args.tag else ""
    es = es_client()
    es.cluster.health(wait_for_status="yellow", timeout="30s")
    env = environment(es)
    log(
        f"{mode} run of {', '.join(wanted)} on {env['cpu_count']} cores, "
        f"Elasticsearch {env['elasticsearch'].get('version')}, Kafka {env['kafka']}"
    )

    from bench import b1_ingest, b1a_core, b2_latency, b3_query, b4_export, b5_large

    jobs: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
        "B1": (
            "b1_ingest",
            lambda: b1_ingest.run(
                es, sizes["b1_n"], args.profile, sizes["b1_workers"], sizes["b1_processes"]
            ),
        ),
        "B1A": ("b1a_core", lambda: b1a_core.run(sizes["b1a_n"])),
        "B2": ("b2_latency", lambda: b2_latency.run(es, sizes["b2_n"], sizes["b2_rate"])),
        "B3": (
            "b3_query",
            lambda: b3_query.run(
                es,
                sizes["b3_n"],
                sizes["b4_n"],
                sizes["b3_per_kind"],
                sizes["b3_naive_per_kind"],
                sizes["b3_naive_cap_s"],
                sizes["b3_milestones"],
                args.reuse_stale_dataset,
                args.profile,
            ),
        ),
        "B4": ("b4_export", lambda: b4_export.run(es, sizes["b3_n"], sizes["b4_n"])),
        "B5": ("b5_large", lambda: b5_large.run(es, sizes["b5_n"])),
    }
    failed: list[str] = []
    started = time.monotonic()
    for bench in wanted:
        name, job = jobs[bench]
        log(f"--- {bench} ({mode}) ---")
        began = time.monotonic()
        load_before = [round(x, 2) for x in os.getloadavg()]
        result = None
        for attempt in (1, 2):
            try:
                result = job()
                break
            except Exception as error:
                traceback.print_exc()
                log(f"{bench} failed (attempt {attempt}): {error!r}")
                # The local services are shared with other test runs, which restart them
                # at times: wait for Elasticsearch and try once more.
                if attempt == 1 and not wait_for_services(es):
                    break
        if result is None:
            failed.append(bench)
            continue
        result["attempts"] = attempt
        result.update(
            mode=mode,
            sizes=sizes,
            duration_s=round(time.monotonic() - began, 1),
            environment={**environment(es), "load_average_before": load_before},
        )
        write_result(name + suffix, result)
    log(
        f"done in {(time.monotonic() - started) / 60:.1f} min"
        + (f"; failed: {', '.join(failed)}" if failed else "")
    )
    report.write_all()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
