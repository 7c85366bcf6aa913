"""Shared helpers of the benchmarks: services, processes, memory sampling, statistics, results.

Everything here talks only to the endpoints named by ``KAFKA_BOOTSTRAP_SERVERS`` and
``ELASTICSEARCH_URL`` (default: the local services on 127.0.0.1) and to processes it starts.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import json
import math
import os
import platform
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from confluent_kafka.admin import AdminClient, NewTopic
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from schemas.config import ElasticsearchOptions, Env, KafkaOptions
from schemas.index_template import digest_index
from schemas.integrity import private_pem
from schemas.lifecycle_store import lifecycle_index

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
BIN = Path(sys.executable).parent
_ENV = Env()  # the variables the worker and the API read, by the same rules and defaults
KAFKA = KafkaOptions.from_env(_ENV).bootstrap_servers
ES_URL = ElasticsearchOptions.from_env(_ENV).url
# Every name this suite creates starts with this, so `python -m bench.clean` finds leftovers.
NAME_PREFIX = "bench-"
JWT_SECRET = "bench-only-secret-0123456789abcdef0123456789abcdef"  # noqa: S105
#: The worker signs its integrity digests with this key (a fresh one per benchmark run).
BENCH_SIGNING_KEY = private_pem(Ed25519PrivateKey.generate())
SEED = 20261126


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def unique(kind: str) -> str:
    """A lower-case name unique to this run, e.g. ``bench-b1-worker-1a2b3c4d``."""
    return f"{NAME_PREFIX}{kind}-{uuid.uuid4().hex[:8]}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def utc_now() -> datetime:
    return datetime.now(UTC)


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def event_bytes(event: Mapping[str, Any]) -> bytes:
    """A generated event as the Kafka record value a publisher would send."""
    return json.dumps(
        event, ensure_ascii=False, separators=(",", ":"), default=_json_default
    ).encode()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds")
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


# --- Elasticsearch and Kafka -----------------------------------------------------------------


def es_client(timeout: float = 300) -> Elasticsearch:
    return Elasticsearch(ES_URL, request_timeout=timeout, connections_per_node=32)


def es_count(es: Elasticsearch, index: str, refresh: bool = True, patience: float = 180) -> int:
    """``_count`` (after a refresh); rides out an Elasticsearch restart of up to ``patience`` s
    (the local node is shared with other test runs, which may restart it)."""
    deadline = time.monotonic() + patience
    while True:
        try:
            if refresh:
                es.indices.refresh(index=index, ignore_unavailable=True, allow_no_indices=True)
            reply = es.count(index=index, ignore_unavailable=True, allow_no_indices=True)
            return int(reply["count"])
        except (TransportError, ApiError) as error:
            if isinstance(error, ApiError) and error.status_code < 500:
                raise
            if time.monotonic() > deadline:
                raise
            log(f"Elasticsearch unavailable ({type(error).__name__}); waiting")
            time.sleep(2)


def drop_indices(es: Elasticsearch, prefix: str) -> None:
    """Delete ``{prefix}-*``, the worker's digests and the template named ``prefix`` (all
    owned by the benchmark)."""
    assert prefix.startswith(NAME_PREFIX), prefix
    with contextlib.suppress(Exception):
        es.indices.delete(
            index=f"{prefix}-*,{digest_index(prefix)},{lifecycle_index(prefix)}",
            allow_no_indices=True,
            expand_wildcards="all",
            ignore_unavailable=True,
        )
    with contextlib.suppress(Exception):
        es.indices.delete_index_template(name=prefix)


def kafka_admin() -> AdminClient:
    return AdminClient({"bootstrap.servers": KAFKA})


def create_topics(names: Sequence[str], partitions: int = 4) -> None:
    admin = kafka_admin()
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in names]
    )
    for future in futures.values():
        future.result(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # wait until the metadata shows every partition
        topics = admin.list_topics(timeout=10).topics
        if all(n in topics and len(topics[n].partitions) == partitions for n in names):
            return
        time.sleep(0.2)


def delete_topics(names: Iterable[str]) -> None:
    names = [n for n in names if n.startswith(NAME_PREFIX)]
    if not names:
        return
    admin = kafka_admin()  # keep a reference until the futures resolve
    futures = admin.delete_topics(names, operation_timeout=30)
    for future in futures.values():
        with contextlib.suppress(Exception):
            future.result(timeout=30)


# --- Versions and machine --------------------------------------------------------------------


def _dist_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _kafka_version() -> str | None:
    """From the running broker's class path (kafka_2.13-X.Y.Z.jar); None if not local."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "kafka.Kafka" in cmdline:
            match = re.search(r"kafka(?:_2\.\d+)?-(\d+\.\d+\.\d+)", cmdline)
            if match:
                return match.group(1)
    return _ENV.optional("AUDIT_KAFKA_VERSION")


