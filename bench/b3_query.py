"""B3 query latency at scale: a fixed query mix through the API, 8 concurrent clients.

Kinds: partial search (3-8 character terms cut from real values) over the last 24 h / 7 d /
90 d, filters alone, filters + search, detail by id, page 2 via the cursor. Windows are
explicit (``from``/``to``) and relative to the dataset's ``now``, so a reused dataset is
queried the same way whatever the day.

Phase A runs every request twice, through the API and as the product's own query body
(``api.query.build_list_query`` / ``build_detail_query``, i.e. the same bytes the API sends)
straight to Elasticsearch, in a random order per request: their difference is the API's
overhead. Phase N sends the naive query a first version would write (``*term*`` wildcards,
case-insensitive, on the keyword fields, with the same filters, sort and size) straight to
Elasticsearch for the search kinds, with the same 8 clients, capped in time.
"""

from __future__ import annotations

import http.client
import json
import queue
import random
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from api.auth import Caller
from api.cursor import Cursor
from api.query import build_detail_query, build_list_query, filter_clauses, resolve_window
from bench.apps import ApiClient, api_path, mint_token
from bench.events import SEED, rfc3339
from bench.output import Profiler, log
from bench.services import ES_URL
from bench.stats import summary_ms
from schemas.index_template import read_alias

CLIENTS = 8
LIMIT = 50
KINDS = ("search_24h", "search_7d", "search_90d", "filters", "filters_search", "detail", "page2")
SEARCH_KINDS = ("search_24h", "search_7d", "search_90d", "filters_search")
WINDOWS = {
    "search_24h": timedelta(hours=24),
    "search_7d": timedelta(days=7),
    "search_90d": timedelta(days=91),
    "filters": timedelta(days=7),
    "filters_search": timedelta(days=7),
    "page2": timedelta(days=7),
}
# What a first version would search with `*term*` (message is `text`: the wildcard then
# runs against its analyzed tokens, as such a version would have done).
NAIVE_FIELDS = (
    "event.id",
    "user.id",
    "user.name",
    "user.email",
    "audit.object.id",
    "audit.object.name",
    "message",
)
_TOTAL = re.compile(rb'"total":\{"value":(\d+)')
TARGET_P50_MS = 30
TARGET_P99_MS = 150
TARGET_NAIVE_RATIO = 10
TARGET_OVERHEAD_MS = 5


