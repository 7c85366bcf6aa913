"""Run the project's console scripts as real processes in tests, and wait on conditions."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

BIN = Path(sys.executable).parent
TEST_JWT_SECRET = "process-test-secret-0123456789abcdef0123"


def _test_signing_key() -> tuple[str, str]:
    """A fixed Ed25519 key for the workers tests start (private PEM, public PEM)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from schemas.integrity import private_pem, public_pem

    key = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
    return private_pem(key), public_pem(key.public_key())


TEST_SIGNING_KEY, TEST_SIGNING_PUBLIC_KEY = _test_signing_key()
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(
    probe: Callable[[], T | None], timeout_s: float, what: str, interval_s: float = 0.2
) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return bool(reply.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def http_get(url: str, token: str) -> tuple[int, bytes]:
    """GET with a bearer token; (status, body) for errors too."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, reply.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Service:
    """A console script started in its own process group, its output kept in a log file."""

    def __init__(self, script: str, env: Mapping[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [str(BIN / script)],
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def alive(self) -> bool:
        return self.process.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def signal(self, signum: int) -> None:
        if self.alive():
            os.killpg(self.process.pid, signum)

    def stop(self, timeout_s: float = 30) -> int:
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()
        self._log.close()
        return self.process.returncode

    def wait_http(self, url: str, timeout_s: float = 60) -> None:
        def ready() -> bool:
            if not self.alive():
                raise AssertionError(f"process exited early; log:\n{self.log()[-3000:]}")
            return http_ok(url)

        wait_until(ready, timeout_s, url)


@contextmanager
def running(script: str, env: Mapping[str, str], log_path: Path) -> Iterator[Service]:
    service = Service(script, env, log_path)
    try:
        yield service
    finally:
        service.stop()