def _es_node(es: Elasticsearch) -> dict[str, Any]:
    try:
        nodes = es.nodes.info(metric="jvm")["nodes"]
        node = next(iter(nodes.values()))
        return {
            "version": node.get("version"),
            "heap_max_mb": round(node["jvm"]["mem"]["heap_max_in_bytes"] / 2**20),
        }
    except Exception as error:  # informational only
        return {"error": repr(error)}


def environment(es: Elasticsearch) -> dict[str, Any]:
    """What a reader needs to compare two result files: machine, services, library versions."""
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0]
    libraries = (
        "confluent-kafka",
        "faust-streaming",
        "aiokafka",
        "elasticsearch",
        "elastic-transport",
        "flask",
        "flask-smorest",
        "marshmallow",
        "gunicorn",
        "pyjwt",
        "matplotlib",
    )
    return {
        "date": utc_now().isoformat(timespec="seconds"),
        "cpu_count": os.cpu_count(),
        "memory": meminfo.split(":", 1)[1].strip(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka": _kafka_version(),
        "elasticsearch": _es_node(es),
        "libraries": {name: _dist_version(name) for name in libraries},
        "git_commit": _git_commit(),
    }


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or None
    except OSError:
        return None


# --- Statistics ------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(seconds: Sequence[float]) -> dict[str, Any]:
    """p50/p95/p99/mean/max in milliseconds of a list of durations in seconds."""
    ms = [s * 1000 for s in seconds]
    if not ms:
        return {"count": 0}
    return {
        "count": len(ms),
        "p50": round(percentile(ms, 50), 2),
        "p95": round(percentile(ms, 95), 2),
        "p99": round(percentile(ms, 99), 2),
        "mean": round(sum(ms) / len(ms), 2),
        "min": round(min(ms), 2),
        "max": round(max(ms), 2),
    }


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if not numerator or not denominator:
        return None
    return round(numerator / denominator, 3)


# --- Results ---------------------------------------------------------------------------------


def write_result(name: str, result: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2, sort_keys=False, default=str) + "\n")
    tmp.replace(path)
    log(f"wrote {path.relative_to(REPO)}")
    return path


def read_result(name: str) -> dict[str, Any] | None:
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- Memory ----------------------------------------------------------------------------------


