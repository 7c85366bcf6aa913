"""Worker process behaviour: SIGTERM mid-batch, and unreachable dependencies at start-up."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from tests.integration.worker_harness import (
    CuttableProxy,
    Setup,
    Worker,
    WorkerConfig,
    assert_exact,
    committed_offsets,
    indexed_count,
    indexed_ids,
    produce,
    wait_all_committed,
    workers,
)
from tests.processes import free_port, wait_until


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
    run = next(iter(dataset.valid_ids)).rsplit("-", 1)[0]
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        wait_until(lambda: indexed_count(es, config.index_prefix) >= 500, 120, "first batches")
        es_proxy.cut()
        wait_until(
            lambda: worker.metric("audit_worker_es_retries_total") > 0,
            60,
            "the worker to retry a batch against the missing Elasticsearch",
        )
        before = committed_offsets(config.kafka_bootstrap, config.group_id, config.topic, 1)[0]
        stopping = time.monotonic()
        assert worker.stop(timeout_s=60) == 0
        assert time.monotonic() - stopping < 30, "SIGTERM took too long"
        after = committed_offsets(config.kafka_bootstrap, config.group_id, config.topic, 1)[0]
        assert after == before, "the abandoned batch was committed on the way out"
        indexed = set(indexed_ids(es, config.index_prefix))
        assert {f"{run}-{i}" for i in range(after)} <= indexed, "committed past unindexed"
        assert after < 3_000

        es_proxy.restore()
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
