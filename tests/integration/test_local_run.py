"""`make run` (deploy/local/run.py) restarts a worker that dies, and Ctrl-C stops all it started.

The real run.py runs (`python -m deploy.local.run`, as `make run` has it) with stand-ins for
`audit-worker` and `audit-api` (tiny health servers) beside a link to this interpreter, since it
starts the scripts found next to `sys.executable`.
Kafka (for its topic check) and Elasticsearch are the test session's, given by environment,
so run.py starts no services here.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from deploy.local.processes import free_port, http_ok
from tests.support.processes import wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]

FAKE_CHILD = '''#!{python}
"""Stands in for {name}: records its pid, answers /healthz on ${port_variable}."""
import http.server
import os
from pathlib import Path

Path(os.environ["FAKE_PIDS"], "{name}.pid").write_text(str(os.getpid()))


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(os.environ["{port_variable}"])
http.server.ThreadingHTTPServer(("127.0.0.1", port), Health).serve_forever()
'''


def fake_bin(folder: Path) -> Path:
    """A bin folder with `python` (this interpreter) and fake audit-worker and audit-api."""
    folder.mkdir()
    (folder / "python").symlink_to(sys.executable)
    for name, port_variable in (
        ("audit-worker", "AUDIT_WORKER_PORT"),
        ("audit-api", "AUDIT_API_PORT"),
        ("audit-log", "FAKE_RETENTION_PORT"),  # the daily `audit-log indices retention`
    ):
        script = folder / name
        script.write_text(
            FAKE_CHILD.format(python=sys.executable, name=name, port_variable=port_variable)
        )
        script.chmod(0o755)
    return folder


def pid_of(pids: Path, name: str) -> int | None:
    try:
        return int((pids / f"{name}.pid").read_text())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """Running, not a zombie (a reaped or exited process is not alive)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def run_env(
    tmp_path: Path,
    kafka_bootstrap: str,
    es_url: str,
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
) -> dict[str, str]:
    # Topics exist beforehand, so run.py's topic check creates nothing in the shared Kafka.
    topic, dlq = create_topic(unique_name("run")), create_topic(unique_name("run-dlq"))
    (tmp_path / "pids").mkdir()
    paths = sysconfig.get_paths()
    return {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ELASTICSEARCH_URL": es_url,
        "AUDIT_TOPICS": topic,
        "AUDIT_DLQ_TOPIC": dlq,
        "AUDIT_WORKER_PORT": str(free_port()),
        "AUDIT_API_PORT": str(free_port()),
        "FAKE_RETENTION_PORT": str(free_port()),
        "AUDIT_STATE_DIR": str(tmp_path / "state"),
        "FAKE_PIDS": str(tmp_path / "pids"),
        # The link to the interpreter is outside the venv: name its packages (jwt, kafka)
        # and this checkout (deploy.local is in it, and imports schemas; the editable
        # install's hook is a .pth file, which only the venv's own site folder runs).
        "PYTHONPATH": os.pathsep.join(
            dict.fromkeys([str(REPO_ROOT), paths["purelib"], paths["platlib"]])
        ),
    }


@pytest.fixture
def make_run(
    tmp_path: Path, run_env: dict[str, str]
) -> Iterator[Callable[[], subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    pids = Path(run_env["FAKE_PIDS"])

    def start() -> subprocess.Popen[bytes]:
        python = fake_bin(tmp_path / "bin") / "python"
        with (tmp_path / "run.out").open("wb") as out:
            process = subprocess.Popen(
                [str(python), "-m", "deploy.local.run"],
                env=run_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:  # a failed test must not leave run.py or its children behind
        process.kill()
        process.wait()
    for name in ("audit-worker", "audit-api", "audit-log"):
        pid = pid_of(pids, name)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)


def test_a_killed_worker_is_restarted_and_ctrl_c_stops_everything(
    tmp_path: Path, run_env: dict[str, str], make_run: Callable[[], subprocess.Popen[bytes]]
) -> None:
    output = tmp_path / "run.out"
    pids = Path(run_env["FAKE_PIDS"])
    run = make_run()

    def printed(text: str) -> Callable[[], bool]:
        def probe() -> bool:
            if run.poll() is not None:
                raise AssertionError(f"run.py exited ({run.returncode}):\n{output.read_text()}")
            return text in output.read_text()

        return probe

    wait_until(printed("Token:"), 60, "run.py's banner")
    first_worker, api = pid_of(pids, "audit-worker"), pid_of(pids, "audit-api")
    assert first_worker and api
    retention = wait_until(lambda: pid_of(pids, "audit-log"), 30, "the retention schedule")
    os.kill(first_worker, signal.SIGKILL)

    wait_until(printed("run: restarted worker"), 30, "the worker restarted")
    assert "run: worker was killed by SIGKILL" in output.read_text()
    worker = wait_until(
        lambda: (pid := pid_of(pids, "audit-worker")) != first_worker and pid, 30, "a new worker"
    )
    wait_until(lambda: http_ok(f"http://127.0.0.1:{run_env['AUDIT_WORKER_PORT']}/"), 30, "health")
    assert alive(api), "the API was stopped when the worker died"

    run.send_signal(signal.SIGINT)
    assert run.wait(timeout=60) == 0, output.read_text()
    assert output.read_text().rstrip().endswith("run: stopped")
    assert not alive(worker) and not alive(api) and not alive(retention)
