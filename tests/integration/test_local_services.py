"""The local service manager fails with one readable line, never a traceback; as root it
never lets the Elasticsearch user steer it; it runs from a clone in a private folder."""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.processes import free_port

SERVICES = Path(__file__).resolve().parents[2] / "deploy" / "local" / "services.py"
SERVICE_USER = "partner-audit"
FAKE_ES_VERSION = "0.0.0-fake"
as_root = pytest.mark.skipif(
    os.geteuid() != 0, reason="Elasticsearch runs as another user only when started as root"
)


def run_services(
    tmp_path: Path, *args: str, script: Path = SERVICES, **env: str
) -> subprocess.CompletedProcess[str]:
    """`services.py` with a state folder under `tmp_path`; an empty value unsets a variable."""
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AUDIT_STATE_DIR": str(tmp_path / "state"),
        "AUDIT_CACHE_DIR": os.environ.get("AUDIT_CACHE_DIR", ""),
    }
    full_env = {key: value for key, value in {**base, **env}.items() if value}
    return subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )


def clone_services(clone: Path) -> Path:
    """The local service manager (the `deploy.local` package) in a copy of the checkout at
    `clone`; its services.py, to run by path."""
    package = clone / "deploy" / "local"
    shutil.copytree(SERVICES.parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(SERVICES.parents[1] / "__init__.py", clone / "deploy")
    return package / "services.py"


def free_kafka_ports() -> dict[str, str]:
    """Ports nothing listens on, so the check under test is the one that fails."""
    return {
        "AUDIT_LOCAL_KAFKA_PORT": str(free_port()),
        "AUDIT_LOCAL_KAFKA_CONTROLLER_PORT": str(free_port()),
    }


def assert_one_readable_line(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0]


@pytest.fixture
def taken_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_taken_port_is_one_readable_line(tmp_path: Path, taken_port: int) -> None:
    result = run_services(tmp_path, "up", "kafka", AUDIT_LOCAL_KAFKA_PORT=str(taken_port))
    assert_one_readable_line(result, f"port {taken_port} is already taken")


def test_no_java_is_one_readable_line(tmp_path: Path) -> None:
    result = run_services(
        tmp_path,
        "up",
        "kafka",
        PATH="/nonexistent",
        AUDIT_JVM_ROOT="/nonexistent",
        **free_kafka_ports(),
    )
    assert_one_readable_line(result, "Kafka needs a Java", "found: none")


def test_a_too_old_java_for_elasticsearch_is_named(tmp_path: Path) -> None:
    fake_home = tmp_path / "jdk8"
    (fake_home / "bin").mkdir(parents=True)
    fake_java = fake_home / "bin" / "java"
    fake_java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_402\"' >&2\n")
    fake_java.chmod(0o755)
    result = run_services(
        tmp_path,
        "up",
        "elasticsearch",
        PATH="/nonexistent",
        AUDIT_JVM_ROOT="/nonexistent",
        JAVA_HOME=str(fake_home),
        AUDIT_LOCAL_ES_PORT=str(free_port()),
        AUDIT_LOCAL_ES_TRANSPORT_PORT=str(free_port()),
    )
    assert_one_readable_line(result, "Elasticsearch needs a Java between 17", "(8)")


def test_a_failed_download_is_one_readable_line(tmp_path: Path) -> None:
    result = run_services(
        tmp_path,
        "up",
        "kafka",
        AUDIT_CACHE_DIR=str(tmp_path / "cache"),
        AUDIT_KAFKA_VERSION="0.0.0-missing",
        **free_kafka_ports(),
    )
    assert_one_readable_line(result, "downloading Kafka 0.0.0-missing failed", "maven.log")


def test_status_names_running_services(endpoints: object) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVICES), "status"], capture_output=True, text=True, check=True
    )
    if getattr(endpoints, "origin", "") == "local":
        assert "kafka: running at" in result.stdout
        assert "elasticsearch: running at" in result.stdout


# --------------------------------------------------------------------------- root and its user

