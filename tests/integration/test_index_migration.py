"""Migrations on the real Elasticsearch (issue 13): `audit-log indices migrate` moves indices of
template version 2 into version 3 while the worker writes and a reader lists through the API
(no gap, no double, nothing lost), every log stays byte-for-byte what was signed (`verify`),
and a migration killed half-way finishes when run again."""

from __future__ import annotations

import json
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from confluent_kafka import Producer
from elasticsearch import helpers

from schemas.document import stored_log
from schemas.event import validate_event
from schemas.index_template import INDEX_SORT, TEMPLATE_VERSION, read_alias
from schemas.lifecycle import Month, month_name
from tests.integration.lifecycle_harness import (
    Reader,
    alias_event_ids,
    alias_sources,
    api_client,
    cli,
    cli_process,
    install_legacy_template,
    lifecycle_record,
    list_ids,
)
from tests.integration.test_integrity import covered
from tests.integration.worker_harness import Setup, Worker, assert_verified
from tests.support.events import make_event
from tests.support.processes import wait_until

NOW = datetime.now(UTC)
DAYS = 60  # the logs span three months, each migrated
PARTNERS = ("p-0", "p-1", "p-2")


def event(tag: str, n: int, rng: random.Random) -> dict[str, Any]:
    return make_event(
        event_id=f"{tag}-{n}",
        partner_id=PARTNERS[n % len(PARTNERS)],
        occurred_at=NOW - timedelta(seconds=rng.randrange(DAYS * 86400)),
        description=f"Migrated log {tag} {n}",
    )


def months() -> list[Month]:
    return sorted({Month.of(NOW - timedelta(days=d)) for d in range(DAYS + 1)})


def assert_current_layout(es: Any, prefix: str, expected: list[Month]) -> None:
    """Every month: a concrete index of the current version, sorted, behind the read alias,
    and the month's name an alias writing to it."""
    for month in expected:
        name = month_name(prefix, month)
        target = f"{name}-v{TEMPLATE_VERSION}"
        assert es.indices.get_alias(name=name) == {
            target: {"aliases": {name: {"is_write_index": True}}}
        }
        body = es.indices.get(index=target)[target]
        assert body["mappings"]["_meta"] == {"template_version": TEMPLATE_VERSION}
        assert body["settings"]["index"]["sort"] == INDEX_SORT
        assert read_alias(prefix) in body["aliases"]


