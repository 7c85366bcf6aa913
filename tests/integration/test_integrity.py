"""R9 tamper evidence on the real Kafka, Elasticsearch and worker: whatever is changed behind
the API's back, `audit-log verify` names exactly it (and only it)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from flask.testing import FlaskClient

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings
from schemas.document import document_id, index_name, stored_log
from schemas.event import validate_event
from schemas.index_template import digest_index
from schemas.integrity import (
    Digest,
    canonical,
    digest_doc_id,
    key_id,
    merkle_root,
    root_from_proof,
)
from tests.integration.worker_harness import Setup, Worker, WorkerConfig, indexed_count
from tests.support.doubles import RecordingPublisher
from tests.support.events import make_event
from tests.support.processes import wait_until
from tests.support.tokens import TEST_SIGNING_PUBLIC_KEY

PARTNERS = ("p-clean", "p-change", "p-delete", "p-insert", "p-digest", "p-resign")
PER_PARTNER = 12
SECRET = "integrity-test-secret-of-32-bytes-or-more"
NOW = datetime.now(UTC)


def event(partner: str, n: int) -> dict[str, Any]:
    return make_event(
        event_id=f"{partner}-{n:02d}",
        partner_id=partner,
        occurred_at=NOW - timedelta(hours=n),
        description=f"Event {n} of {partner}",
    )


@pytest.fixture(scope="module")
def stack(
    request: pytest.FixtureRequest, es: Any, kafka_bootstrap: str, es_url: str
) -> Iterator[WorkerConfig]:
    """One worker (digests every second) ingests every partner's events, in several digests
    per partner (three rounds), then stops: the tests tamper with a quiet store."""
    setup: Setup = request.getfixturevalue("setup_module")
    config = setup()
    config.extra_env["AUDIT_DIGEST_INTERVAL_SECONDS"] = "0.5"
    worker = Worker(config).wait_healthy()
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    try:
        for round_ in range(3):  # three flushes: every chain has several links
            for partner in PARTNERS:
                for n in range(round_ * 4, round_ * 4 + 4):
                    producer.produce(
                        config.topic, key=partner, value=json.dumps(event(partner, n)).encode()
                    )
            assert producer.flush(30) == 0
            expected = (round_ + 1) * 4 * len(PARTNERS)
            wait_until(
                lambda e=expected: indexed_count(es, config.index_prefix) >= e, 60, "indexed"
            )
            wait_until(lambda e=expected: covered(es, config) >= e, 60, "digests cover all")
            time.sleep(0.6)  # let the next round fall in the next digest interval
    finally:
        worker.stop()
    yield config


@pytest.fixture(scope="module")
def setup_module(
    kafka_bootstrap: str, es_url: str, es: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Setup]:
    """`setup` for a whole module (the shared fixture is per test): its names are cleaned
    at the end of the module."""
    from confluent_kafka.admin import AdminClient, NewTopic

    from tests.integration.worker_harness import worker_setup

    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    names: list[str] = []

    def unique(prefix: str) -> str:
        import uuid

        names.append(f"t-{prefix}-{uuid.uuid4().hex[:10]}")
        return names[-1]

    def create(name: str, partitions: int = 1, config: dict[str, str] | None = None) -> str:
        new = NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})
        admin.create_topics([new])[name].result(timeout=30)
        names.append(name)
        return name

    yield worker_setup(kafka_bootstrap, es_url, unique, create, tmp_path_factory.mktemp("ws"))
    for name in names:
        es.options(ignore_status=404).indices.delete(index=f"{name}*")
        es.options(ignore_status=404).indices.delete_index_template(name=f"{name}*")
    admin.delete_topics([n for n in names if not n.startswith("t-audit")])


def covered(es: Any, config: WorkerConfig) -> int:
    index = digest_index(config.index_prefix)
    es.options(ignore_status=404).indices.refresh(index=index)
    response = es.options(ignore_status=404).search(
        index=index, size=0, aggs={"leaves": {"sum": {"field": "count"}}}
    )
    return int(response.get("aggregations", {}).get("leaves", {}).get("value") or 0)


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`audit-log ARGS` in a fresh process with only `env` (and PATH) in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "schemas.cli", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def verify(config: WorkerConfig, partner: str, *extra: str) -> tuple[int, list[str], str]:
    result = cli(
        "verify",
        "--partner",
        partner,
        "--index-prefix",
        config.index_prefix,
        "--lag",
        "0s",
        *extra,
        ELASTICSEARCH_URL=config.es_url,
        AUDIT_SIGNING_PUBLIC_KEY=TEST_SIGNING_PUBLIC_KEY,
    )
    return result.returncode, result.stdout.splitlines(), result.stderr


def log_location(config: WorkerConfig, partner: str, n: int) -> tuple[str, str]:
    original = event(partner, n)
    return index_name(config.index_prefix, original["occurred_at"]), document_id(
        partner, original["event_id"]
    )


def refresh(es: Any, config: WorkerConfig) -> None:
    es.indices.refresh(index=f"{config.index_prefix}-*,{digest_index(config.index_prefix)}")


def test_an_untouched_partner_verifies(stack: WorkerConfig) -> None:
    code, lines, summary = verify(stack, "p-clean")
    assert (code, lines) == (0, []), summary
    assert f"{3 * 4} logs" in summary


def api(stack: WorkerConfig, keys: tuple[str, ...] = (TEST_SIGNING_PUBLIC_KEY,)) -> FlaskClient:
    settings = Settings(
        jwt_secret=SECRET,
        index_prefix=stack.index_prefix,
        elasticsearch_url=stack.es_url,
        signing_public_keys=keys,
    )
    return create_app(settings, publisher=RecordingPublisher()).test_client()


def bearer(partner: str, role: str = "owner", orgs: tuple[str, ...] = ()) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, 'u-1', partner, role, list(orgs))}"}


def test_the_api_serves_the_key_a_proof_and_the_chain(stack: WorkerConfig) -> None:
    client = api(stack)
    keys = client.get("/api/v1/integrity/public-key", headers=bearer("p-clean")).json
    assert [k["public_key"] for k in keys["keys"]] == [TEST_SIGNING_PUBLIC_KEY]

    proof = client.get("/api/v1/integrity/logs/p-clean-03", headers=bearer("p-clean")).json
    assert (proof["status"], proof["verified"]) == ("verified", True)
    root = root_from_proof(proof["leaf"], proof["index"], proof["digest"]["count"], proof["proof"])
    assert root == proof["digest"]["root"]
    assert "entries" not in proof["digest"]  # other logs of the digest stay unnamed

    # Scope: another partner's log, or one outside an admin's organizations, is a 404.
    assert client.get("/api/v1/integrity/logs/p-clean-03", headers=bearer("p-x")).status_code == 404
    admin = bearer("p-clean", "admin", ("org-elsewhere",))
    assert client.get("/api/v1/integrity/logs/p-clean-03", headers=admin).status_code == 404
    assert client.get("/api/v1/integrity/digests", headers=admin).status_code == 403

    chain = client.get("/api/v1/integrity/digests?limit=100", headers=bearer("p-clean")).json
    assert [d["seq"] for d in chain["items"]] == list(range(1, len(chain["items"]) + 1))
    assert {d["partner_id"] for d in chain["items"]} == {"p-clean"}
    assert sum(d["count"] for d in chain["items"]) >= PER_PARTNER

    unconfigured = api(stack, keys=())
    response = unconfigured.get("/api/v1/integrity/public-key", headers=bearer("p-clean"))
    assert response.status_code == 503


def test_an_export_with_proofs_verifies_offline_and_an_edited_one_does_not(
    stack: WorkerConfig, tmp_path: Path
) -> None:
    client = api(stack)
    body = client.get(
        "/api/v1/audit-logs/export?format=ndjson&integrity=true&from=2000-01-01T00:00:00Z",
        headers=bearer("p-clean"),
    ).get_data()
    exported = tmp_path / "p-clean.ndjson"
    exported.write_bytes(body)
    assert len(body.splitlines()) == PER_PARTNER
    code, lines, summary = verify_file(exported)
    assert (code, lines) == (0, []), summary

    first, *rest = body.splitlines()
    edited = json.loads(first)
    edited["description"] = "edited after download"
    exported.write_bytes(b"\n".join([json.dumps(edited).encode(), *rest]))
    code, lines, _ = verify_file(exported)
    assert (code, lines) == (1, [f"changed: log {edited['id']}"])


def verify_file(path: Path) -> tuple[int, list[str], str]:
    result = cli(
        "verify",
        "--export",
        str(path),
        "--lag",
        "0s",
        AUDIT_SIGNING_PUBLIC_KEY=TEST_SIGNING_PUBLIC_KEY,
    )
    return result.returncode, result.stdout.splitlines(), result.stderr


def test_a_changed_log_is_named(es: Any, stack: WorkerConfig) -> None:
    index, doc_id = log_location(stack, "p-change", 5)
    es.update(index=index, id=doc_id, doc={"message": "Nothing happened here"})
    refresh(es, stack)
    code, lines, _ = verify(stack, "p-change")
    assert (code, lines) == (1, ["changed: log p-change-05"])
    proof = api(stack).get("/api/v1/integrity/logs/p-change-05", headers=bearer("p-change")).json
    assert (proof["status"], proof["verified"]) == ("changed", False)


def test_a_deleted_log_is_named(es: Any, stack: WorkerConfig) -> None:
    index, doc_id = log_location(stack, "p-delete", 7)
    es.delete(index=index, id=doc_id)
    refresh(es, stack)
    code, lines, _ = verify(stack, "p-delete")
    assert (code, lines) == (1, ["deleted: log p-delete-07"])


def test_an_inserted_log_is_named(es: Any, stack: WorkerConfig) -> None:
    forged = validate_event(event("p-insert", 99))
    index, doc_id, document = stored_log(stack.index_prefix, forged, NOW)
    es.create(index=index, id=doc_id, document=document)
    refresh(es, stack)
    code, lines, _ = verify(stack, "p-insert")
    assert (code, lines) == (1, ["inserted: log p-insert-99"])


def stored_digest(es: Any, config: WorkerConfig, partner: str, seq: int) -> dict[str, Any]:
    return dict(
        es.get(index=digest_index(config.index_prefix), id=digest_doc_id(partner, seq))["_source"]
    )


def test_a_deleted_digest_is_named_and_its_logs_lose_their_cover(
    es: Any, stack: WorkerConfig
) -> None:
    removed = Digest.from_json(stored_digest(es, stack, "p-digest", 2))
    es.delete(index=digest_index(stack.index_prefix), id=digest_doc_id("p-digest", 2))
    refresh(es, stack)
    code, lines, _ = verify(stack, "p-digest")
    uncovered = sorted(f"inserted: log {entry.log_id}" for entry in removed.entries)
    assert code == 1
    assert lines == [*uncovered, "missing digest: #2"]


def test_a_digest_re_signed_with_another_key_is_named(es: Any, stack: WorkerConfig) -> None:
    """The forger drops a log from a digest and signs the result with a key of their own."""
    data = stored_digest(es, stack, "p-resign", 1)
    dropped = data["entries"].pop(0)
    forger = Ed25519PrivateKey.generate()
    data["count"] = len(data["entries"])
    data["root"] = merkle_root([entry["leaf"] for entry in data["entries"]])
    data["key_id"] = key_id(forger.public_key())
    header = Digest.from_json(data).header
    data["signature"] = base64.b64encode(forger.sign(canonical(header))).decode()
    data["entry_ids"] = [entry["id"] for entry in data["entries"]]
    es.index(index=digest_index(stack.index_prefix), id=digest_doc_id("p-resign", 1), document=data)
    refresh(es, stack)
    code, lines, _ = verify(stack, "p-resign")
    assert code == 1
    assert "digest signature does not verify (re-signed or altered): #1" in lines
    assert "digest does not name its predecessor: #2" in lines  # its hash changed too
    assert f"inserted: log {dropped['id']}" in lines


def test_without_a_trusted_key_or_a_store_verify_says_so_in_one_line(stack: WorkerConfig) -> None:
    keyless = cli("verify", "--partner", "p-clean", ELASTICSEARCH_URL=stack.es_url)
    assert keyless.returncode == 2 and "public key" in keyless.stderr
    assert keyless.stderr.count("\n") == 1 and "Traceback" not in keyless.stderr
    code, _, summary = verify(stack, "p-clean")
    assert code == 0, summary
    unreachable = cli(
        "verify",
        "--partner",
        "p-clean",
        ELASTICSEARCH_URL="http://127.0.0.1:1",
        AUDIT_SIGNING_PUBLIC_KEY=TEST_SIGNING_PUBLIC_KEY,
    )
    assert unreachable.returncode == 2 and "cannot reach Elasticsearch" in unreachable.stderr
    assert "Traceback" not in unreachable.stderr
