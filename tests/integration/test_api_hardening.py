"""The read API under attack and under failure, on real Elasticsearch, Kafka and gunicorn
(issue 11): cursors no one else can sign and that expire, Elasticsearch's refusals as 400s,
exports that stream only with their own download event and never look complete when cut."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jwt
import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings
from deploy.local.processes import free_port, running
from schemas.event import parse_event
from tests.integration.test_api_export import consume
from tests.support.events import index_events, install_template, make_event
from tests.support.processes import wait_until

SECRET = "hardening-secret-of-at-least-32-bytes!!"
CURSOR_SECRET = "hardening-cursor-secret-32-bytes-long!!"
NOW = datetime.now(UTC)
PARTNER = "p-hard"
LOGS = 60


@contextmanager
def indexed(es: Any, kind: str, events: list[dict[str, Any]]) -> Iterator[str]:
    """A fresh index prefix holding `events`; deleted afterwards."""
    name = f"t-api-{kind}-{uuid.uuid4().hex[:10]}"
    install_template(es, name)
    try:
        index_events(es, name, events)
        yield name
    finally:
        es.options(ignore_status=404).indices.delete(index=f"{name}-*")
        es.options(ignore_status=404).indices.delete_index_template(name=name)


@pytest.fixture(scope="module")
def prefix(es: Any) -> Iterator[str]:
    events = [
        make_event(
            event_id=f"h-{n:03d}",
            partner_id=PARTNER,
            occurred_at=NOW - timedelta(minutes=n),
            organization={"id": f"org-{n % 2}"},
        )
        for n in range(LOGS)
    ]
    with indexed(es, "hard", events) as name:
        yield name


def rs256_bearer(private: bytes) -> dict[str, str]:
    claims = {"sub": "u-1", "partner_id": PARTNER, "role": "owner", "exp": time.time() + 600}
    return {"Authorization": f"Bearer {jwt.encode(claims, private, algorithm='RS256')}"}


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def test_with_rs256_only_nobody_can_sign_a_cursor_with_the_public_key(
    prefix: str, es_url: str, rsa_keys: tuple[bytes, str]
) -> None:
    """The shipped k8s configuration: a public key, no HS256 secret. The old key derivation
    from the public key let anyone sign cursors (and push values to Elasticsearch)."""
    private, public = rsa_keys
    settings = Settings(
        env="production",
        jwt_secret=None,
        jwt_public_key=public,
        cursor_secret=CURSOR_SECRET.encode(),
        index_prefix=prefix,
        elasticsearch_url=es_url,
    )
    client = create_app(settings).test_client()
    first = client.get("/api/v1/audit-logs?limit=10", headers=rs256_bearer(private)).json
    payload_text = first["next_cursor"].split(".")[0]
    payload = json.loads(base64.urlsafe_b64decode(payload_text + "=" * (-len(payload_text) % 4)))
    payload["to"] = "not-a-time"  # what Elasticsearch would answer with a 400 (a 500 before)
    forged_payload = json.dumps(payload).encode()
    public_derived = hashlib.sha256(b"audit-cursor-v1:" + public.encode()).digest()
    forged = (
        f"{b64(forged_payload)}.{b64(hmac.new(public_derived, forged_payload, 'sha256').digest())}"
    )
    response = client.get(
        f"/api/v1/audit-logs?limit=10&cursor={forged}", headers=rs256_bearer(private)
    )
    assert response.status_code == 400
    assert "cursor" in response.json["errors"]["query"]


def test_a_cursor_expires(prefix: str, es_url: str) -> None:
    settings = Settings(
        jwt_secret=SECRET, index_prefix=prefix, elasticsearch_url=es_url, cursor_ttl_s=1
    )
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {mint_token(SECRET, 'u-1', PARTNER, 'owner', [])}"}
    cursor = client.get("/api/v1/audit-logs?limit=10", headers=headers).json["next_cursor"]

    def refused() -> dict[str, Any] | None:
        response = client.get(f"/api/v1/audit-logs?limit=10&cursor={cursor}", headers=headers)
        return response.json if response.status_code == 400 else None

    body = wait_until(refused, 10, "the cursor to expire")
    assert "expired" in body["errors"]["query"]["cursor"][0]


@pytest.fixture
def refusing_prefix(es: Any) -> Iterator[str]:
    """An index whose settings make Elasticsearch refuse (400) a query the API accepts: at
    most one term per `terms` query, while an admin of two organizations needs two."""
    event = make_event(event_id="r-1", partner_id=PARTNER, organization={"id": "org-0"})
    with indexed(es, "refuse", [event]) as name:
        es.indices.put_settings(index=f"{name}-*", settings={"index.max_terms_count": 1})
        yield name


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit-logs",
        "/api/v1/audit-logs?q=compliance",
        "/api/v1/audit-logs/r-1",
        "/api/v1/audit-logs/export?format=csv",
    ],
)
def test_an_elasticsearch_400_is_a_400_naming_a_parameter_never_a_500(
    refusing_prefix: str, es_url: str, path: str
) -> None:
    settings = Settings(jwt_secret=SECRET, index_prefix=refusing_prefix, elasticsearch_url=es_url)
    client = create_app(settings).test_client()
    token = mint_token(SECRET, "u-1", PARTNER, "admin", ["org-0", "org-1"])
    response = client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.json["errors"]["query"]  # names the parameter (or the query as a whole)


# --- exports through a real gunicorn process -------------------------------------------------

EXPORT_LOGS = 6000  # six pages of the export's 1,000: the failure lands mid-stream


@pytest.fixture(scope="module")
def export_prefix(es: Any) -> Iterator[str]:
    events = [
        make_event(
            event_id=f"c-{n:05d}",
            partner_id=PARTNER,
            occurred_at=NOW - timedelta(seconds=n),
            description=f"Cut export fixture {n} " + "y" * 200,
        )
        for n in range(EXPORT_LOGS)
    ]
    with indexed(es, "cut", events) as name:
        yield name


def open_contexts(es: Any) -> int:
    """Search contexts Elasticsearch holds open (points in time among them)."""
    stats = es.nodes.stats(metric="indices", index_metric="search")
    return sum(node["indices"]["search"]["open_contexts"] for node in stats["nodes"].values())


def download_events(bootstrap: str, topic: str, wanted: int, timeout_s: float = 30) -> list[Any]:
    return [parse_event(value) for value in consume(bootstrap, topic, wanted, timeout_s)]


@pytest.fixture
def api_server(
    export_prefix: str,
    es_url: str,
    kafka_bootstrap: str,
    create_topic: Callable[..., str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[tuple[str, str]]:
    """audit-api (gunicorn) on a free port; yields (host:port, download topic)."""
    topic = create_topic(unique_name("cut-downloads"))
    port = free_port()
    env = {
        "AUDIT_JWT_SECRET": SECRET,
        "AUDIT_INDEX_PREFIX": export_prefix,
        "ELASTICSEARCH_URL": es_url,
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "AUDIT_EVENTS_TOPIC": topic,
        "AUDIT_API_PORT": str(port),
        "AUDIT_API_WORKERS": "1",
    }
    with running("audit-api", env, tmp_path / "api.log") as api:
        api.wait_http(f"http://127.0.0.1:{port}/healthz")
        yield f"127.0.0.1:{port}", topic


def start_export(address: str, fmt: str) -> tuple[http.client.HTTPConnection, Any]:
    connection = http.client.HTTPConnection(address, timeout=60)
    token = mint_token(SECRET, "u-1", PARTNER, "owner", [])
    query = urlencode({"format": fmt, "from": (NOW - timedelta(days=1)).isoformat()})
    connection.request(
        "GET", f"/api/v1/audit-logs/export?{query}", headers={"Authorization": f"Bearer {token}"}
    )
    response = connection.getresponse()
    assert response.status == 200
    assert response.getheader("Transfer-Encoding") == "chunked"
    return connection, response


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_an_export_cut_by_elasticsearch_is_a_failed_transfer_and_says_so(
    api_server: tuple[str, str], es: Any, kafka_bootstrap: str, export_prefix: str, fmt: str
) -> None:
    address, topic = api_server
    connection, response = start_export(address, fmt)
    received = response.read(1024)  # the stream has started
    es.indices.close(index=f"{export_prefix}-*")  # Elasticsearch fails under the export
    try:
        with pytest.raises(http.client.IncompleteRead) as cut:
            received += response.read()
    finally:
        es.indices.open(index=f"{export_prefix}-*", wait_for_active_shards="1")
        connection.close()
    received += cut.value.partial
    lines = received.decode("utf-8", "replace").splitlines()
    assert len(lines) < EXPORT_LOGS  # truncated, and the client knows it
    if fmt == "ndjson":
        assert "export interrupted" in json.loads(lines[-1])["error"]
    download, incomplete = download_events(kafka_bootstrap, topic, wanted=2)
    assert download["status"] == "success"
    assert incomplete["event_id"] == f"{download['event_id']}.incomplete"
    assert incomplete["status"] == "failure"
    assert incomplete["status_reason"] == "backend_failed"


def test_an_export_whose_client_goes_away_is_recorded_incomplete_and_releases_its_pit(
    api_server: tuple[str, str], es: Any, kafka_bootstrap: str
) -> None:
    before = open_contexts(es)
    address, topic = api_server
    connection, response = start_export(address, "ndjson")
    response.read(1024)
    connection.sock.close()  # type: ignore[union-attr]  # the client vanishes mid-stream
    connection.close()
    download, incomplete = download_events(kafka_bootstrap, topic, wanted=2, timeout_s=60)
    assert incomplete["metadata"]["download_event_id"] == download["event_id"]
    assert incomplete["status_reason"] == "client_disconnected"
    wait_until(lambda: open_contexts(es) <= before, 30, "the export's point in time to close")


def test_a_refused_export_records_nothing_and_releases_its_pit(
    export_prefix: str,
    es: Any,
    es_url: str,
    kafka_bootstrap: str,
    create_topic: Callable[..., str],
    unique_name: Callable[[str], str],
) -> None:
    """The download topic refuses the event (too large for it): no export, no open PIT."""
    topic = create_topic(unique_name("tiny-downloads"), config={"max.message.bytes": "200"})
    settings = Settings(
        jwt_secret=SECRET,
        index_prefix=export_prefix,
        elasticsearch_url=es_url,
        kafka_bootstrap_servers=kafka_bootstrap,
        events_topic=topic,
    )
    client: FlaskClient = create_app(settings).test_client()
    before = open_contexts(es)
    token = mint_token(SECRET, "u-1", PARTNER, "owner", [])
    response = client.get(
        "/api/v1/audit-logs/export?format=csv", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 503
    # Other searches may open and close contexts meanwhile: the count must come back.
    wait_until(lambda: open_contexts(es) <= before, 30, "the refused export's PIT to close")
