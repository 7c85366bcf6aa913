"""Plots (matplotlib, Agg) and ``docs/benchmarks.md`` from ``bench/results/*.json``.

The full run's results are the headline; a quick run's are shown only where no full result
exists. ``bench/analysis.md`` (written by hand after profiling) is appended to the page.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.output import REPO, RESULTS, log, read_result

DOC = REPO / "docs" / "benchmarks.md"
ANALYSIS = REPO / "bench" / "analysis.md"
NAMES = ("b1_ingest", "b1a_core", "b2_latency", "b3_query", "b4_export", "b5_large")
KIND_LABELS = {
    "search_24h": "search 24 h",
    "search_7d": "search 7 d",
    "search_90d": "search 90 d",
    "filters": "filters",
    "filters_search": "filters + search",
    "detail": "detail",
    "page2": "page 2 (cursor)",
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def latest() -> dict[str, tuple[dict[str, Any], str]]:
    """name -> (result, suffix) preferring the full run."""
    found: dict[str, tuple[dict[str, Any], str]] = {}
    for name in NAMES:
        for suffix in ("", "-quick"):
            result = read_result(name + suffix)
            if result is not None:
                found[name] = (result, suffix)
                break
    return found


def _save(fig: Any, name: str) -> str:
    path = RESULTS / f"{name}.png"
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return str(path.relative_to(REPO))


def plot_b1(result: dict[str, Any], suffix: str) -> str:
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    worker = result["worker"]
    tried = result["baseline"]["tried"]
    labels = ["audit-worker"] + [f"bulk {b['chunk_size']}x{b['thread_count']}t" for b in tried]
    values = [worker["events_per_s"] or 0] + [b["events_per_s"] or 0 for b in tried]
    colors = ["tab:orange"] + ["tab:blue"] * len(tried)
    left.bar(labels, values, color=colors)
    best = result["baseline"]["best"]["events_per_s"] or 0
    left.axhline(0.8 * best, color="tab:red", linestyle="--", label="target: 0.8 x best bulk")
    left.set_ylabel("events/s")
    left.set_title(
        f"B1 ingest, {result['n_valid']:,} events ({result['environment']['cpu_count']} cores)"
    )
    left.tick_params(axis="x", rotation=20)
    left.legend()
    series = worker.get("count_series") or []
    if series:
        right.plot([t for t, _ in series], [c for _, c in series], label="indexed (worker)")
    rss = [(t, mb) for t, mb in worker.get("rss_series_mb") or [] if mb is not None]
    if rss:
        twin = right.twinx()
        twin.plot([t for t, _ in rss], [mb for _, mb in rss], color="tab:green", label="RSS MB")
        twin.axhline(250, color="tab:red", linestyle=":", label="RSS target 250 MB")
        twin.set_ylabel("worker RSS (MB)")
        twin.legend(loc="lower right")
    right.set_xlabel("seconds since worker start")
    right.set_ylabel("documents searchable")
    right.set_title("worker progress and memory")
    return _save(fig, f"b1_throughput{suffix}")


def plot_b2(result: dict[str, Any], suffix: str) -> str:
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    stats = result["latency_ms"]
    keys = ["p50", "p95", "p99", "max"]
    left.bar(keys, [stats.get(k, 0) for k in keys], color="tab:orange")
    left.axhline(
        result["baseline"]["ms"],
        color="tab:red",
        linestyle="--",
        label=f"target p99: 2 x refresh ({result['refresh_interval']})",
    )
    left.set_ylabel("ms, produce() -> returned by the API")
    left.set_title(
        f"B2 at {result['rate_achieved_per_s']:.0f} events/s, {stats.get('count', 0):,} events"
    )
    left.legend()
    samples = result.get("latencies_ms") or []
    if samples:
        ordered = sorted(samples)
        right.plot(ordered, [i / len(ordered) for i in range(1, len(ordered) + 1)])
        right.axvline(result["baseline"]["ms"], color="tab:red", linestyle="--")
        right.set_xlabel("latency (ms)")
        right.set_ylabel("fraction of events")
        right.set_title("cumulative distribution")
    return _save(fig, f"b2_latency{suffix}")


def plot_b3(result: dict[str, Any], suffix: str) -> list[str]:
    plt = _plt()
    kinds = [k for k in KIND_LABELS if k in result["api"]]
    fig, ax = plt.subplots(figsize=(11, 4.5))
    width = 0.27
    for offset, (target, color) in enumerate(
        (("api", "tab:orange"), ("direct", "tab:blue"), ("naive", "tab:gray"))
    ):
        p50 = [result[target].get(k, {}).get("p50") or 0 for k in kinds]
        p99 = [result[target].get(k, {}).get("p99") or 0 for k in kinds]
        xs = [i + (offset - 1) * width for i in range(len(kinds))]
        label = {
            "api": "through the API",
            "direct": "product query straight to ES",
            "naive": "naive *term* wildcards",
        }[target]
        ax.bar(xs, p50, width, color=color, label=f"{label} (p50)")
        ax.scatter(
            xs,
            [v or float("nan") for v in p99],
            color=color,
            marker="_",
            s=200,
            label=f"{label} (p99)",
        )
    ax.axhline(30, color="tab:red", linestyle="--", label="target p50 30 ms")
    ax.axhline(150, color="tab:red", linestyle=":", label="target p99 150 ms")
    ax.set_yscale("log")
    ax.set_xticks(range(len(kinds)), [KIND_LABELS[k] for k in kinds])
    ax.set_ylabel("ms (log scale)")
    ax.set_title(
        f"B3 query latency, {result['n_logs']:,} logs, {result['clients']} clients "
        f"({result['environment']['cpu_count']} cores)"
    )
    ax.legend(fontsize=7, ncols=2)
    paths = [_save(fig, f"b3_latency_by_kind{suffix}")]

    scaling = list(result.get("scaling") or [])
    quick = read_result("b3_query-quick") if not suffix else None
    sizes = {point["n_logs"] for point in scaling}
    if quick and quick.get("n_logs") not in sizes:  # the quick run's dataset: another size
        scaling.append({"n_logs": quick["n_logs"], "api": quick["api"]})
    if not suffix:  # datasets of other sizes: `bench.run --only B3 --set b3_n=N --tag scale...`
        for path in sorted(RESULTS.glob("b3_query-scale*.json")):
            extra = json.loads(path.read_text())
            for point in extra.get("scaling") or []:
                if point["n_logs"] not in {p["n_logs"] for p in scaling}:
                    scaling.append(point)
    scaling.sort(key=lambda point: point["n_logs"])
    if len(scaling) > 1:
        fig, ax = plt.subplots(figsize=(8, 4.5))
        for kind in kinds:
            points = [(s["n_logs"], s["api"].get(kind, {}).get("p50")) for s in scaling]
            points = [(n, v) for n, v in points if v is not None]
            ax.plot(
                [n for n, _ in points], [v for _, v in points], marker="o", label=KIND_LABELS[kind]
            )
        ax.axhline(30, color="tab:red", linestyle="--", label="target p50")
        ax.set_xscale("log")
        ax.set_xlabel("logs in the index")
        ax.set_ylabel("p50 through the API (ms)")
        ax.set_title("B3 query latency by index size")
        ax.legend(fontsize=7)
        paths.append(_save(fig, f"b3_scaling{suffix}"))
    return paths


def plot_b4(result: dict[str, Any], suffix: str) -> str:
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.bar(
        ["API CSV export", "store scan straight from ES"],
        [result["api"]["rows_per_s"], result["baseline"]["rows_per_s"]],
        color=["tab:orange", "tab:blue"],
    )
    left.set_ylabel("rows/s")
    left.set_title(f"B4 export of {result['api']['rows']:,} rows")
    series = [(done, mb) for _, mb, done in result["memory"]["series"] if mb is not None]
    right.plot([d or 0 for d, _ in series], [mb for _, mb in series], color="tab:green")
    right.set_xlabel("rows received")
    right.set_ylabel("RSS of the serving gunicorn worker (MB)")
    right.set_ylim(bottom=0)
    right.set_title("API memory during the export")
    return _save(fig, f"b4_export{suffix}")


def _ok(met: bool | None) -> str:
    return "met" if met else "**missed**"


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.2f}{unit}" if abs(value) < 10 else f"{value:,.1f}{unit}"
    if isinstance(value, int):
        return f"{value:,}{unit}"
    return f"{value}{unit}"


def section_b1(r: dict[str, Any], plot: str | None) -> list[str]:
    w, best = r["worker"], r["baseline"]["best"]
    t = r["targets"]
    return [
        f"## B1 ingest throughput ({r['mode']} run: {r['n_valid']:,} events, "
        f"{r['partitions']} partitions)",
        "",
        "| | events/s | time (s) | peak RSS |",
        "|---|---:|---:|---:|",
        f"| audit-worker (from process start) | {_fmt(w['events_per_s'])} | "
        f"{_fmt(w['seconds'])} | {_fmt(w['peak_rss_mb'], ' MB')} |",
        f"| audit-worker (from first document) | {_fmt(w.get('steady_events_per_s'))} | | |",
        *[
            f"| baseline: parallel_bulk chunk {b['chunk_size']}, {b['thread_count']} threads "
            f"| {_fmt(b['events_per_s'])} | {_fmt(b['seconds'])} | |"
            for b in r["baseline"]["tried"]
        ],
        "",
        f"Best baseline: chunk {best['chunk_size']} x {best['thread_count']} threads. "
        f"Ratio worker / baseline: **{_fmt(r['ratio'])}** (target >= 0.8: "
        f"{_ok(t['ratio']['met'])}); from the first document: {_fmt(r.get('steady_ratio'))}. "
        f"Worker peak RSS {_fmt(w['peak_rss_mb'], ' MB')} (target <= 250 MB: "
        f"{_ok(t['peak_rss_mb']['met'])}); {w.get('processes', 1)} worker process(es).",
        "",
        *scaled_line(r.get("scaled"), best),
        *conflict_check_line(r.get("conflict_check")),
        *digest_cost_line(r.get("digests")),
        f"![B1]({Path('..') / plot})" if plot else "",
        "",
    ]


def section_b1_processes(r: dict[str, Any]) -> list[str]:
    """B1 again with `AUDIT_WORKER_PROCESSES` = the cores (``--set b1_processes=2 --tag
    processes2``): QUALITY's ratio with as many worker processes as the baseline has threads."""
    w, best = r["worker"], r["baseline"]["best"]
    return [
        f"### B1 with {w.get('processes', 1)} worker processes (`AUDIT_WORKER_PROCESSES`, "
        f"{r['mode']} run of {r['n_valid']:,} events, {r['environment']['date']}, load "
        f"{r['environment']['load_average']})",
        "",
        f"Worker {_fmt(w['events_per_s'])} events/s (from the first document "
        f"{_fmt(w.get('steady_events_per_s'))}), best baseline {_fmt(best['events_per_s'])} "
        f"(chunk {best['chunk_size']} x {best['thread_count']} threads): ratio "
        f"**{_fmt(r['ratio'])}**; peak RSS per process {_fmt(w['peak_rss_mb'], ' MB')}.",
        "",
    ]


