"""`make run`: local services (unless pointed elsewhere), the worker and the API, until Ctrl-C.

    python -m deploy.local.run

Runs with the project's virtual environment. A worker or API that dies is restarted with
backoff (`supervisor.py`). Ctrl-C stops exactly what it started: services that were already
running, or endpoints given in the environment, are left alone.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from api.devtoken import mint_token
from api.settings import DEFAULT_API_PORT
from consumer.settings import Settings as WorkerSettings
from deploy.local import services
from deploy.local.processes import BIN, http_ok
from deploy.local.supervisor import GaveUp, Supervisor
from schemas.config import MAX_PORT, ConfigError, Env
from schemas.integrity import load_private_key, private_pem, public_pem

READY_TIMEOUT_S = 90.0
RETENTION = ["indices", "retention", "--every", "24h"]


@dataclass(frozen=True)
class Options:
    """What the environment chooses for this run (read once, in `main`)."""

    api_port: int
    worker_port: int
    dev_partner: str
    partitions: int
    #: Kafka and Elasticsearch named in the environment: used instead of local services
    #: when both are.
    kafka: str | None = None
    elasticsearch_url: str | None = None
    #: The worker's input and dead-letter topics (its defaults), created when missing.
    topics: tuple[str, ...] = (*WorkerSettings.topics, WorkerSettings.dlq_topic)
    jwt_secret: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Options:
        env = Env(environ)
        return cls(
            api_port=env.integer("AUDIT_API_PORT", DEFAULT_API_PORT, 0, MAX_PORT),
            worker_port=env.integer("AUDIT_WORKER_PORT", WorkerSettings.worker_port, 0, MAX_PORT),
            dev_partner=env.text("AUDIT_DEV_PARTNER", "p-001"),
            partitions=env.integer("AUDIT_PARTITIONS", 4, minimum=1),
            kafka=env.optional("KAFKA_BOOTSTRAP_SERVERS"),
            elasticsearch_url=env.optional("ELASTICSEARCH_URL"),
            topics=(
                *env.names("AUDIT_TOPICS", WorkerSettings.topics),
                env.text("AUDIT_DLQ_TOPIC", WorkerSettings.dlq_topic),
            ),
            jwt_secret=env.optional("AUDIT_JWT_SECRET"),
        )


def start_services(options: Options, started: list[str]) -> dict[str, str]:
    """Endpoints for the children; `started` gets the services this run starts, before they
    start, so that a failure half-way still stops them."""
    kafka, es_url = options.kafka, options.elasticsearch_url
    if kafka and es_url:
        print(f"run: using Kafka at {kafka} and Elasticsearch at {es_url}")
        return {"KAFKA_BOOTSTRAP_SERVERS": kafka, "ELASTICSEARCH_URL": es_url}
    started.extend(
        s.name for s in (services.Kafka(), services.Elasticsearch()) if s.running_pid() is None
    )
    services.up()
    return {
        "KAFKA_BOOTSTRAP_SERVERS": services.Kafka().endpoint,
        "ELASTICSEARCH_URL": services.Elasticsearch().endpoint,
    }


def ensure_topics(bootstrap: str, options: Options) -> None:
    """Create the worker's topics when missing: a worker subscribed to a topic that does not
    exist yet would only notice it minutes later, at its next metadata refresh."""
    from confluent_kafka.admin import AdminClient, NewTopic

    partitions, wanted = options.partitions, options.topics
    admin = AdminClient({"bootstrap.servers": bootstrap})
    existing = set(admin.list_topics(timeout=30).topics)
    missing = [name for name in dict.fromkeys(wanted) if name and name not in existing]
    if not missing:
        return
    futures = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in missing]
    )
    for name, future in futures.items():
        future.result(timeout=30)
        print(f"run: created topic {name} ({partitions} partitions)")


def dev_token(secret: str, partner_id: str) -> str:
    """An owner's token for the demo partner, valid for 12 hours."""
    return mint_token(secret, "dev-owner", partner_id, "owner", ttl=12 * 3600, name="Dev Owner")


