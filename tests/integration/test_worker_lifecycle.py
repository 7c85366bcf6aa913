"""Worker process behaviour: SIGTERM mid-batch, and unreachable dependencies at start-up."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from deploy.local.processes import free_port
from tests.integration.worker_harness import (
    CuttableProxy,
    Setup,
    Worker,
    WorkerConfig,
    assert_exact,
    produce,
    stop_mid_batch,
    wait_all_committed,
    workers,
)
from tests.support.processes import wait_until


@pytest.fixture
def es_proxy(es_url: str) -> Any:
    proxy = CuttableProxy(es_url)
    yield proxy
    proxy.close()


def test_sigterm_mid_batch_exits_0_and_commits_nothing_unindexed(
    es: Any, setup: Setup, es_proxy: CuttableProxy
) -> None:
    """Elasticsearch goes away during a batch, then SIGTERM: the batch must stay uncommitted."""
    config = dataclasses.replace(setup(partitions=1), es_url=es_proxy.url)
    # One partition, no poison: event i sits at offset i, so offsets map to ids.
    dataset = produce(config.kafka_bootstrap, config.topic, 3_000, poison_every=0)
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        stop_mid_batch(es, config, es_proxy, worker, dataset)
        again = Worker(config).wait_healthy()
        running.append(again)
        wait_all_committed(
            config.kafka_bootstrap, config.group_id, config.topic, 1, 120, again.alive
        )
    assert_exact(es, config.index_prefix, dataset, config.kafka_bootstrap, config.dlq_topic)


def unreachable(config: WorkerConfig, **changes: str) -> WorkerConfig:
    return dataclasses.replace(config, **changes)


@pytest.mark.parametrize(
    ("broken", "expected"),
    [
        ("kafka_bootstrap", "Kafka at 127.0.0.1:{port} not reachable"),
        ("es_url", "Elasticsearch at http://127.0.0.1:{port} not ready"),
    ],
    ids=["kafka", "elasticsearch"],
)
def test_unreachable_dependency_is_one_readable_line_and_no_crash_loop(
    setup: Setup, broken: str, expected: str
) -> None:
    port = free_port()  # nothing listens there
    address = f"127.0.0.1:{port}" if broken == "kafka_bootstrap" else f"http://127.0.0.1:{port}"
    config = dataclasses.replace(setup(partitions=1), **{broken: address})
    line = expected.format(port=port)
    with workers(config) as running:
        worker = Worker(config)
        running.append(worker)
        wait_until(lambda: line in worker.service.log(), 60, f"the log line {line!r}")
        time.sleep(5)  # keep running a while: it must neither exit nor flood the log
        assert worker.alive()
        log = worker.service.log()
        assert "Traceback" not in log
        assert 1 <= log.count(line) <= 5, log[-2000:]
        assert worker.stop() == 0
