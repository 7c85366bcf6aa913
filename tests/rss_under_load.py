"""Peak resident memory of the worker and API images under load: the figures deploy/k8s sizes
its requests and limits from (the comments there quote this script's output).

    .venv/bin/python -m tests.rss_under_load [--events 50000] [--seconds 60] [--clients 16]

Uses the local Kafka and Elasticsearch (started or reused) and the images of `make images`, with
unique topics and index prefix, removed at the end. The worker ingests `--events` events (1 %
poison) on 4 partitions at default batch settings; then the API (gunicorn, 2 workers x 8
threads, as configured in deploy/k8s/config.env) serves `--clients` concurrent clients for
`--seconds`: partial-text searches of 100 logs and CSV exports of a partner's logs. RSS is the
whole container's process tree (gunicorn's arbiter and workers), sampled every 0.2 s.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient, NewTopic
from elasticsearch import Elasticsearch

from deploy.local import services
from deploy.local.processes import free_port, tree_rss_mib
from tests.integration.containers import Container, WorkerContainer, load_images_module
from tests.integration.test_container_images import api_env, production_token, wait_healthy
from tests.integration.worker_harness import WorkerConfig, produce, wait_all_committed


class PeakRss:
    """Samples a container's process-tree RSS in a thread; `peak` in MiB."""

    def __init__(self, container: Container) -> None:
        self.pid, self.peak, self._stop = container.main_pid(), 0.0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            self.peak = max(self.peak, tree_rss_mib(self.pid) or 0.0)

    def stop(self) -> float:
        self._stop.set()
        return round(self.peak, 1)


@contextmanager
def topics(bootstrap: str, names: list[str]) -> Iterator[None]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics([NewTopic(name, 4, 1) for name in names])
    for future in futures.values():
        future.result(timeout=30)
    try:
        yield
    finally:
        for future in admin.delete_topics(names).values():
            future.exception(timeout=30)


def load_api(base: str, token: str, seconds: float, clients: int) -> int:
    """Searches and exports from `clients` threads until the time is up; requests served."""
    deadline = time.monotonic() + seconds
    urls: list[Callable[[], str]] = [
        lambda: f"{base}/api/v1/audit-logs?limit=100&q=" + "".join(random.sample("aeiost", 3)),
        lambda: f"{base}/api/v1/audit-logs/export?format=csv",
    ]

    def client(n: int) -> int:
        served = 0
        while time.monotonic() < deadline:
            request = urllib.request.Request(
                urls[n % 2](), headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=120) as reply:
                while reply.read(1 << 16):
                    pass
            served += 1
        return served

    with ThreadPoolExecutor(clients) as pool:
        return sum(pool.map(client, range(clients)))


def measure(events: int, seconds: float, clients: int) -> dict[str, Any]:
    services.up()
    bootstrap, es_url = services.Kafka().endpoint, services.Elasticsearch().endpoint
    images = load_images_module()
    engine = images.find_engine()
    tags = images.build(engine, images.choose_base(engine), quiet=True)
    run = "rss-" + "".join(random.choices(string.ascii_lowercase, k=8))
    topic, prefix = f"t-{run}", f"t-{run}-audit"
    config = WorkerConfig(
        bootstrap, es_url, topic, f"{topic}.dlq", f"t-{run}", prefix, Path("/tmp")
    )
    es = Elasticsearch(es_url, request_timeout=60)
    started: list[Container] = []
    try:
        with topics(bootstrap, [topic, config.dlq_topic]):
            produce(bootstrap, topic, events, poison_every=100)
            worker = WorkerContainer(engine, tags["worker"], config.env(0), free_port())
            started.append(worker)
            wait_healthy(worker)
            sampler, began = PeakRss(worker), time.monotonic()
            wait_all_committed(bootstrap, config.group_id, topic, 4, 900, worker.running)
            ingest_s, worker_peak = time.monotonic() - began, sampler.stop()

            port = free_port()
            env = api_env(config, port)
            api = Container(engine, tags["api"], env)
            started.append(api)
            wait_healthy(api)
            idle = tree_rss_mib(api.main_pid())
            sampler = PeakRss(api)
            token = production_token(env["AUDIT_JWT_SECRET"], "p-1")
            served = load_api(f"http://127.0.0.1:{port}", token, seconds, clients)
            api_peak = sampler.stop()
    finally:
        for each in started:
            each.remove()
        es.options(ignore_status=404).indices.delete(index=f"{prefix}*")
        es.close()
    return {
        "events": events,
        "worker_ingest_s": round(ingest_s, 1),
        "worker_events_per_s": round(events / ingest_s),
        "worker_peak_rss_mib": worker_peak,
        "api_idle_rss_mib": round(idle or 0.0, 1),
        "api_peak_rss_mib": api_peak,
        "api_requests": served,
        "api_clients": clients,
        "api_seconds": seconds,
        "id": uuid.uuid4().hex[:8],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=16)
    args = parser.parse_args()
    print(json.dumps(measure(args.events, args.seconds, args.clients)))


if __name__ == "__main__":
    main()
