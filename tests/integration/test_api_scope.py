"""R7: the role x organization matrix on real Elasticsearch.

Every caller lists, exports and opens every log of two partners; what comes back must be
exactly what an independent oracle (written here, not `api.scope`) says the caller may
see. Organization ids are deliberately shared between the partners.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings
from tests.support.doubles import RecordingPublisher
from tests.support.events import index_events, install_template, make_event

SECRET = "integration-secret-of-at-least-32-bytes!"
NOW = datetime.now(UTC)
WINDOW = {"from": (NOW - timedelta(days=40)).isoformat(), "to": NOW.isoformat()}
PARTNERS = {"p-a": ["org-1", "org-2", "org-3"], "p-b": ["org-1", "org-9"]}


def _events() -> list[dict[str, Any]]:
    """Per partner: logs of each organization, and logs with no organization; spread over
    two months so the scope also holds across monthly indices."""
    events = []
    for partner, organizations in PARTNERS.items():
        for position, organization in enumerate([*organizations, None]):
            for age_days in (0.1, 35):
                events.append(
                    make_event(
                        event_id=f"{partner}-{organization or 'none'}-{int(age_days)}",
                        partner_id=partner,
                        occurred_at=NOW - timedelta(days=age_days, minutes=position),
                        organization={"id": organization, "name": f"Org {organization}"}
                        if organization
                        else None,
                        obj={
                            "type": "organization",
                            "id": organization or "none",
                            "name": "Shared Name",
                        },
                        description="Common words in every log",
                    )
                )
    return events


EVENTS = _events()


def visible(event: dict[str, Any], partner: str, role: str, org_ids: tuple[str, ...]) -> bool:
    """SPEC §4's table, restated independently of `api.scope`."""
    if event["partner_id"] != partner:
        return False
    if role in ("owner", "super_admin"):
        return True
    if role in ("admin", "support"):
        organization = (event.get("organization") or {}).get("id")
        return organization is not None and organization in org_ids
    return False


CALLERS = [
    ("p-a", "owner", ()),
    ("p-a", "super_admin", ("org-1",)),  # org_ids never narrow a partner-wide role
    ("p-a", "admin", ("org-1",)),
    ("p-a", "admin", ("org-2", "org-3")),
    ("p-a", "support", ("org-3",)),
    ("p-a", "support", ("org-9",)),  # org-9 belongs to p-b, not p-a: sees nothing
    ("p-a", "admin", ()),
    ("p-b", "owner", ()),
    ("p-b", "admin", ("org-1",)),
    ("p-b", "support", ("org-1", "org-2", "org-3", "org-9")),
    ("p-c", "owner", ()),  # a partner with no logs at all
]
CALLER_IDS = [f"{p}:{r}:{','.join(o) or '-'}" for p, r, o in CALLERS]


@pytest.fixture(scope="module")
def prefix(es: Any) -> Iterator[str]:
    name = f"t-api-scope-{uuid.uuid4().hex[:10]}"
    install_template(es, name)
    index_events(es, name, EVENTS)
    yield name
    es.options(ignore_status=404).indices.delete(index=f"{name}-*")
    es.options(ignore_status=404).indices.delete_index_template(name=name)


@pytest.fixture(scope="module")
def client(prefix: str, es_url: str) -> FlaskClient:
    settings = Settings(jwt_secret=SECRET, index_prefix=prefix, elasticsearch_url=es_url)
    return create_app(settings, publisher=RecordingPublisher()).test_client()


def headers(partner: str, role: str, org_ids: tuple[str, ...]) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, 'u-1', partner, role, org_ids)}"}


def expected_ids(partner: str, role: str, org_ids: tuple[str, ...]) -> set[str]:
    return {e["event_id"] for e in EVENTS if visible(e, partner, role, org_ids)}


def list_ids(client: FlaskClient, hdrs: dict[str, str], **params: Any) -> set[str]:
    response = client.get(
        "/api/v1/audit-logs", query_string={**WINDOW, "limit": 500, **params}, headers=hdrs
    )
    assert response.status_code == 200, response.json
    body = response.json
    assert body["next_cursor"] is None
    ids = [item["id"] for item in body["items"]]
    assert len(ids) == len(set(ids)) == body["total"]["value"]
    return set(ids)


