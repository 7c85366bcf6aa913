"""Keep `make run`'s children up, as a process supervisor would.

A child that exits is restarted after a delay that doubles from `first_delay_s` up to
`max_delay_s`; a child that stayed up `stable_after_s` had a good run, so its next failure
starts over. After `give_up_after` failures in a row, each soon after starting, restarting
is pointless (a bad setting, a port taken): `GaveUp` says so in one line.

Standard library only; children start and stop as `processes.py` has it.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from deploy.local.processes import end_group


@dataclass(frozen=True)
class Policy:
    first_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stable_after_s: float = 60.0
    give_up_after: int = 8

    def delay(self, failures: int) -> float:
        """The wait before restarting after the `failures`-th failure in a row (1, 2, ...)."""
        return float(min(self.max_delay_s, self.first_delay_s * 2 ** max(failures - 1, 0)))


class GaveUp(Exception):
    """A child kept failing right after starting; the message says which and where to look."""


@dataclass
class Child:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0  # in a row, each within `stable_after_s` of starting
    restart_at: float | None = None
    starts: int = 0


def describe_exit(code: int) -> str:
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:200] if lines else ""


def _print_now(line: str) -> None:
    print(line, flush=True)  # a log file behind stdout must show a restart when it happens


class Supervisor:
    """Children started in process groups of their own, restarted when they exit."""

    def __init__(
        self,
        policy: Policy | None = None,
        say: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or Policy()
        self.children: list[Child] = []
        self._say = say or _print_now
        self._clock = clock

    def start(self, name: str, command: list[str], env: dict[str, str], log_path: Path) -> Child:
        child = Child(name, command, env, log_path)
        self.children.append(child)
        self._spawn(child)
        return child

    def check(self) -> None:
        """Notice exits and do the restarts that are due; raises GaveUp."""
        now = self._clock()
        for child in self.children:
            if child.process is not None and child.process.poll() is not None:
                self._exited(child, now)
            if child.restart_at is not None and now >= child.restart_at:
                self._spawn(child)

    def stop_all(self) -> None:
        """Stop every child (last started first) and its process group."""
        for child in reversed(self.children):
            child.restart_at = None
            if child.process is not None:
                end_group(child.process)
                child.process = None

    def _spawn(self, child: Child) -> None:
        child.log_path.parent.mkdir(parents=True, exist_ok=True)
        with child.log_path.open("ab") as log:
            child.process = subprocess.Popen(
                child.command,
                env=child.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us only; we stop the group
            )
        child.started_at = self._clock()
        child.restart_at = None
        child.starts += 1
        verb = "starting" if child.starts == 1 else "restarted"
        self._say(f"run: {verb} {child.name} (pid {child.process.pid}, log: {child.log_path})")

    def _exited(self, child: Child, now: float) -> None:
        assert child.process is not None
        code = end_group(child.process, timeout_s=5)
        child.process = None
        uptime = now - child.started_at
        child.failures = 1 if uptime >= self.policy.stable_after_s else child.failures + 1
        why = f"{child.name} {describe_exit(code)} after {uptime:.0f}s"
        tail = last_line(child.log_path)
        log = f"log: {child.log_path}" + (f": {tail}" if tail else "")
        if child.failures >= self.policy.give_up_after:
            raise GaveUp(
                f"{why}: {child.failures} failures in a row, each within "
                f"{self.policy.stable_after_s:g}s of starting; giving up ({log})"
            )
        delay = self.policy.delay(child.failures)
        child.restart_at = now + delay
        self._say(f"run: {why}; restarting in {delay:g}s ({log})")
