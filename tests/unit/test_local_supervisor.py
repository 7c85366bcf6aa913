"""`make run`'s supervisor restarts a child that dies, backing off, and stops whole groups.

Children are tiny Python processes; a fake clock stands in for time where delays matter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local import supervisor as supervision
from tests.support.processes import wait_until

SLEEPER = [sys.executable, "-c", "import time; time.sleep(600)"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def lines() -> list[str]:
    return []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def make_supervisor(lines: list[str], clock: Any = None, **policy: Any) -> Any:
    settings = {"first_delay_s": 1.0, "max_delay_s": 4.0, "stable_after_s": 60.0}
    return supervision.Supervisor(
        supervision.Policy(**{**settings, **policy}),
        say=lines.append,
        **({"clock": clock} if clock else {}),
    )


@pytest.fixture
def stopped_after() -> Iterator[list[Any]]:
    """Supervisors registered here are stopped after the test, whatever happens."""
    supervisors: list[Any] = []
    yield supervisors
    for supervisor in supervisors:
        supervisor.stop_all()


def failing(code: int, message: str) -> list[str]:
    return [sys.executable, "-c", f"print({message!r}); raise SystemExit({code})"]


def next_restart(supervisor: Any, child: Any, clock: FakeClock) -> float:
    """Wait until the supervisor notices the child's exit; the delay it chose."""

    def noticed() -> float | None:
        supervisor.check()
        return child.restart_at

    restart_at: float = wait_until(noticed, 20, f"{child.name}'s exit noticed")
    return restart_at - clock.now


def test_delays_double_from_one_second_to_thirty() -> None:
    policy = supervision.Policy()
    assert [policy.delay(n) for n in range(1, 8)] == [1, 2, 4, 8, 16, 30, 30]


def test_a_killed_child_is_restarted_with_a_readable_line(
    tmp_path: Path, lines: list[str], stopped_after: list[Any]
) -> None:
    supervisor = make_supervisor(lines, first_delay_s=0.1)
    stopped_after.append(supervisor)
    child = supervisor.start("worker", SLEEPER, dict(os.environ), tmp_path / "worker.log")
    first = child.process.pid
    os.killpg(first, signal.SIGKILL)

    def restarted() -> bool:
        supervisor.check()
        return child.process is not None and child.process.pid != first

    wait_until(restarted, 20, "the worker restarted")
    assert child.process.poll() is None
    assert any(
        line.startswith("run: worker was killed by SIGKILL after 0s; restarting in 0.1s")
        for line in lines
    ), lines
    assert lines[-1].startswith(f"run: restarted worker (pid {child.process.pid}")


def test_rapid_failures_back_off_and_a_long_run_starts_over(
    tmp_path: Path, lines: list[str], clock: FakeClock, stopped_after: list[Any]
) -> None:
    supervisor = make_supervisor(lines, clock, give_up_after=10)
    stopped_after.append(supervisor)
    child = supervisor.start("api", failing(3, "port taken"), dict(os.environ), tmp_path / "a.log")
    delays = []
    for _ in range(4):
        delays.append(next_restart(supervisor, child, clock))
        clock.now = child.restart_at
        supervisor.check()  # restarts it
        clock.now += 61 if len(delays) == 4 else 0  # the last run "stays up" 61 s
    delays.append(next_restart(supervisor, child, clock))
    assert delays == [1, 2, 4, 4, 1]
    assert "run: api exited with code 3 after 0s; restarting in 2s" in lines[3]
    assert lines[3].endswith(f"(log: {tmp_path / 'a.log'}: port taken)")


def test_it_gives_up_in_one_line_after_many_rapid_failures(
    tmp_path: Path, lines: list[str], clock: FakeClock, stopped_after: list[Any]
) -> None:
    supervisor = make_supervisor(lines, clock, give_up_after=3)
    stopped_after.append(supervisor)
    command = failing(2, "topic missing")
    child = supervisor.start("worker", command, dict(os.environ), tmp_path / "w.log")
    for _ in range(2):
        clock.now += next_restart(supervisor, child, clock)
        supervisor.check()
    with pytest.raises(supervision.GaveUp) as gave_up:
        wait_until(lambda: supervisor.check(), 20, "the third failure")
    message = str(gave_up.value)
    assert message.startswith("worker exited with code 2 after 0s: 3 failures in a row")
    assert "giving up" in message and message.endswith(": topic missing)")
    assert "\n" not in message


def test_stop_all_stops_every_process_of_each_group(
    tmp_path: Path, lines: list[str], stopped_after: list[Any]
) -> None:
    supervisor = make_supervisor(lines)
    stopped_after.append(supervisor)
    # A shell with children of its own, like gunicorn and its workers.
    family = ["sh", "-c", "sleep 600 & sleep 600 & wait"]
    groups = [
        supervisor.start(name, family, dict(os.environ), tmp_path / f"{name}.log").process.pid
        for name in ("worker", "api")
    ]
    wait_until(lambda: all(len(members(group)) == 3 for group in groups), 10, "the shells' sleeps")
    supervisor.stop_all()
    assert [members(group) for group in groups] == [[], []]
    assert all(child.process is None for child in supervisor.children)


def members(group: int) -> list[int]:
    """The live (not zombie) processes of a process group."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":
                found.append(int(stat.parent.name))
    return found