def scaled_line(w: dict[str, Any] | None, best: dict[str, Any]) -> list[str]:
    """The same run's worker with as many processes as the best baseline has threads."""
    if not w:
        return []
    return [
        f"With as many worker processes as the best baseline has threads "
        f"(`AUDIT_WORKER_PROCESSES={w['processes']}`, {best['thread_count']} threads): "
        f"{_fmt(w['events_per_s'])} events/s (from the first document "
        f"{_fmt(w.get('steady_events_per_s'))}), ratio **{_fmt(w['ratio'])}** (from the first "
        f"document {_fmt(w.get('steady_ratio'))}); peak RSS per process "
        f"{_fmt(w['peak_rss_mb'], ' MB')}.",
        "",
    ]


def conflict_check_line(c: dict[str, Any] | None) -> list[str]:
    if not c:
        return []
    ms = c["per_batch_ms"]
    return [
        f"Conflict check (the stored-log lookup before each bulk create, issue 10), measured "
        f"on {c['events']:,} of these events with the worker's `Indexer`: {_fmt(ms['lookup'])} ms"
        f" per batch of {c['batch_size']}, {_fmt(100 * c['share_of_indexer'])} % of the "
        f"indexer's time ({_fmt(ms['indexer_with_lookup'])} ms with it, "
        f"{_fmt(ms['indexer_without_lookup'])} ms without) and "
        f"{_fmt(100 * (c['share_of_worker_batch'] or 0))} % of the worker's time per batch "
        f"({_fmt(c['worker_batch_ms'])} ms; target <= 5 %).",
        "",
    ]


