"""Child processes in process groups of their own: start one with its output in a log file,
stop a whole group, read a process tree's memory from /proc.

Standard library only: `services.py` uses it before any virtual environment exists, and so do
`make run`'s supervisor, the tests and the benchmarks (which start the project's console
scripts with `Service`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

#: The folder of this interpreter, where the project's console scripts are installed.
BIN = Path(sys.executable).parent
STOP_TIMEOUT_S = 30.0


def free_port() -> int:
    """A loopback port nothing listens on (now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_ok(url: str, timeout_s: float = 2) -> bool:
    """Whether `url` answers 200 (a health page)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as reply:  # noqa: S310 - http(s) URLs
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


# --------------------------------------------------------------------------- stopping


def stop_group(
    pid: int, timeout_s: float = STOP_TIMEOUT_S, reap: Callable[[], object] | None = None
) -> bool:
    """SIGTERM the process group `pid` leads and wait until none of it is left; SIGKILL what
    still runs after `timeout_s`. `reap` collects the leader when it is our child (a zombie
    still counts as a member). True when the group ended within the time.

    Once the leader is reaped its pid stays taken while its group has members, so signalling
    the group reaches no stranger until it reports that it is gone."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if reap is not None:
            reap()
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    return False


def end_group(process: subprocess.Popen[bytes], timeout_s: float = STOP_TIMEOUT_S) -> int:
    """Stop `process` and whatever is left in its process group (gunicorn's workers, say);
    returns its exit code. SIGTERM first, SIGKILL for what still runs after `timeout_s`."""
    stop_group(process.pid, timeout_s, reap=process.poll)
    return process.wait()


# --------------------------------------------------------------------------- console scripts


class Service:
    """A console script of this project (beside `sys.executable`) run in a process group of
    its own, its output appended to `log_path`."""

    def __init__(
        self, script: str, env: Mapping[str, str], log_path: Path, argv: Sequence[str] = ()
    ) -> None:
        self.script = script
        self.log_path = log_path
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("ab")
        self.started = time.monotonic()
        self.process = subprocess.Popen(
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

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def tail(self, chars: int = 3000) -> str:
        return self.log()[-chars:]

    def signal(self, signum: int) -> None:
        """Signal the whole process group, while the script runs."""
        if self.alive():
            os.killpg(self.process.pid, signum)

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM to the group, SIGKILL to what is left after `timeout_s`; the exit code."""
        code = end_group(self.process, timeout_s) if self.alive() else self.process.wait()
        self._log.close()
        return code

    def wait_http(self, url: str, timeout_s: float = 90) -> None:
        """Until `url` answers 200; RuntimeError with the log's end if the script exits first
        or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while True:
            if not self.alive():
                raise RuntimeError(f"{self.script} exited early; log:\n{self.tail()}")
            if http_ok(url):
                return
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.script} not ready at {url} after {timeout_s:.0f}s; log:\n{self.tail()}"
                )
            time.sleep(0.2)


@contextlib.contextmanager
def running(script: str, env: Mapping[str, str], log_path: Path) -> Iterator[Service]:
    """`Service` for the duration of a `with` block."""
    service = Service(script, env, log_path)
    try:
        yield service
    finally:
        service.stop()


# --------------------------------------------------------------------------- memory


def status_kib(pid: int, field: str) -> int | None:
    """A size field of /proc/PID/status in KiB (`VmRSS`, `VmHWM`); None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of `pid` (gunicorn's workers of its arbiter)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def process_tree(pid: int) -> list[int]:
    """`pid` and its descendants."""
    tree = [pid]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) in tree:
            tree.append(int(entry.name))
    return tree


def tree_rss_mib(pid: int) -> float | None:
    """Resident memory of `pid` and its descendants in MiB; None when none is left."""
    total_kib = sum(status_kib(each, "VmRSS") or 0 for each in process_tree(pid))
    return total_kib / 1024 if total_kib else None
