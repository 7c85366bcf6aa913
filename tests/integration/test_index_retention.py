"""Retention on the real Elasticsearch and Kafka (issue 13): `audit-log indices retention`
deletes exactly the expired months, never one holding a log inside the window, keeps the logs
of partners under legal hold (readers never see them missing or twice), records each deletion
as an `audit_log.expire` event the owner finds, and `verify` calls such logs expired."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Producer

from schemas.catalogue import EXPIRE_ACTION
from schemas.document import stored_log
from schemas.event import validate_event
from schemas.index_template import read_alias
from schemas.lifecycle import KIND_HOLD, Month, month_name, parse_index_name
from tests.integration.lifecycle_harness import (
    Reader,
    alias_event_ids,
    api_client,
    cli,
    cli_process,
    list_ids,
    owner,
    read_topic,
)
from tests.integration.test_integrity import covered
from tests.integration.worker_harness import Setup, Worker, indexed_count
from tests.support.events import index_events, install_template, make_event
from tests.support.processes import wait_until
from tests.support.tokens import TEST_SIGNING_PUBLIC_KEY

NOW = datetime.now(UTC)
#: Wholly past the default retention of 400 days, two different months.
EXPIRED = Month.of(NOW - timedelta(days=500))
OTHER_EXPIRED = Month.of(NOW - timedelta(days=455))


def events(partner: str, month: Month, count: int, tag: str = "") -> list[dict[str, Any]]:
    return [
        make_event(
            event_id=f"{tag or month.label}-{partner}-{n}",
            partner_id=partner,
            occurred_at=month.start + timedelta(hours=n + 1),
        )
        for n in range(count)
    ]


def recent(partner: str, count: int) -> list[dict[str, Any]]:
    return [
        make_event(
            event_id=f"new-{partner}-{n}",
            partner_id=partner,
            occurred_at=NOW - timedelta(hours=n + 1),
        )
        for n in range(count)
    ]


def ids(batch: list[dict[str, Any]]) -> list[str]:
    return [event["event_id"] for event in batch]


def env_for(es_url: str, kafka: str, prefix: str) -> dict[str, str]:
    return {
        "ELASTICSEARCH_URL": es_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka,
        "AUDIT_INDEX_PREFIX": prefix,
    }


def test_retention_deletes_exactly_the_expired_month(
    es: Any,
    es_url: str,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
) -> None:
    prefix = unique_name("ret")
    install_template(es, prefix)
    old = events("p-a", EXPIRED, 5) + events("p-b", EXPIRED, 3)
    kept_old = events("p-a", OTHER_EXPIRED, 4)
    new = recent("p-a", 3)
    index_events(es, prefix, old + kept_old + new)
    # A log inside the window stored in an expired month's index (by hand, or a bug): the
    # name says the month expired, the query says otherwise, and the query wins.
    inside = validate_event(
        make_event(event_id="inside", partner_id="p-b", occurred_at=NOW - timedelta(days=2)),
        now=NOW,
    )
    _, doc_id, document = stored_log(prefix, inside, NOW)
    kept_index = month_name(prefix, OTHER_EXPIRED)
    es.index(index=kept_index, id=doc_id, document=document, op_type="create", refresh=True)
    topic = create_topic(unique_name("events"))
    env = env_for(es_url, kafka_bootstrap, prefix)

    dry = cli("indices", "retention", "--dry-run", **env)
    assert dry.returncode == 0, dry.stderr
    assert (
        f"would delete {month_name(prefix, EXPIRED)} ({EXPIRED}): 8 log(s) of 2 partner(s)"
        in dry.stderr
    )
    assert f"kept {kept_index}: 1 log(s) inside the retention window" in dry.stderr
    assert sorted(alias_event_ids(es, prefix)) == sorted([*ids(old + kept_old + new), "inside"])

    run = cli("indices", "retention", "--topic", topic, **env)
    assert run.returncode == 0, run.stderr
    assert f"deleted {month_name(prefix, EXPIRED)} ({EXPIRED}): 8 log(s)" in run.stderr
    assert not es.indices.exists(index=month_name(prefix, EXPIRED))
    assert sorted(alias_event_ids(es, prefix)) == sorted([*ids(kept_old + new), "inside"])
    recorded = read_topic(kafka_bootstrap, topic)
    assert {(e["partner_id"], e["metadata"]["logs_deleted"]) for e in recorded} == {
        ("p-a", 5),
        ("p-b", 3),
    }
    assert {(e["action"], e["object"]["id"]) for e in recorded} == {
        (EXPIRE_ACTION, month_name(prefix, EXPIRED))
    }

    again = cli("indices", "retention", "--topic", topic, **env)
    assert again.returncode == 0, again.stderr
    assert "deleted" not in again.stderr and f"kept {kept_index}" in again.stderr
    assert len(read_topic(kafka_bootstrap, topic)) == 2  # nothing recorded twice


def test_held_logs_survive_and_readers_never_see_them_missing_or_twice(
    es: Any,
    es_url: str,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
) -> None:
    prefix = unique_name("hold")
    install_template(es, prefix)
    held, free, held_now = (
        events("p-held", EXPIRED, 40),
        events("p-free", EXPIRED, 30),
        recent("p-held", 5),
    )
    index_events(es, prefix, held + free + held_now)
    topic = create_topic(unique_name("events"))
    env = env_for(es_url, kafka_bootstrap, prefix)
    assert cli("indices", "hold", "add", "p-held", "--reason", "case 7", **env).returncode == 0
    listed = cli("indices", "hold", "list", **env)
    assert "p-held" in listed.stdout and "case 7" in listed.stdout

    client = api_client(es_url, prefix)
    everything = (EXPIRED.start, NOW + timedelta(minutes=5))
    with Reader(lambda: list_ids(client, "p-held", *everything)) as reader:
        wait_until(lambda: reader.listings, 30, "a first listing")
        started = time.monotonic()
        process = cli_process("indices", "retention", "--topic", topic, **env)
        _out, err = process.communicate(timeout=120)
        ended = time.monotonic()
    assert reader.error is None, reader.error
    assert process.returncode == 0, err
    during = reader.during(started, ended)
    assert len(during) >= 3, f"only {len(during)} listings ran during the retention"
    for listing in during + [ids for _s, _e, ids in reader.listings]:
        assert sorted(listing) == sorted(ids(held + held_now))  # no gap, no double
    assert list_ids(client, "p-free", *everything) == []
    names = [
        parse_index_name(prefix, name) for name in es.indices.get_alias(name=read_alias(prefix))
    ]
    holds = [name.name for name in names if name and name.kind == KIND_HOLD]
    assert len(holds) == 1 and holds[0].startswith(f"{prefix}-hold-{EXPIRED.label}-")
    assert {e["partner_id"] for e in read_topic(kafka_bootstrap, topic)} == {"p-free"}

    # Released: the next run deletes the hold copy, and tells the partner.
    assert cli("indices", "hold", "release", "p-held", **env).returncode == 0
    after = cli("indices", "retention", "--topic", topic, **env)
    assert after.returncode == 0, after.stderr
    assert f"deleted {holds[0]}" in after.stderr
    assert sorted(list_ids(client, "p-held", *everything)) == sorted(ids(held_now))
    released = [e for e in read_topic(kafka_bootstrap, topic) if e["partner_id"] == "p-held"]
    assert [
        (e["metadata"]["logs_deleted"], e["metadata"]["legal_hold_released"]) for e in released
    ] == [(40, True)]


def test_verify_calls_logs_retention_deleted_expired_and_the_owner_finds_why(
    es: Any, es_url: str, kafka_bootstrap: str, setup: Setup
) -> None:
    """Through the worker: the logs are signed, retention deletes their month and publishes
    `audit_log.expire` into the worker's topic; verify accounts for every missing log."""
    config = setup(partitions=1)
    config.extra_env["AUDIT_DIGEST_INTERVAL_SECONDS"] = "0.5"
    old, new = events("p-r", EXPIRED, 6) + events("p-s", EXPIRED, 2), recent("p-r", 4)
    worker = Worker(config).wait_healthy()
    try:
        producer = Producer({"bootstrap.servers": kafka_bootstrap})
        for event in old + new:
            producer.produce(
                config.topic, key=event["partner_id"], value=json.dumps(event).encode()
            )
        assert producer.flush(30) == 0
        total = len(old + new)
        wait_until(lambda: indexed_count(es, config.index_prefix) == total, 60, "all indexed")
        wait_until(lambda: covered(es, config) >= total, 60, "every log signed")
        env = env_for(es_url, kafka_bootstrap, config.index_prefix)
        run = cli("indices", "retention", "--topic", config.topic, **env)
        assert run.returncode == 0, run.stderr
        wait_until(
            lambda: indexed_count(es, config.index_prefix) == len(new) + 2, 60, "the expire events"
        )
        wait_until(lambda: covered(es, config) >= total + 2, 60, "the expire events signed")
    finally:
        worker.stop()

    verify = cli(
        "verify",
        "--partner",
        "p-r",
        "--lag",
        "0s",
        **env,
        AUDIT_SIGNING_PUBLIC_KEY=TEST_SIGNING_PUBLIC_KEY,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "6 expired under retention" in verify.stderr

    client = api_client(es_url, config.index_prefix)
    found = client.get(
        "/api/v1/audit-logs",
        query_string={"activity": EXPIRE_ACTION, "from": (NOW - timedelta(hours=1)).isoformat()},
        headers=owner("p-r"),
    ).json["items"]
    assert [item["description"][:22] for item in found] == ["Deleted 6 audit log(s)"]

    # Retention excuses only what it deleted: a recent log removed by hand is named.
    gone = new[0]
    index, doc_id, _ = stored_log(config.index_prefix, validate_event(gone, now=NOW), NOW)
    es.delete(index=index, id=doc_id, refresh=True)
    tampered = cli(
        "verify",
        "--partner",
        "p-r",
        "--lag",
        "0s",
        **env,
        AUDIT_SIGNING_PUBLIC_KEY=TEST_SIGNING_PUBLIC_KEY,
    )
    assert tampered.returncode == 1
    assert tampered.stdout.splitlines() == [f"deleted: log {gone['event_id']}"]


def test_without_kafka_nothing_is_deleted(
    es: Any, es_url: str, unique_name: Callable[[str], str]
) -> None:
    """Every deletion is recorded as an audit event: no Kafka, no deletion (one line, exit 2)."""
    from deploy.local.processes import free_port

    prefix = unique_name("ret-nokafka")
    install_template(es, prefix)
    index_events(es, prefix, events("p-a", EXPIRED, 3))
    run = cli("indices", "retention", **env_for(es_url, f"127.0.0.1:{free_port()}", prefix))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines()[-1].startswith("audit-log: cannot reach Kafka at")
    assert "Traceback" not in run.stderr
    assert es.indices.exists(index=month_name(prefix, EXPIRED))