def digest_cost_line(d: dict[str, Any] | None) -> list[str]:
    if not d:
        return []
    return [
        f"Integrity digests (issue 14): the same worker without them (benchmark-only shim "
        f"`bench.worker_without_digests`, run second on the same topic) "
        f"{_fmt(d['without_events_per_s'])} events/s, with them "
        f"{_fmt(d['with_events_per_s'])}: ratio **{_fmt(d['ratio'])}** (target >= 0.9, "
        f"within 10 %: {_ok(d['met'])}).",
        "",
    ]


def section_b1a(r: dict[str, Any]) -> list[str]:
    met = r["targets"]["core_events_per_s"]["met"]
    return [
        f"## B1a pure core ({r['mode']} run: {r['n_events']:,} events, one core, "
        f"batches of {r['batch_size']})",
        "",
        "| | events/s (CPU time) | events/s (wall) |",
        "|---|---:|---:|",
        f"| core: value bytes -> bulk-ready bytes | {_fmt(r['core_events_per_s'])} | "
        f"{_fmt(r['core_wall_events_per_s'])} |",
        f"| floor: `orjson.loads` + `orjson.dumps` of the same documents | "
        f"{_fmt(r['floor_events_per_s'])} | |",
        "",
        f"Core / floor: **{_fmt(r['ratio'])}** (median of {len(r['rounds'])} alternating "
        f"rounds). Core target >= 15,000 events/s on one core: {_ok(met)}. Values "
        f"{r['mean_value_bytes']:,.0f} bytes, documents {r['mean_source_bytes']:,.0f} bytes "
        "on average.",
        "",
    ]


