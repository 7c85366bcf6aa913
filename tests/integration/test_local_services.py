"""The local service manager fails with one readable line, never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import free_port

SERVICES = Path(__file__).resolve().parents[2] / "deploy" / "local" / "services.py"


def run_services(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {
        "PATH": os.environ.get("PATH", ""),
        "AUDIT_STATE_DIR": str(tmp_path / "state"),
        "AUDIT_CACHE_DIR": os.environ.get("AUDIT_CACHE_DIR", ""),
    }
    full_env = {key: value for key, value in {**base, **env}.items() if value}
    return subprocess.run(
        [sys.executable, str(SERVICES), *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=300,
        check=False,
    )


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