def proc_status_kb(pid: int, field: str) -> int | None:
    """``VmRSS``/``VmHWM`` of a process in KiB from /proc, None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn workers of a master)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


class RssSampler:
    """Samples VmRSS of the processes ``pids()`` returns, every ``interval`` seconds, in a thread.

    ``series`` holds (seconds since start, {pid: MiB}); ``progress`` (optional) is sampled too,
    so memory can be plotted against work done (rows exported, documents indexed).
    """

    def __init__(
        self,
        pids: Callable[[], Sequence[int]],
        interval: float = 0.5,
        progress: Callable[[], float] | None = None,
    ) -> None:
        self._pids = pids
        self._interval = interval
        self._progress = progress
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")
        self.series: list[tuple[float, dict[int, float], float | None]] = []
        self.hwm_mb: dict[int, float] = {}
        self._started = 0.0

    def __enter__(self) -> RssSampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join(timeout=5)

    def sample(self) -> None:
        sizes: dict[int, float] = {}
        for pid in self._pids():
            rss = proc_status_kb(pid, "VmRSS")
            hwm = proc_status_kb(pid, "VmHWM")
            if rss is not None:
                sizes[pid] = round(rss / 1024, 1)
            if hwm is not None:
                self.hwm_mb[pid] = max(self.hwm_mb.get(pid, 0.0), round(hwm / 1024, 1))
        progress = self._progress() if self._progress else None
        self.series.append((round(time.monotonic() - self._started, 2), sizes, progress))

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def peak_mb(self) -> float:
        """Peak resident size of any one sampled process (VmHWM, else the largest sample)."""
        sampled = [mb for _, sizes, _ in self.series for mb in sizes.values()]
        return max([*self.hwm_mb.values(), *sampled], default=0.0)


# --- Processes -------------------------------------------------------------------------------


class Service:
    """A console script of this project run as a subprocess in its own process group."""

    def __init__(
        self, script: str, env: Mapping[str, str], log_path: Path, argv: Sequence[str] = ()
    ) -> None:
        self.script = script
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(BIN / script), *argv],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self, timeout: float = 30) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()

    def wait_http(self, url: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.script} exited early; log:\n{self.tail()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = http_get(url, timeout=2)
                if status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.script} not ready at {url} after {timeout:.0f}s:\n{self.tail()}")


@contextlib.contextmanager
def running(script: str, env: Mapping[str, str], log_path: Path) -> Iterator[Service]:
    service = Service(script, env, log_path)
    try:
        yield service
    finally:
        service.stop()


def http_get(
    url: str, headers: Mapping[str, str] | None = None, timeout: float = 30
) -> tuple[int, bytes]:
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=timeout)
    try:
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        conn.request("GET", path, headers=dict(headers or {}))
        reply = conn.getresponse()
        return reply.status, reply.read()
    finally:
        conn.close()


class ApiClient:
    """One keep-alive HTTP connection to the API (one per client thread)."""

    def __init__(self, base_url: str, timeout: float = 120) -> None:
        parts = urllib.parse.urlsplit(base_url)
        self._host, self._port, self._timeout = parts.hostname or "127.0.0.1", parts.port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def get(self, path: str, token: str) -> tuple[int, bytes]:
        for attempt in (1, 2):  # a keep-alive connection the server closed: reconnect once
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
                reply = self._conn.getresponse()
                body = reply.read()
                if reply.getheader("Connection", "").lower() == "close":
                    self.close()
                return reply.status, body
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def api_path(path: str, params: Sequence[tuple[str, str]] | Mapping[str, str]) -> str:
    query = urllib.parse.urlencode(list(params.items()) if isinstance(params, Mapping) else params)
    return f"{path}?{query}" if query else path


def mint_token(
    partner_id: str, role: str = "owner", org_ids: Sequence[str] = (), ttl: int = 7200
) -> str:
    now = int(time.time())
    claims = {
        "sub": f"bench-{role}",
        "name": "Bench User",
        "partner_id": partner_id,
        "role": role,
        "org_ids": list(org_ids),
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, JWT_SECRET, algorithm="HS256")


def api_env(prefix: str, events_topic: str, port: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "ELASTICSEARCH_URL": ES_URL,
        "AUDIT_INDEX_PREFIX": prefix,
        "AUDIT_JWT_SECRET": JWT_SECRET,
        "AUDIT_ENV": "development",
        "AUDIT_API_PORT": str(port),
        "AUDIT_EVENTS_TOPIC": events_topic,
    }


def worker_env(prefix: str, topic: str, port: int) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": KAFKA,
        "ELASTICSEARCH_URL": ES_URL,
        "AUDIT_INDEX_PREFIX": prefix,
        "AUDIT_TOPICS": topic,
        "AUDIT_DLQ_TOPIC": f"{topic}.dlq",
        "AUDIT_GROUP_ID": f"{topic}-group",
        "AUDIT_WORKER_PORT": str(port),
        "AUDIT_SIGNING_KEY": BENCH_SIGNING_KEY,
    }


def logs_dir() -> Path:
    path = RESULTS / "logs"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Profiler:
    """``py-spy record`` attached to running processes (``--profile``); no-op when disabled."""

    def __init__(self, enabled: bool, name: str) -> None:
        self.enabled = enabled
        self.name = name
        self._procs: list[subprocess.Popen[bytes]] = []
        self.outputs: list[str] = []

    def attach(self, pid: int, label: str) -> None:
        if not self.enabled:
            return
        spy = BIN / "py-spy"
        if not spy.exists():
            log("py-spy is not installed; --profile ignored")
            self.enabled = False
            return
        out = RESULTS / "profiles" / f"{self.name}-{label}.svg"
        out.parent.mkdir(parents=True, exist_ok=True)
        self._procs.append(
            subprocess.Popen(  # noqa: S603
                [
                    str(spy),
                    "record",
                    "--pid",
                    str(pid),
                    "--output",
                    str(out),
                    "--nonblocking",
                    "--subprocesses",  # AUDIT_WORKER_PROCESSES: the workers are children
                    "--rate",
                    "50",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        self.outputs.append(str(out.relative_to(REPO)))

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        for proc in self._procs:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        self._procs.clear()
