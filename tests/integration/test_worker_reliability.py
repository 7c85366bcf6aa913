"""QUALITY.md R1-R6 against the real Kafka and Elasticsearch, with the worker as a process.

`make test` runs them small (a few thousand events); `make test-reliability` sets
AUDIT_RELIABILITY_SCALE=full (100,000 events). R2 and R3 stop and restart services, so they
only run against the project's own local services, never against someone else's cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from deploy.local import services
from tests.conftest import Endpoints
from tests.integration.worker_harness import (
    FULL,
    PARTITIONS,
    Dataset,
    Setup,
    Worker,
    WorkerConfig,
    assert_exact,
    assert_verified,
    committed_offsets,
    dead_letters,
    group_assignment,
    indexed_count,
    produce,
    record_figures,
    scaled,
    wait_all_committed,
    workers,
)
from tests.support.processes import wait_until

pytestmark = pytest.mark.slow  # make test-reliability selects these at full size

DONE_TIMEOUT_S = 900 if FULL else 300


@pytest.fixture
def managed_services(endpoints: Endpoints) -> Any:
    """The local service manager, when (and only when) it runs the services under test."""
    local = (services.Kafka().endpoint, services.Elasticsearch().endpoint)
    if (endpoints.kafka_bootstrap, endpoints.es_url) != local:
        pytest.skip(
            "stops and restarts Kafka/Elasticsearch: only run against the project's "
            "local services, not KAFKA_BOOTSTRAP_SERVERS/ELASTICSEARCH_URL elsewhere"
        )
    if services.Kafka().running_pid() is None or services.Elasticsearch().running_pid() is None:
        pytest.skip("the local services are not managed by deploy/local/services.py here")
    return services


def wait_indexed(
    es: Any, config: WorkerConfig, at_least: int, timeout_s: float, alive: Callable[[], bool]
) -> int:
    def progressed() -> int:
        assert alive(), "the worker stopped"
        count = indexed_count(es, config.index_prefix)
        return count if count >= at_least else 0

    return wait_until(progressed, timeout_s, f"{at_least} documents indexed", interval_s=0.3)


def finish(es: Any, config: WorkerConfig, dataset: Dataset, alive: Callable[[], bool]) -> None:
    wait_all_committed(
        config.kafka_bootstrap, config.group_id, config.topic, PARTITIONS, DONE_TIMEOUT_S, alive
    )
    assert_exact(es, config.index_prefix, dataset, config.kafka_bootstrap, config.dlq_topic)
    # Committed means digested: every log verifies against its partner's signed chain
    # (R9: an untouched run verifies after kills, replays, outages and takeovers).
    assert_verified(es, config.es_url, config.index_prefix, dataset.partners)


def test_r4_poison_is_dead_lettered_and_valid_events_indexed(es: Any, setup: Setup) -> None:
    config = setup()
    dataset = produce(config.kafka_bootstrap, config.topic, scaled(5_000))
    started = time.monotonic()
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        finish(es, config, dataset, worker.alive)
        elapsed = time.monotonic() - started
        dead = worker.metric("audit_worker_dead_lettered_total")
        assert worker.metric("audit_worker_indexed_total") == len(dataset.valid_ids)
        assert dead == len(dataset.poison)
        assert worker.stop() == 0  # SIGTERM: a clean exit
    reasons = sorted({reason for reason in dataset.poison.values()})
    assert reasons == ["invalid_fields", "not_json", "not_utf8", "too_large"]
    record_figures(
        "R4",
        events=dataset.total,
        valid=len(dataset.valid_ids),
        poison=len(dataset.poison),
        seconds=round(elapsed, 1),
        events_per_s=round(dataset.total / elapsed),
    )


def test_r1_kill_9_three_times_loses_and_doubles_nothing(es: Any, setup: Setup) -> None:
    config = setup()
    dataset = produce(config.kafka_bootstrap, config.topic, scaled(10_000))
    valid = len(dataset.valid_ids)
    started = time.monotonic()
    kills: list[int] = []
    with workers(config) as running:
        for fraction in (0.2, 0.45, 0.7):
            worker = Worker(config).wait_healthy()
            running.append(worker)
            kills.append(
                wait_indexed(es, config, int(valid * fraction), DONE_TIMEOUT_S, worker.alive)
            )
            worker.kill()
        worker = Worker(config).wait_healthy()
        running.append(worker)
        finish(es, config, dataset, worker.alive)
        elapsed = time.monotonic() - started
    record_figures(
        "R1",
        events=dataset.total,
        valid=valid,
        kills=3,
        indexed_at_kills=kills,
        seconds=round(elapsed, 1),
        final_count=indexed_count(es, config.index_prefix),
        events_per_s=round(dataset.total / elapsed),
    )


def test_r5_replay_from_offset_zero_changes_nothing(es: Any, setup: Setup) -> None:
    config = setup()
    dataset = produce(config.kafka_bootstrap, config.topic, scaled(2_000))
    with workers(config) as running:
        first = Worker(config).wait_healthy()
        running.append(first)
        finish(es, config, dataset, first.alive)
        assert first.stop() == 0
        rewind_to_zero(config)
        started = time.monotonic()
        replay = Worker(config).wait_healthy()
        running.append(replay)
        finish(es, config, dataset, replay.alive)
        elapsed = time.monotonic() - started
        # Every valid event came again and was recognised as already indexed.
        assert replay.metric("audit_worker_already_indexed_total") == len(dataset.valid_ids)
        assert replay.metric("audit_worker_indexed_total") == 0
    assert indexed_count(es, config.index_prefix) == len(dataset.valid_ids)
    record_figures(
        "R5",
        events=dataset.total,
        replay_seconds=round(elapsed, 1),
        final_count=len(dataset.valid_ids),
    )


def rewind_to_zero(config: WorkerConfig) -> None:
    admin = AdminClient({"bootstrap.servers": config.kafka_bootstrap})
    offsets = [TopicPartition(config.topic, p, 0) for p in range(PARTITIONS)]
    futures = admin.alter_consumer_group_offsets(
        [ConsumerGroupTopicPartitions(config.group_id, offsets)]
    )
    for future in futures.values():
        future.result(timeout=30)
    committed = committed_offsets(config.kafka_bootstrap, config.group_id, config.topic, PARTITIONS)
    assert committed == dict.fromkeys(range(PARTITIONS), 0)


def test_r6_two_workers_share_partitions_and_one_takes_over(es: Any, setup: Setup) -> None:
    config = setup()
    dataset = produce(config.kafka_bootstrap, config.topic, scaled(10_000))
    started = time.monotonic()
    with workers(config) as running:
        first, second = Worker(config), Worker(config)
        running.extend([first, second])
        first.wait_healthy()
        second.wait_healthy()

        def split(members: int) -> bool:
            assert second.alive()
            assignment = group_assignment(config.kafka_bootstrap, config.group_id, config.topic)
            every = set().union(*assignment) if assignment else set()
            return (
                len(assignment) == members and all(assignment) and every == set(range(PARTITIONS))
            )

        wait_until(lambda: split(2), 120, "the group to split the partitions between two")
        # More events once the partitions are split: at make test's size the worker that
        # joined first can consume the whole first production alone before the second joins
        # (seen in CI), and then the second would never have anything to consume.
        dataset.add(produce(config.kafka_bootstrap, config.topic, scaled(2_000, 10_000), seed=8))
        wait_until(
            lambda: (
                first.metric("audit_worker_consumed_total") > 0
                and second.metric("audit_worker_consumed_total") > 0
            ),
            60,
            "both workers to consume",
        )
        killed_at = indexed_count(es, config.index_prefix)
        first.kill()
        wait_until(lambda: split(1), 60, "the survivor to take every partition over")
        finish(es, config, dataset, second.alive)
        elapsed = time.monotonic() - started
    assert killed_at < len(dataset.valid_ids), "the kill came too late to prove a take-over"
    record_figures("R6", events=dataset.total, indexed_at_kill=killed_at, seconds=round(elapsed, 1))


def test_r2_elasticsearch_down_30s_backs_off_commits_nothing_resumes(
    es: Any, setup: Setup, managed_services: Any
) -> None:
    config = setup()
    dataset = produce(config.kafka_bootstrap, config.topic, scaled(3_000, 50_000))
    started = time.monotonic()
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        wait_indexed(es, config, len(dataset.valid_ids) // 2, DONE_TIMEOUT_S, worker.alive)
        retries = worker.metric("audit_worker_es_retries_total")
        down_at = time.monotonic()
        managed_services.down(["elasticsearch"])
        # More traffic during the outage, so the worker has work however fast it was.
        dataset.add(produce(config.kafka_bootstrap, config.topic, scaled(2_000, 50_000), seed=8))
        try:
            wait_until(
                lambda: worker.metric("audit_worker_es_retries_total") > retries,
                30,
                "the worker to back off from the stopped Elasticsearch",
            )
            during = committed_offsets(
                config.kafka_bootstrap, config.group_id, config.topic, PARTITIONS
            )
            # The outage lasts 30 s: a fixed duration the test imposes, not a wait.
            time.sleep(max(0.0, 30 - (time.monotonic() - down_at)))
            after = committed_offsets(
                config.kafka_bootstrap, config.group_id, config.topic, PARTITIONS
            )
            assert worker.alive()
            assert after == during, "an offset was committed while Elasticsearch was down"
        finally:
            managed_services.up(["elasticsearch"])
        finish(es, config, dataset, worker.alive)
        elapsed = time.monotonic() - started
    record_figures("R2", events=dataset.total, outage_s=30, seconds=round(elapsed, 1))


def test_r3_kafka_restart_mid_ingest_loses_and_doubles_nothing(
    es: Any, setup: Setup, managed_services: Any
) -> None:
    config = setup()
    dataset = produce(config.kafka_bootstrap, config.topic, scaled(3_000, 50_000))
    started = time.monotonic()
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        wait_indexed(es, config, len(dataset.valid_ids) // 2, DONE_TIMEOUT_S, worker.alive)
        managed_services.down(["kafka"])
        managed_services.up(["kafka"])
        # Traffic after the restart as well: the worker must consume it without a restart.
        dataset.add(produce(config.kafka_bootstrap, config.topic, scaled(2_000, 50_000), seed=8))
        finish(es, config, dataset, worker.alive)
        elapsed = time.monotonic() - started
    record_figures("R3", events=dataset.total, seconds=round(elapsed, 1))


def test_dead_letters_keep_the_original_bytes(es: Any, setup: Setup) -> None:
    config = setup(partitions=1)
    dataset = produce(config.kafka_bootstrap, config.topic, 600, poison_every=100)
    with workers(config) as running:
        worker = Worker(config).wait_healthy()
        running.append(worker)
        wait_all_committed(
            config.kafka_bootstrap, config.group_id, config.topic, 1, 120, worker.alive
        )
    letters = dead_letters(config.kafka_bootstrap, config.dlq_topic)
    assert {(d.original_partition, d.original_offset) for d in letters} == set(dataset.poison)
    binary = [d for d in letters if d.reason == "not_utf8"]
    assert binary and all(d.value and d.value.startswith(b"\xff\xfe\x00\x81") for d in binary)
