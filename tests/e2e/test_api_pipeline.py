"""The whole loop through real processes: events published with the SDK are indexed by the
worker and read through `audit-api`; an export is itself recorded, and its
`audit_log.download` event comes back through the same pipeline, visible to the owner and
to the admin of the exported organization only."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from api.devtoken import mint_token
from deploy.local.processes import running
from schemas.publisher import AuditPublisher
from tests.support.events import make_event
from tests.support.processes import http_get, wait_until
from tests.support.tokens import TEST_JWT_SECRET


def test_export_is_recorded_through_the_pipeline(
    kafka_bootstrap: str, es: Any, stack_env: dict[str, str], tmp_path: Path
) -> None:
    env, topic, partner = stack_env, stack_env["AUDIT_TOPICS"], "p-pipeline"
    base = f"http://127.0.0.1:{env['AUDIT_API_PORT']}/api/v1"
    now = datetime.now(UTC)
    events = [
        make_event(
            event_id=f"pipe-{n}",
            partner_id=partner,
            occurred_at=now - timedelta(minutes=n),
            organization={"id": f"org-{n % 2}", "name": f"Org {n % 2}"},
            description=f"Pipeline event {n}",
        )
        for n in range(40)
    ]
    owner = mint_token(TEST_JWT_SECRET, "u-owner", partner, "owner", (), name="Olive Owner")
    admin_0 = mint_token(TEST_JWT_SECRET, "u-a0", partner, "admin", ["org-0"])
    admin_1 = mint_token(TEST_JWT_SECRET, "u-a1", partner, "admin", ["org-1"])

    with (
        running("audit-worker", env, tmp_path / "worker.log") as worker,
        running("audit-api", env, tmp_path / "api.log") as api,
    ):
        worker.wait_http(f"http://127.0.0.1:{env['AUDIT_WORKER_PORT']}/healthz")
        api.wait_http(f"http://127.0.0.1:{env['AUDIT_API_PORT']}/readyz")
        with AuditPublisher(kafka_bootstrap, topic=topic) as publisher:
            for event in events:
                publisher.publish(event)

        def total(token: str, query: str = "") -> int | None:
            status, body = http_get(f"{base}/audit-logs?limit=1{query}", token)
            # 503 while the first monthly index is being created means "not yet".
            return json.loads(body)["total"]["value"] if status == 200 else None

        wait_until(lambda: total(owner) == 40, 60, "40 events searchable through the API")
        assert total(admin_0) == 20

        status, body = http_get(
            f"{base}/audit-logs/export?format=ndjson&organization_id=org-0", owner
        )
        assert status == 200
        exported = [json.loads(line) for line in body.decode().splitlines()]
        assert {log["id"] for log in exported} == {e["event_id"] for e in events[::2]}

        downloads = "&activity=audit_log.download"
        wait_until(lambda: total(owner, downloads) == 1, 60, "the download event indexed")
        status, body = http_get(f"{base}/audit-logs?activity=audit_log.download", owner)
        [download] = json.loads(body)["items"]
        assert total(admin_0, downloads) == 1  # it concerns org-0 ...
        assert total(admin_1, downloads) == 0  # ... and nobody else's organization
        assert not worker.log().count("Traceback")

    assert download["actor"]["id"] == "u-owner"
    assert download["actor"]["name"] == "Olive Owner"
    assert download["actor"]["role"] == "owner"
    assert download["organization"]["id"] == "org-0"
    assert download["category"]["code"] == "organization_management"
    assert download["activity"]["label"] == "Download organization's audit log"
    assert download["source"] == "api"