class StopOnSignal:
    """SIGINT or SIGTERM only sets a flag, checked between steps: an exception raised at any
    point could leave a service or child started but not yet recorded, hence never stopped."""

    def __init__(self) -> None:
        self.requested = False
        signal.signal(signal.SIGINT, self._request)
        signal.signal(signal.SIGTERM, self._request)

    def _request(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True


def wait_ready(supervisor: Supervisor, health: dict[str, str], stop: StopOnSignal) -> bool:
    """Until every child answers its health URL, restarting those that die; False when
    stopped first. `health` maps a child's name to its URL."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    waiting = dict(health)
    while waiting and not stop.requested:
        supervisor.check()
        waiting = {name: url for name, url in waiting.items() if not http_ok(url)}
        if waiting and time.monotonic() > deadline:
            logs = {child.name: child.log_path for child in supervisor.children}
            name, url = next(iter(waiting.items()))
            raise RuntimeError(
                f"{name} did not answer {url} in {READY_TIMEOUT_S:.0f}s; see {logs[name]}"
            )
        time.sleep(0.5)
    return not waiting


def print_banner(token: str, api_port: int) -> None:
    base = f"http://127.0.0.1:{api_port}"
    print(f"\nAPI:    {base}/api/v1/audit-logs   (docs: {base}/docs)")
    print(f"Viewer: {base}/#token={token}")
    print(f"Token:  {token}")
    print(f'Try:    curl -H "Authorization: Bearer {token}" {base}/api/v1/audit-logs')
    print(
        f"Demo:   {BIN / 'audit-log'} demo --rate 50 --count 500 --days 1"
        "   (Ctrl-C here stops everything)\n",
        flush=True,
    )


def dev_signing_key(folder: Path) -> tuple[str, str]:
    """The development key that signs the worker's digests, made once and kept beside the
    services' state (so digests of earlier runs still verify): (private PEM, public PEM)."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    path = folder / "signing-key.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(private_pem(Ed25519PrivateKey.generate()))
    key = load_private_key(str(path))
    return private_pem(key), public_pem(key.public_key())


def serve(options: Options, supervisor: Supervisor, started: list[str], stop: StopOnSignal) -> None:
    """Services, topics, then the worker and the API, supervised until `stop`."""
    endpoints = start_services(options, started)
    if stop.requested:
        return
    log_dir = services.state_dir() / "run"
    secret = options.jwt_secret or secrets.token_urlsafe(32)
    env = {**os.environ, **endpoints, "AUDIT_JWT_SECRET": secret, "AUDIT_ENV": "development"}
    if not env.get("AUDIT_SIGNING_KEY"):
        env["AUDIT_SIGNING_KEY"], env["AUDIT_SIGNING_PUBLIC_KEY"] = dev_signing_key(log_dir)
    env.setdefault("AUDIT_API_PORT", str(options.api_port))
    env.setdefault("AUDIT_WORKER_PORT", str(options.worker_port))
    ensure_topics(endpoints["KAFKA_BOOTSTRAP_SERVERS"], options)
    if stop.requested:
        return
    supervisor.start("worker", [str(BIN / "audit-worker")], env, log_dir / "worker.log")
    supervisor.start("api", [str(BIN / "audit-api")], env, log_dir / "api.log")
    # Retention now, then once a day (README, "Index lifecycle"); it has no health page.
    supervisor.start(
        "retention", [str(BIN / "audit-log"), *RETENTION], env, log_dir / "retention.log"
    )
    health = {
        "worker": f"http://127.0.0.1:{options.worker_port}/healthz",
        "api": f"http://127.0.0.1:{options.api_port}/healthz",
    }
    if wait_ready(supervisor, health, stop):
        print_banner(dev_token(secret, options.dev_partner), options.api_port)
    while not stop.requested:
        supervisor.check()
        time.sleep(0.2)


def main() -> int:
    try:
        options = Options.from_env(os.environ)
    except ConfigError as error:
        print(f"run: configuration error: {error}", file=sys.stderr)
        return 2
    supervisor = Supervisor()
    started: list[str] = []
    stop = StopOnSignal()
    try:
        serve(options, supervisor, started, stop)
    except (RuntimeError, services.ServiceError, GaveUp) as error:
        print(f"run: {error}", file=sys.stderr)
        return 1
    finally:
        supervisor.stop_all()
        if started:
            services.down(started)
    print("run: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
