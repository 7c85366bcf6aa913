"""Run the project's images in tests: build them once, start containers on the host network.

The engine is podman or docker, whichever answers (deploy/docker/images.py decides). Where
none does, or no base image can be had, the tests that need one are skipped with the reason;
with AUDIT_REQUIRE_DEPLOY_CHECKS=1 (set by .ci/run, which installs podman) they fail instead,
so CI never passes by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

import pytest

from tests.integration.worker_harness import Worker

REPO = Path(__file__).resolve().parents[2]
IMAGE_UID = 10001  # the Dockerfile's `USER 10001:10001`


def load_images_module() -> ModuleType:
    """deploy/docker/images.py is a script: load it by path, once."""
    if "audit_images" in sys.modules:
        return sys.modules["audit_images"]
    path = REPO / "deploy" / "docker" / "images.py"
    spec = importlib.util.spec_from_file_location("audit_images", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def cannot_run(reason: str) -> None:
    """Skip, or fail where the run must exercise containers (CI)."""
    if os.environ.get("AUDIT_REQUIRE_DEPLOY_CHECKS") == "1":
        pytest.fail(f"AUDIT_REQUIRE_DEPLOY_CHECKS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


class Container:
    """One detached container on the host's network, removed by `remove()`.

    Host networking: the containers reach the shared local Kafka and Elasticsearch on
    127.0.0.1 exactly as the processes of the other tests do, and the test reaches them."""

    def __init__(self, engine: str, image: str, env: Mapping[str, str]) -> None:
        self.engine = engine
        self.name = f"audit-test-{uuid.uuid4().hex[:10]}"
        # `--env NAME` takes the value from the engine's own environment: secrets stay off
        # every command line, and multi-line values (PEM keys) need no quoting.
        names = [arg for name in env for arg in ("--env", name)]
        self._cli(
            *("run", "--detach", "--name", self.name, "--network", "host", *names),
            *("--label", "partner-audit-log.test=e2e", image),
            env={**os.environ, **env},
        )

    def _cli(
        self, *args: str, check: bool = True, env: Mapping[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [self.engine, *args], capture_output=True, text=True, timeout=120, check=False, env=env
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{self.engine} {args[0]} failed: {result.stderr.strip()}")
        return result

    def inspect(self, template: str) -> str:
        return self._cli("inspect", "--format", template, self.name).stdout.strip()

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def healthy(self) -> bool:
        """The image's own HEALTHCHECK command answers: run now by podman, or the status
        docker keeps (docker has no `healthcheck run`)."""
        if not self.running():
            raise AssertionError(f"{self.name} exited; its log:\n{self.logs()[-3000:]}")
        if Path(self.engine).name == "podman":
            return self._cli("healthcheck", "run", self.name, check=False).returncode == 0
        return self.inspect("{{.State.Health.Status}}") == "healthy"

    def main_pid(self) -> int:
        return int(self.inspect("{{.State.Pid}}"))

    def process_uids(self) -> set[int]:
        """Real, effective, saved and filesystem uids of the main process, seen by the host."""
        status = Path(f"/proc/{self.main_pid()}/status").read_text()
        line = next(line for line in status.splitlines() if line.startswith("Uid:"))
        return {int(uid) for uid in line.split()[1:]}

    def exec(self, *command: str) -> str:
        return self._cli("exec", self.name, *command).stdout

    def logs(self) -> str:
        result = self._cli("logs", self.name, check=False)
        return result.stdout + result.stderr

    def stop(self, timeout_s: float = 60) -> int:
        """`stop`: SIGTERM (the image's stop signal), SIGKILL after `timeout_s`; exit code."""
        self._cli("stop", "--time", str(round(timeout_s)), self.name)
        return int(self.inspect("{{.State.ExitCode}}"))

    def remove(self) -> None:
        self._cli("rm", "--force", self.name, check=False)


class WorkerContainer(Container):
    """The worker image, with the metrics reader of the process harness (same /metrics)."""

    metric = Worker.metric

    def __init__(self, engine: str, image: str, env: Mapping[str, str], port: int) -> None:
        self.port = port
        # Host network: bind loopback, not the image's 0.0.0.0, so nothing is exposed.
        env = {**env, "AUDIT_WORKER_PORT": str(port), "AUDIT_WORKER_BIND": "127.0.0.1"}
        super().__init__(engine, image, env)
