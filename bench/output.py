"""Where the benchmarks write: their progress lines, result files, worker/API logs and profiles
(all under bench/results; each writer makes its folder)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

from deploy.local.processes import BIN

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


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
