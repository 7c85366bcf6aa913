"""AUDIT_WORKER_PROCESSES: the parent starts the workers, passes signals, ends with them."""

from __future__ import annotations

import sys

import pytest

from consumer import processes
from consumer.settings import SettingsError, load_settings


def test_one_process_unless_told_otherwise() -> None:
    assert load_settings({}).worker_processes == 1
    assert load_settings({"AUDIT_WORKER_PROCESSES": "3"}).worker_processes == 3
    with pytest.raises(SettingsError, match="AUDIT_WORKER_PROCESSES"):
        load_settings({"AUDIT_WORKER_PROCESSES": "0"})


def test_each_child_is_one_process_on_its_own_port() -> None:
    assert processes.child_environment(2, 9108)["AUDIT_WORKER_PORT"] == "9110"
    assert processes.child_environment(2, 0)["AUDIT_WORKER_PORT"] == "0"  # any free port
    assert processes.child_environment(0, 9108)["AUDIT_WORKER_PROCESSES"] == "1"


def test_when_one_child_ends_the_others_are_stopped_with_its_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Child 0 exits with 3 at once; child 1 would run for a minute unless stopped.
    script = (
        "import os, sys, time; "
        "sys.exit(3) if os.environ['AUDIT_WORKER_PORT'] == '7000' else time.sleep(60)"
    )
    monkeypatch.setattr(processes, "CHILD_COMMAND", (sys.executable, "-c", script))

    assert processes.run_processes(2, 7000) == 3