class Writer:
    """Publishes events to the worker's topic at a steady rate until stopped."""

    def __init__(self, bootstrap: str, topic: str, per_second: int = 100) -> None:
        self._producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
        self._topic = topic
        self._interval = 1 / per_second
        self._stop = threading.Event()
        self.sent: list[str] = []
        self._thread = threading.Thread(target=self._run, name="lifecycle-writer", daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert self._producer.flush(30) == 0

    def _run(self) -> None:
        rng = random.Random(5)
        n = 0
        while not self._stop.is_set():
            live = event("live", n, rng)
            value = json.dumps(live).encode()
            self._producer.produce(self._topic, key=live["partner_id"], value=value)
            self._producer.poll(0)
            self.sent.append(live["event_id"])
            n += 1
            time.sleep(self._interval)


def test_a_migration_under_writes_and_reads_loses_and_doubles_nothing(
    es: Any, es_url: str, kafka_bootstrap: str, setup: Setup
) -> None:
    config = setup(partitions=2)
    config.extra_env["AUDIT_DIGEST_INTERVAL_SECONDS"] = "0.5"
    prefix = config.index_prefix
    install_legacy_template(es, prefix)
    for month in months():  # as the release before left them: version 2, unsorted
        es.indices.create(index=month_name(prefix, month))
    worker = Worker(config).wait_healthy()
    try:
        rng = random.Random(3)
        before = [event("pre", n, rng) for n in range(4000)]
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        for item in before:
            producer.produce(config.topic, key=item["partner_id"], value=json.dumps(item).encode())
        assert producer.flush(30) == 0
        wait_until(lambda: len(alias_event_ids(es, prefix)) == len(before), 120, "pre-load")

        client = api_client(es_url, prefix)
        window = (NOW - timedelta(days=DAYS + 1), NOW + timedelta(hours=1))
        env = {"ELASTICSEARCH_URL": es_url, "AUDIT_INDEX_PREFIX": prefix}
        with (
            Writer(kafka_bootstrap, config.topic) as writer,
            Reader(lambda: list_ids(client, "p-1", *window)) as reader,
        ):
            started = time.monotonic()
            migrate = cli("indices", "migrate", "--page-size", "200", **env)
            ended = time.monotonic()
            time.sleep(2)  # the worker keeps writing into the migrated months
        assert migrate.returncode == 0, migrate.stderr
        assert reader.error is None, reader.error

        expected = {item["event_id"] for item in before} | set(writer.sent)
        wait_until(lambda: len(alias_event_ids(es, prefix)) >= len(expected), 120, "all")
        stored = alias_event_ids(es, prefix)
        assert len(stored) == len(set(stored)), "a log is stored twice"
        assert set(stored) == expected
        wait_until(lambda: covered(es, config) >= len(expected), 60, "every log signed")
    finally:
        worker.stop()

    assert "verified, alias swapped" in migrate.stderr
    assert_current_layout(es, prefix, months())
    # The reader: every listing without a repeat, and none missing a log an earlier one had.
    during = reader.during(started, ended)
    assert len(during) >= 5, f"only {len(during)} listings ran during the migration"
    previous: set[str] = set()
    for _began, _ended, listing in reader.listings:
        assert len(listing) == len(set(listing)), "a listing showed a log twice"
        assert previous <= set(listing), f"{len(previous - set(listing))} logs vanished"
        previous = set(listing)
    # The copies are what the worker signed: verify finds nothing changed, deleted or added.
    assert_verified(es, es_url, prefix, PARTNERS)


@pytest.fixture
def one_old_month(es: Any, unique_name: Callable[[str], str]) -> Iterator[tuple[str, Month]]:
    """20,000 logs in one month's index of template version 2."""
    prefix = unique_name("mig")
    install_legacy_template(es, prefix)
    month = Month.of(NOW - timedelta(days=40))
    rng = random.Random(9)

    def actions() -> Iterator[dict[str, Any]]:
        for n in range(20_000):
            raw = make_event(
                event_id=f"old-{n}",
                partner_id=PARTNERS[n % 3],
                occurred_at=month.start + timedelta(seconds=rng.randrange(27 * 86400)),
                metadata={"n": n, "ratio": n / 7, "flag": n % 2 == 0},
            )
            index, doc_id, document = stored_log(prefix, validate_event(raw, now=NOW), NOW)
            yield {"_op_type": "create", "_index": index, "_id": doc_id, "_source": document}

    helpers.bulk(es, actions(), chunk_size=2000)
    yield prefix, month


@pytest.mark.parametrize("frozen", [False, True], ids=["killed-while-copying", "killed-frozen"])
def test_a_killed_migration_finishes_when_run_again(
    es: Any, es_url: str, one_old_month: tuple[str, Month], frozen: bool
) -> None:
    prefix, month = one_old_month
    source, target = month_name(prefix, month), f"{month_name(prefix, month)}-v{TEMPLATE_VERSION}"
    before = dict(alias_sources(es, prefix))
    assert len(before) == 20_000
    env = {"ELASTICSEARCH_URL": es_url, "AUDIT_INDEX_PREFIX": prefix}

    process = cli_process("indices", "migrate", "--page-size", "100", **env)
    try:

        def copied() -> int:
            record = lifecycle_record(es, prefix, f"migration:{target}")
            return int(record["copied"]) if record else 0

        wait_until(lambda: copied() >= 2_000, 120, "2,000 logs copied")
    finally:
        os.kill(process.pid, signal.SIGKILL)  # no chance to clean up: a crash
        process.communicate(timeout=30)
    # Readers are unaffected: the source alone is behind the alias, the copy outside it.
    assert list(es.indices.get_alias(name=read_alias(prefix))) == [source]
    es.indices.refresh(index=target)
    assert 2_000 <= es.count(index=target)["count"] < 20_000
    assert len(alias_sources(es, prefix)) == 20_000
    if frozen:  # as a run killed after blocking the source's writes leaves it
        es.indices.add_block(index=source, block="write")

    again = cli("indices", "migrate", "--page-size", "1000", **env)
    assert again.returncode == 0, again.stderr
    assert "resuming after" in again.stderr
    after = alias_sources(es, prefix)
    assert len(after) == 20_000, "lost or doubled"
    assert dict(after) == before  # every log, its _source unchanged
    assert_current_layout(es, prefix, [month])
    # The month's name writes into the new index (the block went with the old one).
    late = validate_event(make_event(event_id="late", occurred_at=month.start), now=NOW)
    _, doc_id, document = stored_log(prefix, late, NOW)
    written = es.index(index=source, id=doc_id, document=document, op_type="create")
    assert written["_index"] == target
    # Nothing left to do.
    done = cli("indices", "migrate", **env)
    assert done.returncode == 0 and "every index behind" in done.stderr


def test_an_older_release_does_not_put_back_its_template(
    es: Any, es_url: str, unique_name: Callable[[str], str]
) -> None:
    """Rolling upgrades: a worker (or `migrate`) of an older release leaves a newer
    template alone, so new months keep the newer layout."""
    from consumer.indexer import ensure_template
    from consumer.settings import Settings
    from schemas.index_template import index_template, template_name

    prefix = unique_name("newer")
    newer = index_template(prefix)
    newer["version"] = TEMPLATE_VERSION + 1
    es.indices.put_index_template(name=template_name(prefix), **newer)

    ensure_template(Settings(elasticsearch_url=es_url, index_prefix=prefix))
    installed = es.indices.get_index_template(name=template_name(prefix))["index_templates"]
    assert installed[0]["index_template"]["version"] == TEMPLATE_VERSION + 1

    env = {"ELASTICSEARCH_URL": es_url, "AUDIT_INDEX_PREFIX": prefix}
    refused = cli("indices", "migrate", **env)
    assert refused.returncode == 2
    assert f"newer than this release's {TEMPLATE_VERSION}" in refused.stderr

    es.indices.delete_index_template(name=template_name(prefix))
    ensure_template(Settings(elasticsearch_url=es_url, index_prefix=prefix))
    installed = es.indices.get_index_template(name=template_name(prefix))["index_templates"]
    assert installed[0]["index_template"]["version"] == TEMPLATE_VERSION


def test_a_migration_stopped_between_its_two_swaps_finishes(
    es: Any, es_url: str, one_old_month: tuple[str, Month], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readers already on the new index, the old one blocked and still owning the month's
    name: the next run deletes it and hands the name over, so the worker writes again."""
    from schemas import migration as migration_module
    from schemas.es_rest import RestClient, StoreAddress
    from schemas.lifecycle import plan_migrations
    from schemas.lifecycle_store import Cluster

    prefix, month = one_old_month
    source, target = month_name(prefix, month), f"{month_name(prefix, month)}-v{TEMPLATE_VERSION}"
    before = dict(alias_sources(es, prefix))
    cluster = Cluster(RestClient(StoreAddress(es_url)), prefix)
    cluster.ensure_template()  # as `audit-log indices migrate` does first
    cluster.records.ensure()

    def stop(*_args: Any) -> None:
        raise KeyboardInterrupt  # the run ends right after the readers moved

    monkeypatch.setattr(migration_module, "finish_swap", stop)
    options = migration_module.MigrateOptions(page_size=2000, say=lambda _line: None)
    with pytest.raises(KeyboardInterrupt):
        migration_module.Migrator(cluster, options).run(plan_migrations(prefix, cluster.states()))
    assert list(es.indices.get_alias(name=read_alias(prefix))) == [target]
    assert dict(alias_sources(es, prefix)) == before  # readers: the copy, complete
    # The month's name is still the old index (blocked): the worker's writes wait.
    assert es.indices.exists(index=source) and not es.indices.exists_alias(name=source)

    env = {"ELASTICSEARCH_URL": es_url, "AUDIT_INDEX_PREFIX": prefix}
    again = cli("indices", "migrate", **env)
    assert again.returncode == 0, again.stderr
    assert f"{source}: finishing the swap to {target}" in again.stderr
    assert_current_layout(es, prefix, [month])
    assert dict(alias_sources(es, prefix)) == before
