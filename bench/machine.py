"""What a reader needs to compare two result files (machine, services, library versions), and
the memory of the processes a benchmark runs, sampled from /proc."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from bench.output import REPO
from bench.services import ENV
from deploy.local.processes import status_kib


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
    return ENV.optional("AUDIT_KAFKA_VERSION")


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
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
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
            rss = status_kib(pid, "VmRSS")
            hwm = status_kib(pid, "VmHWM")
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