def section_b2(r: dict[str, Any], plot: str | None) -> list[str]:
    s = r["latency_ms"]
    return [
        f"## B2 end-to-end latency ({r['mode']} run: {r['n_events']:,} events at "
        f"{_fmt(r['rate_achieved_per_s'])}/s)",
        "",
        "| p50 | p95 | p99 | max | refresh interval | target p99 |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {_fmt(s.get('p50'))} ms | {_fmt(s.get('p95'))} ms | {_fmt(s.get('p99'))} ms | "
        f"{_fmt(s.get('max'))} ms | {r['refresh_interval']} | <= {r['baseline']['ms']:.0f} ms |",
        "",
        f"p99 / (2 x refresh) = **{_fmt(r['ratio'])}**: {_ok(r['targets']['p99_ms']['met'])}. "
        f"Events never seen: {r['not_seen_within_60s']}. The pollers made "
        f"{r['poller']['requests']:,} list calls (p50 {r['poller']['request_ms'].get('p50')} ms).",
        "",
        f"![B2]({Path('..') / plot})" if plot else "",
        "",
    ]


def section_b3(r: dict[str, Any], plots: list[str]) -> list[str]:
    t = r["targets"]
    d = r["dataset"]
    rows = []
    for kind, label in KIND_LABELS.items():
        if kind not in r["api"]:
            continue
        a, di, n = r["api"][kind], r["direct"].get(kind, {}), r["naive"].get(kind, {})
        pk = r["per_kind"].get(kind, {})
        rows.append(
            f"| {label} | {_fmt(a.get('p50'))} | {_fmt(a.get('p99'))} | {_fmt(di.get('p50'))} | "
            f"{_fmt(pk.get('overhead_p50_ms'))} | {_fmt(n.get('p50'))} | "
            f"{_fmt(pk.get('naive_over_api_p50'), 'x')} | {_fmt(di.get('median_hits'))} |"
        )
    a_all, d_all = r["api"]["all"], r["direct"]["all"]
    load = (
        f"loaded in {_fmt(d.get('load_seconds'))} s ({_fmt(d.get('load_docs_per_s'))} logs/s)"
        + (", reused from an earlier run" if d.get("reused") else "")
        + (f" ({d['note']})" if d.get("note") else "")
    )
    return [
        f"## B3 query latency at scale ({r['mode']} run: {r['n_logs']:,} logs over "
        f"{d.get('days')} days, {d.get('partners')} partners, {r['clients']} clients)",
        "",
        f"Dataset `{d['prefix']}` {load}. Milliseconds; API = through `audit-api` (gunicorn); "
        "direct = the API's own query body sent straight to Elasticsearch; naive = `*term*` "
        "case-insensitive wildcards on the keyword fields (and `message`'s tokens).",
        "",
        "| query | API p50 | API p99 | direct p50 | API overhead p50 | naive p50 | naive / API "
        "| median hits |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
        *rows,
        f"| **whole mix** | **{_fmt(a_all.get('p50'))}** | **{_fmt(a_all.get('p99'))}** | "
        f"{_fmt(d_all.get('p50'))} | **{_fmt(t['api_overhead_p50_ms']['value'])}** | "
        f"{_fmt(r['naive'].get('all', {}).get('p50'))} | | |",
        "",
        f"- API p50 {_fmt(t['api_p50_ms']['value'])} ms (target <= 30: "
        f"{_ok(t['api_p50_ms']['met'])}; worst kind {_fmt(t['api_p50_ms']['worst_kind'])} ms)",
        f"- API p99 {_fmt(t['api_p99_ms']['value'])} ms (target <= 150: "
        f"{_ok(t['api_p99_ms']['met'])}; worst kind {_fmt(t['api_p99_ms']['worst_kind'])} ms)",
        f"- naive / API at p50, worst search kind: {_fmt(t['naive_ratio_p50']['value'], 'x')} "
        f"(target >= 10x: {_ok(t['naive_ratio_p50']['met'])})",
        f"- API overhead at p50: {_fmt(t['api_overhead_p50_ms']['value'])} ms (paired median "
        f"{_fmt(t['api_overhead_p50_ms']['paired_median'])} ms; target <= 5: "
        f"{_ok(t['api_overhead_p50_ms']['met'])})",
        "",
        *single_client(r),
        *[f"![B3]({Path('..') / p})" for p in plots],
        "",
    ]