@dataclass
class Request:
    kind: str
    partner: str
    log_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)  # as api.query expects them

    def api_params(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for key, value in self.params.items():
            name = "from" if key == "from_" else key
            if isinstance(value, datetime):
                out.append((name, rfc3339(value)))
            elif isinstance(value, list):
                out += [(name, str(v)) for v in value]
            else:
                out.append((name, str(value)))
        return out

    def caller(self) -> Caller:
        return Caller(sub="bench-owner", name="Bench User", partner_id=self.partner, role="owner")


# --- Building the request mix ----------------------------------------------------------------


def sample_documents(es: Elasticsearch, alias: str, size: int = 1500) -> list[dict[str, Any]]:
    reply = es.search(
        index=alias,
        size=size,
        query={"function_score": {"random_score": {"seed": SEED, "field": "_seq_no"}}},
        source_includes=[
            "event.id",
            "event.action",
            "user.*",
            "audit.object.*",
            "message",
            "audit.partner_id",
            "audit.category.code",
            "organization.id",
        ],
    )
    return [hit["_source"] for hit in reply["hits"]["hits"]]


def _term(rng: random.Random, doc: dict[str, Any]) -> str:
    values = [
        doc.get("event", {}).get("id"),
        doc.get("message"),
        *(doc.get("user", {}).get(k) for k in ("id", "name", "email")),
        *(doc.get("audit", {}).get("object", {}).get(k) for k in ("id", "name")),
    ]
    pieces = [p for v in values if isinstance(v, str) for p in v.split() if len(p) >= 3]
    piece = rng.choice(pieces)
    length = rng.randint(3, min(8, len(piece)))
    start = rng.randint(0, len(piece) - length)
    return piece[start : start + length]


def _filters(rng: random.Random, doc: dict[str, Any], orgs: Sequence[str]) -> dict[str, Any]:
    options: dict[str, Callable[[], Any]] = {
        "category": lambda: [doc["audit"]["category"]["code"]],
        "activity": lambda: [doc["event"]["action"]],
        "status": lambda: rng.choice(["success", "failure"]),
        "source": lambda: rng.choice(["ui", "api", "system"]),
        "actor_type": lambda: rng.choice(
            ["partner_user", "organization_user", "internal_support", "system"]
        ),
        "organization_id": lambda: sorted(set(rng.sample(list(orgs), min(3, len(orgs))))),
    }
    chosen = rng.sample(sorted(options), rng.randint(1, 3))
    return {name: options[name]() for name in chosen}


def build_requests(
    docs: list[dict[str, Any]], now: datetime, per_kind: int, seed: int = SEED
) -> list[Request]:
    rng = random.Random(seed)  # noqa: S311 - reproducible load, not secrets
    orgs: dict[str, list[str]] = {}
    for doc in docs:
        org = doc.get("organization", {}).get("id")
        if org:
            orgs.setdefault(doc["audit"]["partner_id"], []).append(org)
    requests: list[Request] = []
    for kind in KINDS:
        for _ in range(per_kind):
            doc = rng.choice(docs)
            partner = doc["audit"]["partner_id"]
            if kind == "detail":
                requests.append(Request(kind, partner, log_id=doc["event"]["id"]))
                continue
            params: dict[str, Any] = {"from_": now - WINDOWS[kind], "to": now, "limit": LIMIT}
            if kind.startswith("search") or kind == "filters_search":
                params["q"] = _term(rng, doc)
            if kind.startswith("filters"):
                params.update(_filters(rng, doc, sorted(set(orgs.get(partner, ["org-0001"])))))
            requests.append(Request(kind, partner, params=params))
    return requests


# --- Executing one request three ways ----------------------------------------------------------


class Executor:
    def __init__(self, es: Elasticsearch, alias: str, api_url: str, now: datetime) -> None:
        self.es = es
        self.alias = alias
        self.api_url = api_url
        self.now = now
        self._local = threading.local()
        self._tokens: dict[str, str] = {}

    def _client(self) -> ApiClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = ApiClient(self.api_url)
        return client

    def _es_conn(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "es", None)
        if conn is None:
            parts = urllib.parse.urlsplit(ES_URL)
            conn = http.client.HTTPConnection(
                parts.hostname or "127.0.0.1", parts.port, timeout=300
            )
            self._local.es = conn
        return conn

    def token(self, partner: str) -> str:
        if partner not in self._tokens:
            self._tokens[partner] = mint_token(partner)
        return self._tokens[partner]

    def api(self, request: Request) -> tuple[float, dict[str, Any]]:
        """Seconds of the timed call through the API (page 2: page 1 first, untimed)."""
        client, token = self._client(), self.token(request.partner)
        if request.kind == "detail":
            path = f"/api/v1/audit-logs/{request.log_id}"
        else:
            params = request.api_params()
            if request.kind == "page2":
                status, body = client.get(api_path("/api/v1/audit-logs", params), token)
                cursor = json.loads(body).get("next_cursor") if status == 200 else None
                if not cursor:
                    return -1.0, {"status": status, "no_page_2": True}
                params.append(("cursor", cursor))
            path = api_path("/api/v1/audit-logs", params)
        started = time.perf_counter()
        status, body = client.get(path, token)
        elapsed = time.perf_counter() - started
        info: dict[str, Any] = {"status": status}
        if status != 200:
            info["body"] = body[:300].decode(errors="replace")
        return (elapsed if status == 200 else -1.0), info

    def _search(self, body: dict[str, Any]) -> tuple[float, bytes]:
        """POST the body as JSON to ``<alias>/_search`` on a keep-alive connection of this
        thread, as the API's store does (same query parameters); the reply is read, not
        parsed, so the client's own CPU stays out of the figure."""
        payload = json.dumps(body).encode()
        path = f"/{self.alias}/_search?ignore_unavailable=true&allow_no_indices=true"
        headers = {"Content-Type": "application/json"}
        for attempt in (1, 2):
            conn = self._es_conn()
            try:
                started = time.perf_counter()
                conn.request("POST", path, body=payload, headers=headers)
                reply = conn.getresponse()
                data = reply.read()
                elapsed = time.perf_counter() - started
                break
            except (http.client.HTTPException, ConnectionError):
                conn.close()
                self._local.es = None
                if attempt == 2:
                    raise
        if reply.status != 200:
            raise RuntimeError(f"Elasticsearch answered {reply.status}: {data[:300]!r}")
        return elapsed, data

    @staticmethod
    def _total(data: bytes) -> dict[str, Any]:
        match = _TOTAL.search(data)
        return {"total": int(match.group(1))} if match else {}

    def direct(self, request: Request) -> tuple[float, dict[str, Any]]:
        """The product's own query body, straight to Elasticsearch."""
        caller = request.caller()
        if request.kind == "detail":
            elapsed, _ = self._search(build_detail_query(request.log_id or "", caller))
            return elapsed, {}
        cursor = None
        if request.kind == "page2":
            _, first = self._search(build_list_query(request.params, caller, self.now))
            hits = json.loads(first)["hits"]["hits"]
            if len(hits) <= LIMIT:
                return -1.0, {"no_page_2": True}
            window = resolve_window(request.params, self.now)
            cursor = Cursor(hits[LIMIT - 1]["sort"], window[0], window[1], "")
        elapsed, reply = self._search(build_list_query(request.params, caller, self.now, cursor))
        return elapsed, self._total(reply)

    def naive(self, request: Request) -> tuple[float, dict[str, Any]]:
        """``*term*`` wildcards on the keyword fields instead of the trigram phrase query."""
        caller = request.caller()
        params = {k: v for k, v in request.params.items() if k != "q"}
        window = resolve_window(request.params, self.now)
        clauses = filter_clauses(params, caller, window)
        for term in str(request.params.get("q", "")).split():
            pattern = "*" + term.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?") + "*"
            clauses.append(
                {
                    "bool": {
                        "minimum_should_match": 1,
                        "should": [
                            {"wildcard": {name: {"value": pattern, "case_insensitive": True}}}
                            for name in NAIVE_FIELDS
                        ],
                    }
                }
            )
        body = build_list_query(params, caller, self.now)
        body["query"] = {"bool": {"filter": clauses}}
        elapsed, reply = self._search(body)
        return elapsed, self._total(reply)


# --- Running a mix with N clients ---------------------------------------------------------------


def run_clients(
    tasks: list[Any],
    work: Callable[[Any], None],
    clients: int = CLIENTS,
    deadline_s: float | None = None,
) -> float:
    """Run ``work(task)`` for each task on ``clients`` threads; returns wall seconds."""
    todo: queue.SimpleQueue[Any] = queue.SimpleQueue()
    for task in tasks:
        todo.put(task)
    started = time.monotonic()
    errors: list[BaseException] = []

    def client() -> None:
        while deadline_s is None or time.monotonic() - started < deadline_s:
            try:
                task = todo.get_nowait()
            except queue.Empty:
                return
            try:
                work(task)
            except Exception as error:  # recorded, the run goes on
                errors.append(error)

    threads = [threading.Thread(target=client, name=f"client-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        log(f"{len(errors)} client errors, first: {errors[0]!r}")
    return time.monotonic() - started


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self.failures: dict[tuple[str, str], list[Any]] = {}
        self.totals: dict[tuple[str, str], list[int]] = {}
        self.pairs: list[float] = []

    def add(self, target: str, kind: str, seconds: float, info: dict[str, Any]) -> None:
        with self.lock:
            if seconds < 0:
                self.failures.setdefault((target, kind), []).append(info)
                return
            self.seconds.setdefault((target, kind), []).append(seconds)
            if "total" in info:
                self.totals.setdefault((target, kind), []).append(int(info["total"]))

    def stats(self, target: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for kind in KINDS:
            values = self.seconds.get((target, kind))
            if not values and (target, kind) not in self.failures:
                continue
            entry = summary_ms(values or [])
            totals = sorted(self.totals.get((target, kind), []))
            if totals:
                entry["median_hits"] = totals[len(totals) // 2]
            failures = self.failures.get((target, kind), [])
            if failures:
                entry["failed"] = len(failures)
                entry["failure_sample"] = failures[:3]
            out[kind] = entry
        every = [s for (t, _), values in self.seconds.items() if t == target for s in values]
        out["all"] = summary_ms(every)
        return out


def api_only(executor: Executor, requests: list[Request], clients: int = CLIENTS) -> dict[str, Any]:
    recorder = Recorder()

    def work(request: Request) -> None:
        recorder.add("api", request.kind, *executor.api(request))

    wall = run_clients(requests, work, clients)
    return {"wall_s": round(wall, 1), "api": recorder.stats("api")}


def run_mix(
    es: Elasticsearch,
    alias: str,
    api_url: str,
    now: datetime,
    per_kind: int,
    naive_per_kind: int,
    naive_cap_s: float,
    api_pids: Sequence[int],
    profile: bool,
) -> dict[str, Any]:
    executor = Executor(es, alias, api_url, now)
    docs = sample_documents(es, alias)
    requests = build_requests(docs, now, per_kind)
    random.Random(SEED).shuffle(requests)  # noqa: S311 - reproducible load, not secrets
    warmup = build_requests(docs, now, 5, seed=SEED + 1)
    log(f"B3: warm-up ({len(warmup)} requests each way)")
    run_clients(warmup, lambda r: (executor.api(r), executor.direct(r)))

    recorder = Recorder()
    order = random.Random(SEED + 2)  # noqa: S311 - reproducible load, not secrets
    flips = {id(r): order.random() < 0.5 for r in requests}

    def paired(request: Request) -> None:
        steps = [("api", executor.api), ("direct", executor.direct)]
        if flips[id(request)]:
            steps.reverse()
        results = {}
        for target, call in steps:
            seconds, info = call(request)
            recorder.add(target, request.kind, seconds, info)
            results[target] = seconds
        if min(results.values()) >= 0:
            with recorder.lock:
                recorder.pairs.append(results["api"] - results["direct"])

    profiler = Profiler(profile, "b3-api")
    for pid in api_pids:
        profiler.attach(pid, f"gunicorn-{pid}")
    log(
        f"B3: phase A, {len(requests)} requests through the API and straight to ES, "
        f"{CLIENTS} clients"
    )
    wall_a = run_clients(requests, paired)
    profiler.stop()

    # One client, a few of each kind: the service time without queueing behind 7 others.
    single = Recorder()
    sequential = [r for kind in KINDS for r in [q for q in requests if q.kind == kind][:15]]
    log(f"B3: phase S, {len(sequential)} requests each way with a single client")

    def one(request: Request) -> None:
        single.add("api", request.kind, *executor.api(request))
        single.add("direct", request.kind, *executor.direct(request))

    run_clients(sequential, one, clients=1)

    naive_requests = [
        r for kind in SEARCH_KINDS for r in [q for q in requests if q.kind == kind][:naive_per_kind]
    ]
    random.Random(SEED + 3).shuffle(naive_requests)  # noqa: S311 - reproducible load, not secrets
    log(f"B3: phase N, up to {len(naive_requests)} naive wildcard queries (cap {naive_cap_s:.0f}s)")

    def naive(request: Request) -> None:
        recorder.add("naive", request.kind, *executor.naive(request))

    wall_n = run_clients(naive_requests, naive, deadline_s=naive_cap_s)
    pairs = sorted(recorder.pairs)
    return {
        "requests_per_kind": per_kind,
        "clients": CLIENTS,
        "phase_a_wall_s": round(wall_a, 1),
        "phase_a_requests_per_s": round(2 * len(requests) / wall_a, 1),
        "phase_n_wall_s": round(wall_n, 1),
        "api": recorder.stats("api"),
        "direct": recorder.stats("direct"),
        "naive": recorder.stats("naive"),
        "paired_overhead_ms": summary_ms(pairs) if pairs else {},
        "single_client": {"api": single.stats("api"), "direct": single.stats("direct")},
        "profiles": profiler.outputs,
        "sample_terms": [r.params.get("q") for r in requests if "q" in r.params][:20],
    }


def evaluate(mix: dict[str, Any]) -> dict[str, Any]:
    """Figures vs QUALITY.md's B3 targets."""
    api, direct, naive = mix["api"], mix["direct"], mix["naive"]
    per_kind: dict[str, Any] = {}
    for kind in KINDS:
        a, d, n = api.get(kind, {}), direct.get(kind, {}), naive.get(kind, {})
        entry: dict[str, Any] = {
            "api_p50": a.get("p50"),
            "api_p99": a.get("p99"),
            "direct_p50": d.get("p50"),
        }
        if a.get("p50") is not None and d.get("p50") is not None:
            entry["overhead_p50_ms"] = round(a["p50"] - d["p50"], 2)
        if n.get("p50") and a.get("p50"):
            entry["naive_p50"] = n["p50"]
            entry["naive_over_api_p50"] = round(n["p50"] / a["p50"], 1)
        per_kind[kind] = entry
    overall_api, overall_direct = api["all"], direct["all"]
    overhead = round(overall_api["p50"] - overall_direct["p50"], 2)
    naive_ratios = [per_kind[k].get("naive_over_api_p50") for k in SEARCH_KINDS]
    naive_ratios_known = [r for r in naive_ratios if r is not None]
    naive_all = naive.get("all", {})
    search_api = [api[k]["p50"] for k in SEARCH_KINDS if api.get(k, {}).get("p50") is not None]
    worst_kind_p99 = max((api[k].get("p99", 0) for k in KINDS if k in api), default=None)
    return {
        "per_kind": per_kind,
        "targets": {
            "api_p50_ms": {
                "target": f"<= {TARGET_P50_MS}",
                "value": overall_api["p50"],
                "met": overall_api["p50"] <= TARGET_P50_MS,
                "worst_kind": max(api[k]["p50"] for k in KINDS if k in api),
            },
            "api_p99_ms": {
                "target": f"<= {TARGET_P99_MS}",
                "value": overall_api["p99"],
                "met": overall_api["p99"] <= TARGET_P99_MS,
                "worst_kind": worst_kind_p99,
            },
            "naive_ratio_p50": {
                "target": f">= {TARGET_NAIVE_RATIO}x per search kind",
                "value": min(naive_ratios_known) if naive_ratios_known else None,
                "naive_all_p50": naive_all.get("p50"),
                "api_search_p50_max": max(search_api) if search_api else None,
                "met": bool(naive_ratios_known)
                and len(naive_ratios_known) == len(naive_ratios)
                and min(naive_ratios_known) >= TARGET_NAIVE_RATIO,
            },
            "api_overhead_p50_ms": {
                "target": f"<= {TARGET_OVERHEAD_MS}",
                "value": overhead,
                "paired_median": mix["paired_overhead_ms"].get("p50"),
                "met": overhead <= TARGET_OVERHEAD_MS,
            },
        },
    }


def alias_of(prefix: str) -> str:
    return read_alias(prefix)


# --- The whole benchmark ------------------------------------------------------------------------


def run(
    es: Elasticsearch,
    n: int,
    export_n: int,
    per_kind: int,
    naive_per_kind: int,
    naive_cap_s: float,
    milestones: list[int],
    allow_stale: bool,
    profile: bool,
) -> dict[str, Any]:
    from bench import dataset
    from bench.apps import api_env
    from bench.events import utc_now
    from bench.output import logs_dir
    from bench.services import create_topics, delete_topics, unique
    from deploy.local.processes import Service, children, free_port

    prefix = dataset.dataset_prefix(n)
    alias = alias_of(prefix)
    partners = dataset.partners_for(n, export_n)
    topic = unique("b3") + ".downloads"
    create_topics([topic], 1)
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    api = Service("audit-api", api_env(prefix, topic, port), logs_dir() / f"{topic}-api.log")
    try:
        api.wait_http(f"{api_url}/healthz")
        manifest = dataset.reusable(es, prefix, n, partners, allow_stale)
        reused = manifest is not None
        if manifest is None:
            now = utc_now().replace(second=0, microsecond=0)
            small = max(20, per_kind // 5)

            def at_milestone(_count: int) -> dict[str, Any]:
                # Logs arrive in time order: "now" at this size is the newest log loaded,
                # so the 24 h / 7 d windows hold as many logs as they will at full size.
                reply = es.search(index=alias, size=0, aggs={"t": {"max": {"field": "@timestamp"}}})
                frontier = datetime.fromisoformat(
                    reply["aggregations"]["t"]["value_as_string"].replace("Z", "+00:00")
                )
                docs = sample_documents(es, alias)
                executor = Executor(es, alias, api_url, frontier)
                mix = api_only(executor, build_requests(docs, frontier, small, seed=SEED + 5))
                return {**mix, "now": frontier.isoformat()}

            log(
                f"B3: loading {n:,} logs over {dataset.DAYS} days into {prefix} "
                f"({partners} partners)"
            )
            manifest = dataset.load(es, prefix, n, partners, now, milestones, at_milestone)
        else:
            log(f"B3: reusing {prefix} ({manifest['n']:,} logs, loaded {manifest['loaded_at']})")
        now = datetime.fromisoformat(manifest["now"])
        mix = run_mix(
            es,
            alias,
            api_url,
            now,
            per_kind,
            naive_per_kind,
            naive_cap_s,
            children(api.pid),
            profile,
        )
    finally:
        api.stop()
        delete_topics([topic])
    scaling = [
        *manifest.get("scaling", []),
        {"n_logs": n, "wall_s": mix["phase_a_wall_s"], "api": mix["api"]},
    ]
    return {
        "benchmark": "B3 query latency at scale",
        "n_logs": n,
        "dataset": {
            key: manifest.get(key)
            for key in (
                "n",
                "count",
                "partners",
                "days",
                "organizations",
                "seed",
                "now",
                "loaded_at",
                "load_seconds",
                "load_docs_per_s",
                "code_hash",
                "template_version",
                "stale_code",
                "note",
            )
        }
        | {"prefix": prefix, "reused": reused},
        **mix,
        **evaluate(mix),
        "scaling": scaling,
    }