def test_matrix_is_not_trivial() -> None:
    """The oracle gives different answers to different callers (the test could catch a leak)."""
    answers = {frozenset(expected_ids(*caller)) for caller in CALLERS}
    assert len(answers) >= 8
    assert expected_ids("p-a", "admin", ()) == set()


@pytest.mark.parametrize(("partner", "role", "org_ids"), CALLERS, ids=CALLER_IDS)
def test_list_returns_exactly_the_scope(
    client: FlaskClient, partner: str, role: str, org_ids: tuple[str, ...]
) -> None:
    hdrs = headers(partner, role, org_ids)
    assert list_ids(client, hdrs) == expected_ids(partner, role, org_ids)
    # Filters and search can only narrow the scope, never widen it.
    for org in ("org-1", "org-2", "org-9"):
        assert list_ids(client, hdrs, organization_id=org) == {
            e["event_id"]
            for e in EVENTS
            if visible(e, partner, role, org_ids) and (e.get("organization") or {}).get("id") == org
        }
    assert list_ids(client, hdrs, q="shared name") == expected_ids(partner, role, org_ids)
    assert list_ids(client, hdrs, q="p-b") == {
        i for i in expected_ids(partner, role, org_ids) if "p-b" in i
    }


@pytest.mark.parametrize(("partner", "role", "org_ids"), CALLERS, ids=CALLER_IDS)
def test_detail_is_404_outside_the_scope(
    client: FlaskClient, partner: str, role: str, org_ids: tuple[str, ...]
) -> None:
    hdrs = headers(partner, role, org_ids)
    allowed = expected_ids(partner, role, org_ids)
    for event in EVENTS:
        response = client.get(f"/api/v1/audit-logs/{event['event_id']}", headers=hdrs)
        if event["event_id"] in allowed:
            assert response.status_code == 200
            assert response.json["id"] == event["event_id"]
            assert response.json["partner_id"] == partner
        else:
            assert response.status_code == 404, event["event_id"]
            # Indistinguishable from a log that does not exist.
            missing = client.get("/api/v1/audit-logs/no-such-log", headers=hdrs)
            assert response.json == missing.json


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
@pytest.mark.parametrize(("partner", "role", "org_ids"), CALLERS, ids=CALLER_IDS)
def test_export_returns_exactly_the_scope(
    client: FlaskClient, partner: str, role: str, org_ids: tuple[str, ...], fmt: str
) -> None:
    response = client.get(
        "/api/v1/audit-logs/export",
        query_string={**WINDOW, "format": fmt},
        headers=headers(partner, role, org_ids),
    )
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    if fmt == "ndjson":
        ids = [json.loads(line)["id"] for line in text.splitlines()]
    else:
        ids = [line.split(",", 1)[0] for line in text.splitlines()[1:]]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected_ids(partner, role, org_ids)


@pytest.mark.parametrize("role", ["viewer", "guest", "OWNER", ""])
def test_unknown_role_is_403_everywhere(client: FlaskClient, role: str) -> None:
    hdrs = headers("p-a", role, ("org-1",))
    for path in (
        "/api/v1/audit-logs",
        f"/api/v1/audit-logs/{EVENTS[0]['event_id']}",
        "/api/v1/audit-logs/export",
        "/api/v1/activities",
    ):
        assert client.get(path, headers=hdrs).status_code == 403, path


def test_bad_tokens_are_401(client: FlaskClient) -> None:
    expired = mint_token(SECRET, "u-1", "p-a", "owner", (), ttl=-60)
    wrong_key = mint_token("another-secret-of-at-least-32-bytes!!!!", "u-1", "p-a", "owner")
    for token in (expired, wrong_key, "not-a-jwt"):
        for path in (
            "/api/v1/audit-logs",
            f"/api/v1/audit-logs/{EVENTS[0]['event_id']}",
            "/api/v1/audit-logs/export",
        ):
            response = client.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status_code == 401
    assert client.get("/api/v1/audit-logs").status_code == 401


def test_paging_stays_in_scope(client: FlaskClient) -> None:
    """Small pages through the whole scope: the cursor never leaks a log either."""
    hdrs = headers("p-a", "support", ("org-2", "org-3"))
    seen: list[str] = []
    cursor = None
    while True:
        params = {**WINDOW, "limit": 1, **({"cursor": cursor} if cursor else {})}
        body = client.get("/api/v1/audit-logs", query_string=params, headers=hdrs).json
        seen += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen))
    assert set(seen) == expected_ids("p-a", "support", ("org-2", "org-3"))