def single_client(r: dict[str, Any]) -> list[str]:
    """The same requests with one client: service time without queueing behind the others."""
    single = r.get("single_client")
    if not single:
        return []
    api, direct = single["api"], single["direct"]
    cells = [
        f"{KIND_LABELS[k]}: {_fmt(api[k].get('p50'))} / {_fmt(direct.get(k, {}).get('p50'))}"
        for k in KIND_LABELS
        if k in api
    ]
    return [
        "With a single client (no queueing; p50 ms, API / direct): "
        + "; ".join(cells)
        + f"; whole mix {_fmt(api['all'].get('p50'))} / {_fmt(direct['all'].get('p50'))}.",
        "",
    ]


def section_b4(r: dict[str, Any], plot: str | None) -> list[str]:
    m, t = r["memory"], r["targets"]
    return [
        f"## B4 export ({r['mode']} run: {r['api']['rows']:,} rows as CSV)",
        "",
        "| | rows/s | time (s) |",
        "|---|---:|---:|",
        f"| API `GET /api/v1/audit-logs/export?format=csv` | {_fmt(r['api']['rows_per_s'])} | "
        f"{_fmt(r['api']['seconds'])} |",
        f"| baseline: store scan straight from ES | {_fmt(r['baseline']['rows_per_s'])} | "
        f"{_fmt(r['baseline']['seconds'])} |",
        "",
        f"Ratio API / scan: **{_fmt(r['ratio'])}**. Rows: {r['api']['rows']:,} of "
        f"{r['expected_rows']:,} expected ({_ok(t['rows_complete']['met'])}). Serving worker "
        f"RSS: {_fmt(m['rss_before_mb'])} MB before, {_fmt(m['rss_at_25pct_mb'])} MB at 25 %, "
        f"peak {_fmt(m['peak_rss_mb'])} MB; growth after 25 %: "
        f"{_fmt(m['growth_after_25pct_mb'])} MB (flat = <= 20 MB: {_ok(t['rss_flat']['met'])}).",
        "",
        f"![B4]({Path('..') / plot})" if plot else "",
        "",
    ]


