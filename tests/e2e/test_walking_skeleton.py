"""An event published with confluent-kafka comes back through the read API."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jwt
from confluent_kafka import Producer

from tests.processes import free_port, running, wait_until

SECRET = "e2e-test-secret-0123456789abcdef0123456789"


def _event(partner_id: str) -> dict[str, Any]:
    return {
        "event_id": f"e2e-{uuid.uuid4()}",
        "schema_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "action": "compliance.enable",
        "partner_id": partner_id,
        "organization": {"id": "org-7", "name": "Acme Ltd"},
        "actor": {
            "type": "partner_user",
            "id": "u-42",
            "name": "Jane Doe",
            "email": "jane@partner.example",
            "role": "admin",
        },
        "source": {"channel": "ui", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
        "object": {"type": "organization", "id": "org-7", "name": "Acme Ltd"},
        "status": "success",
    }


def _token(partner_id: str) -> str:
    claims = {
        "sub": "u-1",
        "name": "Owner",
        "partner_id": partner_id,
        "role": "owner",
        "org_ids": [],
        "exp": int(time.time()) + 600,
    }
    return jwt.encode(claims, SECRET, algorithm="HS256")


def _get_json(url: str, token: str) -> Any:
    """GET with the token; an HTTP error raises (urllib.error.HTTPError)."""
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as reply:
        return json.load(reply)


def test_published_event_is_returned_by_the_api(
    kafka_bootstrap: str,
    es_url: str,
    es: Any,
    unique_name: Callable[[str], str],
    create_topic: Callable[..., str],
    tmp_path: Path,
) -> None:
    topic = create_topic(unique_name("events"))
    prefix = unique_name("audit")
    partner_id = unique_name("partner")
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "ELASTICSEARCH_URL": es_url,
        "AUDIT_INDEX_PREFIX": prefix,
        "AUDIT_TOPICS": topic,
        "AUDIT_DLQ_TOPIC": f"{topic}.dlq",
        "AUDIT_GROUP_ID": unique_name("group"),
        "AUDIT_WORKER_PORT": str(free_port()),
        "AUDIT_API_PORT": str(free_port()),
        "AUDIT_JWT_SECRET": SECRET,
        "AUDIT_ENV": "development",
    }
    api_url = f"http://127.0.0.1:{env['AUDIT_API_PORT']}"
    event = _event(partner_id)
    with (
        running("audit-worker", env, tmp_path / "worker.log") as worker,
        running("audit-api", env, tmp_path / "api.log") as api,
    ):
        worker.wait_http(f"http://127.0.0.1:{env['AUDIT_WORKER_PORT']}/healthz")
        api.wait_http(f"{api_url}/healthz")
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        producer.produce(topic, key=partner_id.encode(), value=json.dumps(event).encode())
        assert producer.flush(30) == 0

        token = _token(partner_id)
        list_url = f"{api_url}/api/v1/audit-logs?q=ompli"

        def listed() -> list[dict[str, Any]] | None:
            # A 503 while the first monthly index is being created means "not yet".
            try:
                return _get_json(list_url, token)["items"] or None
            except urllib.error.HTTPError as error:
                if error.code != 503:
                    raise
                return None

        items = wait_until(listed, 60, "the event to be searchable through the API")
        detail = _get_json(f"{api_url}/api/v1/audit-logs/{event['event_id']}", token)

    assert [item["id"] for item in items] == [event["event_id"]]
    assert items[0]["activity"] == {"code": "compliance.enable", "label": "Enable compliance"}
    assert items[0]["category"]["code"] == "organization_management"
    assert detail["details"]["ip"] == "203.0.113.9"
