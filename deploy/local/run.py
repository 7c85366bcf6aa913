"""`make run`: local services (unless pointed elsewhere), the worker and the API, until Ctrl-C.

Runs with the project's virtual environment. Stops exactly what it started: services that
were already running, or endpoints given in the environment, are left alone.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType, ModuleType

import jwt

REPO_ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
API_PORT = int(os.environ.get("AUDIT_API_PORT", "8080"))
WORKER_PORT = int(os.environ.get("AUDIT_WORKER_PORT", "9108"))
DEV_PARTNER = os.environ.get("AUDIT_DEV_PARTNER", "p-001")
READY_TIMEOUT_S = 90.0
TOPIC_PARTITIONS = int(os.environ.get("AUDIT_PARTITIONS", "4"))


def _services_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "audit_local_services", Path(__file__).parent / "services.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def start_services(services: ModuleType) -> tuple[dict[str, str], list[str]]:
    """Endpoints for the children, and the names of the services this run started."""
    kafka, es_url = os.environ.get("KAFKA_BOOTSTRAP_SERVERS"), os.environ.get("ELASTICSEARCH_URL")
    if kafka and es_url:
        print(f"run: using Kafka at {kafka} and Elasticsearch at {es_url}")
        return {"KAFKA_BOOTSTRAP_SERVERS": kafka, "ELASTICSEARCH_URL": es_url}, []
    started = [
        s.name for s in (services.Kafka(), services.Elasticsearch()) if s.running_pid() is None
    ]
    services.up()
    endpoints = {
        "KAFKA_BOOTSTRAP_SERVERS": services.Kafka().endpoint,
        "ELASTICSEARCH_URL": services.Elasticsearch().endpoint,
    }
    return endpoints, started


def ensure_topics(bootstrap: str) -> None:
    """Create the worker's topics when missing: a worker subscribed to a topic that does not
    exist yet would only notice it minutes later, at its next metadata refresh."""
    from confluent_kafka.admin import AdminClient, NewTopic

    wanted = [t.strip() for t in os.environ.get("AUDIT_TOPICS", "audit.events").split(",")]
    wanted.append(os.environ.get("AUDIT_DLQ_TOPIC", "audit.events.dlq"))
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=30).topics)
    missing = [name for name in dict.fromkeys(wanted) if name and name not in existing]
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=TOPIC_PARTITIONS, replication_factor=1) for name in missing]
    )
    for name, future in futures.items():
        future.result(timeout=30)
        print(f"run: created topic {name} ({TOPIC_PARTITIONS} partitions)")


def dev_token(secret: str) -> str:
    """An owner's token for the demo partner, valid for 12 hours."""
    now = int(time.time())
    claims = {
        "sub": "dev-owner",
        "name": "Dev Owner",
        "partner_id": DEV_PARTNER,
        "role": "owner",
        "org_ids": [],
        "iat": now,
        "exp": now + 12 * 3600,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def _spawn(
    log_dir: Path, name: str, command: list[str], env: dict[str, str]
) -> subprocess.Popen[bytes]:
    log_dir.mkdir(parents=True, exist_ok=True)
    log = (log_dir / f"{name}.log").open("ab")
    print(f"run: starting {name} (log: {log_dir / f'{name}.log'})")
    return subprocess.Popen(
        command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def _wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    name = log.stem
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}; see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback http
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    raise RuntimeError(f"{name} did not answer {url} in {READY_TIMEOUT_S:.0f}s; see {log}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> int:
    services = _services_module()
    children: list[subprocess.Popen[bytes]] = []
    started: list[str] = []
    stopping = False

    def request_stop(_signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    try:
        endpoints, started = start_services(services)
        log_dir = services.state_dir() / "run"
        secret = os.environ.get("AUDIT_JWT_SECRET") or secrets.token_urlsafe(32)
        env = {**os.environ, **endpoints, "AUDIT_JWT_SECRET": secret, "AUDIT_ENV": "development"}
        env.setdefault("AUDIT_API_PORT", str(API_PORT))
        env.setdefault("AUDIT_WORKER_PORT", str(WORKER_PORT))
        ensure_topics(endpoints["KAFKA_BOOTSTRAP_SERVERS"])
        worker = _spawn(log_dir, "worker", [str(BIN / "audit-worker")], env)
        children.append(worker)
        api = _spawn(log_dir, "api", [str(BIN / "audit-api")], env)
        children.append(api)
        _wait_http(f"http://127.0.0.1:{WORKER_PORT}/healthz", worker, log_dir / "worker.log")
        _wait_http(f"http://127.0.0.1:{API_PORT}/healthz", api, log_dir / "api.log")
        token = dev_token(secret)
        base = f"http://127.0.0.1:{API_PORT}"
        print(f"\nAPI:    {base}/api/v1/audit-logs   (docs: {base}/docs)")
        print(f"Viewer: {base}/#token={token}")
        print(f"Token:  {token}")
        print(f'Try:    curl -H "Authorization: Bearer {token}" {base}/api/v1/audit-logs')
        print(
            f"Demo:   {BIN / 'audit-log'} demo --rate 50 --count 500 --days 1"
            "   (Ctrl-C here stops everything)\n"
        )
        while not stopping:
            for child in children:
                if child.poll() is not None:
                    raise RuntimeError(
                        f"a process exited with code {child.returncode}; see {log_dir}"
                    )
            time.sleep(0.5)
    except (RuntimeError, services.ServiceError) as error:
        print(f"run: {error}", file=sys.stderr)
        return 1
    finally:
        for child in reversed(children):
            _stop(child)
        if started:
            services.down(started)
    print("run: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