def section_b5(r: dict[str, Any]) -> list[str]:
    w, u = r["worker"], r["without_byte_bounds"]
    t = r["targets"]
    return [
        f"## B5 large events ({r['n_events']} events of {r['mean_event_kb']:,.0f} KB on average)",
        "",
        "| worker | events/s | time (s) | indexed | peak RSS |",
        "|---|---:|---:|---:|---:|",
        f"| default bounds ({w['settings']['AUDIT_BATCH_MAX_BYTES']} bytes per batch, "
        f"prefetch {w['settings']['AUDIT_PREFETCH_RECORDS']}) | {_fmt(w['events_per_s'])} | "
        f"{_fmt(w['seconds'])} | {w['indexed']} | {_fmt(w['peak_rss_mb'], ' MB')} |",
        f"| byte bounds lifted (same run) | {_fmt(u['events_per_s'])} | {_fmt(u['seconds'])} "
        f"| {u['indexed']} | {_fmt(u['peak_rss_mb'], ' MB')} |",
        "",
        f"Peak RSS target <= 250 MB: {_ok(t['peak_rss_mb']['met'])}; every event indexed: "
        f"{_ok(t['all_indexed']['met'])}.",
        "",
    ]


def _plot(draw: Any, result: dict[str, Any], suffix: str) -> Any:
    """Draw a plot; without matplotlib (the `bench` extra) the page is written without it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        log("matplotlib is not installed: no plots (pip install -e '.[bench]')")
        return None
    return draw(result, suffix)


def write_all() -> None:
    found = latest()
    if not found:
        log("no results to report")
        return
    lines = [
        "# Benchmarks",
        "",
        "Generated by `python -m bench.run` (`make bench`, `make bench-quick`) from "
        "`bench/results/*.json`; definitions and targets in QUALITY.md (B1-B5). Every figure "
        "stands beside a baseline measured in the same run, as a ratio: absolute times on "
        "these shared machines drift.",
        "",
    ]
    env_lines = []
    for name in NAMES:
        if name in found:
            result, suffix = found[name]
            env = result["environment"]
            env_lines.append(
                f"| {name}{suffix} | {env['date']} | {env['cpu_count']} | {env['load_average']} "
                f"| {env['kafka']} | {env['elasticsearch'].get('version')} "
                f"(heap {env['elasticsearch'].get('heap_max_mb')} MB) | {env['python']} | "
                f"{_fmt(result.get('duration_s'))} s |"
            )
    lines += [
        "| result | date (UTC) | cores | load avg | Kafka | Elasticsearch | Python | took |",
        "|---|---|---:|---|---|---|---|---:|",
        *env_lines,
        "",
    ]
    lines += summary(found)
    if "b1_ingest" in found:
        r, s = found["b1_ingest"]
        lines += section_b1(r, _plot(plot_b1, r, s))
    scale_out = read_result("b1_ingest-processes2")
    if scale_out is not None:
        lines += section_b1_processes(scale_out)
    if "b1a_core" in found:
        lines += section_b1a(found["b1a_core"][0])
    if "b2_latency" in found:
        r, s = found["b2_latency"]
        lines += section_b2(r, _plot(plot_b2, r, s))
    if "b3_query" in found:
        r, s = found["b3_query"]
        lines += section_b3(r, _plot(plot_b3, r, s) or [])
    if "b4_export" in found:
        r, s = found["b4_export"]
        lines += section_b4(r, _plot(plot_b4, r, s))
    if "b5_large" in found:
        lines += section_b5(found["b5_large"][0])
    lines += [
        "## Running",
        "",
        "```sh",
        "make bench         # full sizes (B3/B4 dataset: 5,000,000 logs, kept for the next run)",
        "make bench-quick   # small sizes, a few minutes",
        ".venv/bin/python -m bench.run --only B3,B4 --profile   # a subset, with py-spy",
        "make bench-clean   # delete the kept datasets and any leftovers (bench-* names)",
        "```",
        "",
    ]
    if ANALYSIS.exists():
        lines += [ANALYSIS.read_text().rstrip(), ""]
    DOC.write_text("\n".join(lines))
    log(f"wrote {DOC.relative_to(REPO)}")


def summary(found: dict[str, tuple[dict[str, Any], str]]) -> list[str]:
    rows = []
    for name in NAMES:
        if name not in found:
            continue
        result, suffix = found[name]
        for key, target in result.get("targets", {}).items():
            rows.append(
                f"| {result['benchmark']}{' (quick)' if suffix else ''} | {key} | "
                f"{target['target']} | {_fmt(target['value'])} | {_ok(target['met'])} |"
            )
    return [
        "## Against QUALITY.md",
        "",
        "| benchmark | figure | target | value | |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
