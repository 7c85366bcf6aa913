"""`AUDIT_WORKER_PROCESSES` > 1: one `audit-worker` per process, all in one consumer group.

One worker process is one Python interpreter: validation and normalization of a batch and
the event loop share one GIL, and a batch's CPU work waits while Elasticsearch indexes the
previous one. Several processes in the group split the partitions and fill the cores (QUALITY
B1). This parent only starts them and passes signals on; each child is a complete worker
(its own `/healthz`, `/readyz`, `/metrics` on `AUDIT_WORKER_PORT` + its number). When one
child ends, the parent stops the others and exits with that child's code, so whatever
supervises the parent (systemd, Kubernetes, `make run`) restarts the whole set.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from types import FrameType

log = logging.getLogger("consumer")

#: What each child runs: this same worker, as a single process.
CHILD_COMMAND = (sys.executable, "-c", "from consumer.main import main; main()")


def child_environment(number: int, base_port: int) -> dict[str, str]:
    """The parent's environment for child `number` (0-based): one process, its own port
    (port 0, "any free port", stays 0)."""
    port = base_port + number if base_port else 0
    return {**os.environ, "AUDIT_WORKER_PROCESSES": "1", "AUDIT_WORKER_PORT": str(port)}


def run_processes(count: int, base_port: int) -> int:
    """Run `count` worker processes until one ends; the exit code to leave with."""
    children = [
        subprocess.Popen(CHILD_COMMAND, env=child_environment(number, base_port))  # noqa: S603
        for number in range(count)
    ]
    log.info("started %d worker processes", count, extra={"pids": [c.pid for c in children]})

    def forward(signum: int, _frame: FrameType | None) -> None:
        # Each child stops as a worker does: its in-flight batch stays uncommitted.
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {
        signum: signal.signal(signum, forward) for signum in (signal.SIGTERM, signal.SIGINT)
    }
    try:
        pid, status = os.wait()  # the first child to end, for whatever reason
        code = os.waitstatus_to_exitcode(status)
        log.info("worker process %d ended with %d; stopping the others", pid, code)
        forward(signal.SIGTERM, None)
        for child in children:
            child.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return code if code >= 0 else 128 - code