FAKE_ELASTICSEARCH = '''#!{python}
"""Stands in for bin/elasticsearch: writes where the real one writes, answers cluster health."""
import http.server
import os
import sys
from pathlib import Path

config = Path(os.environ["ES_PATH_CONF"])
lines = (config / "elasticsearch.yml").read_text().splitlines()
settings = dict(line.split(": ", 1) for line in lines if ": " in line)
(config / "elasticsearch.keystore").write_text("fake")
Path(sys.argv[sys.argv.index("-p") + 1]).write_text(str(os.getpid()))
(Path(settings["path.data"]) / "node.lock").write_text("")
(Path(settings["path.logs"]) / "fake.log").write_text("started")


class Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b'{{"status": "green"}}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


address = (settings["network.host"], int(settings["http.port"]))
http.server.HTTPServer(address, Health).serve_forever()
'''


@pytest.fixture
def reachable_tmp() -> Iterator[Path]:
    """A folder the Elasticsearch user can walk through (pytest's own tmp_path is private)."""
    folder = Path(tempfile.mkdtemp(prefix="audit-services-test-", dir="/var/tmp"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fake_es(reachable_tmp: Path) -> dict[str, str]:
    """Settings for a cached 'distribution' whose bin/elasticsearch is a tiny health server."""
    python = shutil.which("python3", path="/usr/bin:/bin:/usr/local/bin")
    if python is None or shutil.which("setpriv") is None:
        pytest.skip("needs a system python3 and setpriv")
    target = reachable_tmp / "cache" / f"elasticsearch-{FAKE_ES_VERSION}"
    home = target / f"elasticsearch-{FAKE_ES_VERSION}"
    (home / "bin").mkdir(parents=True)
    (home / "config").mkdir()
    (home / "config" / "jvm.options").write_text("")
    launcher = home / "bin" / "elasticsearch"
    launcher.write_text(FAKE_ELASTICSEARCH.format(python=python))
    launcher.chmod(0o755)
    (target / ".complete").write_text(FAKE_ES_VERSION)
    return {
        "AUDIT_CACHE_DIR": str(reachable_tmp / "cache"),
        "AUDIT_ES_VERSION": FAKE_ES_VERSION,
        "AUDIT_LOCAL_ES_PORT": str(free_port()),
        "AUDIT_LOCAL_ES_TRANSPORT_PORT": str(free_port()),
        "AUDIT_LOCAL_READY_TIMEOUT": "60",
    }


def owner(path: Path) -> str:
    return pwd.getpwuid(path.lstat().st_uid).pw_name


@as_root
def test_root_keeps_its_files_and_follows_no_link_of_the_elasticsearch_user(
    reachable_tmp: Path, fake_es: dict[str, str]
) -> None:
    state = reachable_tmp / "state"
    folder = state / "elasticsearch"
    (folder / "data").mkdir(parents=True)
    victim = reachable_tmp / "victim"
    victim.write_text("root's own file")
    (folder / "data" / "planted").symlink_to(victim)
    up = run_services(reachable_tmp, "up", "elasticsearch", **fake_es)
    try:
        assert up.returncode == 0, up.stderr
        assert owner(victim) == "root", "chown followed a link planted in the data folder"
        for path in (folder, folder / "launcher.pid", folder / "console.out"):
            assert owner(path) == "root", path
            assert not path.lstat().st_mode & 0o022, f"{path} is writable by others"
        for sub in ("config", "data", "logs"):
            assert owner(folder / sub) == SERVICE_USER
    finally:
        down = run_services(reachable_tmp, "down", "elasticsearch", **fake_es)
    assert "elasticsearch stopped" in down.stdout, down.stdout + down.stderr


def _impostors() -> list[object]:
    cases = [
        pytest.param("kafka", "kafka.pid", None, ["sleep", "600"], id="kafka-another-program"),
        pytest.param(
            "elasticsearch", "launcher.pid", None, ["sleep", "600"], id="elasticsearch-root-program"
        ),
    ]
    if os.geteuid() == 0:
        # Kafka's own command line, but not run by us: the uid gives it away.
        kafka_like = ["sh", "-c", "sleep 600; :", "kafka.Kafka", "{folder}/server.properties"]
        cases.append(pytest.param("kafka", "kafka.pid", "nobody", kafka_like, id="kafka-other-uid"))
    return cases


@pytest.mark.parametrize(("service", "pid_name", "user", "command"), _impostors())
def test_a_pid_file_naming_another_process_never_gets_it_signalled(
    tmp_path: Path, service: str, pid_name: str, user: str | None, command: list[str]
) -> None:
    folder = tmp_path / "state" / service
    folder.mkdir(parents=True)
    argv = [arg.format(folder=folder) for arg in command]
    bystander = subprocess.Popen(argv, user=user, cwd="/", start_new_session=True)
    try:
        (folder / pid_name).write_text(str(bystander.pid))
        result = run_services(tmp_path, "down", service)
        assert bystander.poll() is None, f"{service} down signalled pid {bystander.pid}"
        assert result.returncode == 0, result.stderr
        assert f"names pid {bystander.pid}, which is not this {service}" in result.stdout
        assert f"{service} not running" in result.stdout
    finally:
        os.killpg(bystander.pid, signal.SIGKILL)
        bystander.wait()


@as_root
def test_a_clone_in_a_private_folder_runs_elasticsearch_with_no_setting(
    tmp_path: Path, fake_es: dict[str, str]
) -> None:
    private_home = tmp_path / "root-home"
    private_home.mkdir(mode=0o700)
    clone = private_home / "partner-audit-log"
    script = clone_services(clone)
    # The distribution as unpacked under umask 077: only root may enter its folders.
    for path in (Path(fake_es["AUDIT_CACHE_DIR"]) / f"elasticsearch-{FAKE_ES_VERSION}").rglob("*"):
        path.chmod(0o700)
    expected_state = Path("/var/lib/partner-audit-log") / (
        "partner-audit-log-" + hashlib.sha256(str(clone.resolve()).encode()).hexdigest()[:12]
    )
    up = run_services(tmp_path, "up", "elasticsearch", script=script, AUDIT_STATE_DIR="", **fake_es)
    try:
        assert up.returncode == 0, up.stderr
        status = run_services(tmp_path, "status", script=script, AUDIT_STATE_DIR="", **fake_es)
        assert "elasticsearch: running at" in status.stdout
        assert f"state folder: {expected_state}\n" in status.stdout
        assert (expected_state / "elasticsearch" / "launcher.pid").exists()
    finally:
        clean = run_services(tmp_path, "clean", script=script, AUDIT_STATE_DIR="", **fake_es)
        shutil.rmtree(expected_state, ignore_errors=True)
    assert "elasticsearch stopped" in clean.stdout, clean.stdout + clean.stderr


def test_services_left_in_the_old_checkout_folder_are_found_and_stopped(tmp_path: Path) -> None:
    """An upgrade moves the state folder: a Kafka still running from `.local/` is reused
    (`status` says so) and `down` stops it, so nothing is orphaned or started twice."""
    clone = tmp_path / "clone"
    script = clone_services(clone)
    legacy = clone.resolve() / ".local" / "kafka"
    legacy.mkdir(parents=True)
    kafka_like = ["sh", "-c", "sleep 600; :", "kafka.Kafka", f"{legacy}/server.properties"]
    old_kafka = subprocess.Popen(kafka_like, cwd="/", start_new_session=True)
    try:
        (legacy / "kafka.pid").write_text(str(old_kafka.pid))
        env = {"AUDIT_STATE_DIR": "", "XDG_STATE_HOME": str(tmp_path / "xdg")}
        status = run_services(tmp_path, "status", script=script, **env)
        assert f"kafka: running at 127.0.0.1:9092 (pid {old_kafka.pid}" in status.stdout
        assert f"from the old {legacy.parent}: down, then up" in status.stdout
        # Reap it as soon as it ends, as init would: `down` waits for its group to be gone.
        reaper = threading.Thread(target=old_kafka.wait, daemon=True)
        reaper.start()
        down = run_services(tmp_path, "down", "kafka", script=script, **env)
        assert "kafka stopped" in down.stdout, down.stdout + down.stderr
        reaper.join(timeout=10)
        assert old_kafka.returncode == -signal.SIGTERM
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(old_kafka.pid, signal.SIGKILL)
        old_kafka.wait()
