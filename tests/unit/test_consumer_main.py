"""`audit-worker` start-up: a configuration mistake is one readable line and exit code 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from consumer.backoff import Backoff


def test_bad_configuration_is_one_json_line_naming_the_variable() -> None:
    env = {**os.environ, "AUDIT_BATCH_SIZE": "lots"}

    result = subprocess.run(
        [sys.executable, "-m", "consumer.main"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    entry = json.loads(lines[0])
    assert entry["level"] == "error"
    assert "AUDIT_BATCH_SIZE" in entry["message"]


def test_backoff_grows_and_is_capped() -> None:
    backoff = Backoff(initial=0.2, maximum=10.0)

    delays = [backoff.delay(attempt) for attempt in range(1, 12)]

    assert 0.2 <= delays[0] <= 0.8
    assert all(delay <= 10.0 for delay in delays)
    assert delays[-1] == 10.0
