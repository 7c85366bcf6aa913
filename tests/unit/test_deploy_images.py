"""deploy/docker/images.py and compose_check.py, the parts that need no engine: the build
command, the choice of engine and base, readable failures, and the compose override."""

from __future__ import annotations

import importlib.util
import resource
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml

from tests.integration.containers import load_images_module

DOCKER = Path(__file__).resolve().parents[2] / "deploy" / "docker"


def load_compose_check() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_compose_check", DOCKER / "compose_check.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_podman_builds_keep_the_healthcheck_and_the_small_context() -> None:
    images = load_images_module()
    command = images.build_command("/usr/bin/podman", "api", "base:1", "partner-audit-log/api:1")
    assert command[command.index("--format") + 1] == "docker"  # OCI drops HEALTHCHECK
    assert Path(command[command.index("--ignorefile") + 1]) == DOCKER / "Dockerfile.dockerignore"
    assert "PYTHON_IMAGE=base:1" in command
    assert command[command.index("--target") + 1] == "api"
    docker = images.build_command("/usr/bin/docker", "api", "base:1", "partner-audit-log/api:1")
    assert "--format" not in docker and "--ignorefile" not in docker


def test_tags_carry_the_project_version() -> None:
    images = load_images_module()
    version = images.project_version()
    assert version and images.image_name("worker") == f"partner-audit-log/worker:{version}"


def test_the_dockerfile_base_is_a_build_argument_defaulting_to_the_official_image() -> None:
    images = load_images_module()
    text = (DOCKER / "Dockerfile").read_text()
    assert f"ARG PYTHON_IMAGE={images.OFFICIAL_BASE}" in text
    assert text.count("FROM ${PYTHON_IMAGE}") == 2


def test_the_compose_file_runs_the_images_make_images_builds() -> None:
    images = load_images_module()
    compose = yaml.safe_load((DOCKER.parent / "docker-compose.yml").read_text())["services"]
    assert compose["worker"]["image"] == images.image_name("worker")
    assert compose["api"]["image"] == compose["kibana-import"]["image"] == images.image_name("api")


def test_pythonimage_from_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    images = load_images_module()
    monkeypatch.setenv("PYTHON_IMAGE", "mirror.example/python:3.11-slim-bookworm")
    assert images.choose_base("/nonexistent/podman") == "mirror.example/python:3.11-slim-bookworm"


def test_no_engine_is_one_readable_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    images = load_images_module()
    monkeypatch.setenv("AUDIT_ENGINE", "no-such-engine")
    assert images.main(["build"]) == 1
    err = capsys.readouterr().err
    assert err == "images: no container engine answers (no-such-engine: not installed)\n"
    assert images.why_no_engine() == "no container engine answers (no-such-engine: not installed)"


def test_the_compose_override_stays_within_the_hosts_hard_limits() -> None:
    check = load_compose_check()
    chosen = {"kafka": "k:1", "elasticsearch": "e:1"}
    services = check.override(chosen)["services"]
    assert services["kafka"]["image"] == services["kafka-init"]["image"] == "k:1"
    limits = services["elasticsearch"]["ulimits"]
    assert set(limits) == {"nofile", "nproc", "memlock"}  # any left out would be podman's max
    hard_nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    assert limits["nofile"]["hard"] <= hard_nofile
    assert limits["nproc"]["hard"] <= int(Path("/proc/sys/kernel/pid_max").read_text())
