"""An event published with confluent-kafka comes back through the read API."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import Producer

from api.devtoken import mint_token
from deploy.local.processes import running
from tests.support.processes import http_get, wait_until
from tests.support.tokens import TEST_JWT_SECRET
from tests.unit.test_schemas_event import valid_event


def _event(partner_id: str) -> dict[str, Any]:
    """SPEC §2's example, with a fresh Log ID, the current time and no description."""
    event = valid_event()
    del event["description"]
    return {
        **event,
        "event_id": f"e2e-{uuid.uuid4()}",
        "occurred_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
        "partner_id": partner_id,
    }


def _get_json(url: str, token: str) -> Any:
    """The JSON body of a 200; None while the first monthly index is being created (503)."""
    status, body = http_get(url, token)
    if status == 503:
        return None
    assert status == 200, body
    return json.loads(body)


def test_published_event_is_returned_by_the_api(
    kafka_bootstrap: str, es: Any, stack_env: dict[str, str], tmp_path: Path
) -> None:
    env, partner_id = stack_env, "p-100"
    api_url = f"http://127.0.0.1:{env['AUDIT_API_PORT']}"
    token = mint_token(TEST_JWT_SECRET, "u-1", partner_id, "owner", ())
    event = _event(partner_id)
    with (
        running("audit-worker", env, tmp_path / "worker.log") as worker,
        running("audit-api", env, tmp_path / "api.log") as api,
    ):
        worker.wait_http(f"http://127.0.0.1:{env['AUDIT_WORKER_PORT']}/healthz")
        api.wait_http(f"{api_url}/healthz")
        producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
        value = json.dumps(event).encode()
        producer.produce(env["AUDIT_TOPICS"], key=partner_id.encode(), value=value)
        assert producer.flush(30) == 0

        def listed() -> list[dict[str, Any]] | None:
            page = _get_json(f"{api_url}/api/v1/audit-logs?q=ompli", token)
            return page["items"] if page else None

        items = wait_until(listed, 60, "the event to be searchable through the API")
        detail = _get_json(f"{api_url}/api/v1/audit-logs/{event['event_id']}", token)

    assert [item["id"] for item in items] == [event["event_id"]]
    assert items[0]["activity"] == {"code": "compliance.enable", "label": "Enable compliance"}
    assert items[0]["category"]["code"] == "organization_management"
    assert detail["details"]["ip"] == "203.0.113.9"
