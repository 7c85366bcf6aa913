"""The HTTP surface with a fake store: status codes, error bodies, response shapes."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from api.app import create_app
from api.devtoken import mint_token
from api.export import CSV_COLUMNS
from api.settings import Settings
from schemas.document import build_document, document_id, document_to_log
from schemas.event import validate_event
from tests.support.doubles import FakeStore, RecordingPublisher, sort_position
from tests.support.events import make_event

SECRET = "unit-test-secret-of-at-least-thirty-two-bytes"
SETTINGS = Settings(jwt_secret=SECRET)


def document(**overrides: Any) -> dict[str, Any]:
    return build_document(validate_event(make_event(**overrides)), datetime.now(UTC))


def auth(role: str = "owner", org_ids: tuple[str, ...] = (), **kwargs: Any) -> dict[str, str]:
    token = mint_token(SECRET, "u-1", "p-100", role, list(org_ids), **kwargs)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def store() -> FakeStore:
    docs = [
        document(
            event_id=f"evt-{i}",
            occurred_at=datetime.now(UTC) - timedelta(minutes=i),
            organization={"id": "org-7", "name": "Acme Ltd"},
            obj={"type": "organization", "id": "org-7", "name": "Acme Ltd"},
            description="Enabled compliance for Acme Ltd",
            changes=[{"field": "compliance", "old": False, "new": True}],
            metadata={"ticket": "T-1"},
        )
        for i in range(3)
    ]
    return FakeStore(docs)


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def client(store: FakeStore, publisher: RecordingPublisher) -> FlaskClient:
    return create_app(SETTINGS, store=store, publisher=publisher).test_client()


def named(body: dict[str, Any], parameter: str) -> bool:
    """Whether an error body names `parameter` (flask-smorest's errors.query.<name>)."""
    return parameter in body.get("errors", {}).get("query", {})


# --- authentication -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/audit-logs",
        "/api/v1/audit-logs/evt-1",
        "/api/v1/audit-logs/export",
        "/api/v1/activities",
    ],
)
def test_every_api_call_needs_a_token(client: FlaskClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json["code"] == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_expired_token_is_401(client: FlaskClient) -> None:
    assert client.get("/api/v1/audit-logs", headers=auth(ttl=-60)).status_code == 401


def test_unknown_role_is_403(client: FlaskClient, store: FakeStore) -> None:
    response = client.get("/api/v1/audit-logs", headers=auth(role="viewer"))
    assert response.status_code == 403
    assert store.bodies == []  # nothing was queried


def test_auth_comes_before_parameter_validation(client: FlaskClient) -> None:
    assert client.get("/api/v1/audit-logs?limit=0").status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/openapi.json"])
def test_public_endpoints_need_no_token(client: FlaskClient, path: str) -> None:
    assert client.get(path).status_code == 200


# --- list ------------------------------------------------------------------------------------


def test_list_shape(client: FlaskClient, store: FakeStore) -> None:
    response = client.get("/api/v1/audit-logs", headers=auth())
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"items", "next_cursor", "total"}
    assert body["total"] == {"value": 3, "relation": "eq"}
    assert body["next_cursor"] is None
    assert body["items"][0] == document_to_log(store.documents[0])
    assert set(body["items"][0]) == {
        "id",
        "timestamp",
        "partner_id",
        "organization",
        "category",
        "activity",
        "actor",
        "source",
        "object",
        "status",
        "status_reason",
        "description",
    }
    assert body["items"][0]["status_reason"] is None


def test_api_responses_are_not_cached(client: FlaskClient) -> None:
    for response in (
        client.get("/api/v1/audit-logs", headers=auth()),
        client.get("/api/v1/audit-logs"),
        client.get("/api/v1/audit-logs/export", headers=auth()),
    ):
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_next_cursor_leads_to_the_next_page(client: FlaskClient, store: FakeStore) -> None:
    first = client.get("/api/v1/audit-logs?limit=2&status=success", headers=auth()).json
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    second = client.get(
        f"/api/v1/audit-logs?limit=2&status=success&cursor={first['next_cursor']}",
        headers=auth(),
    )
    assert second.status_code == 200
    last_sort = sort_position(store.documents[1])
    assert store.bodies[-1]["search_after"] == last_sort


def test_cursor_with_other_filters_is_400(client: FlaskClient) -> None:
    first = client.get("/api/v1/audit-logs?limit=2", headers=auth()).json
    response = client.get(
        f"/api/v1/audit-logs?limit=2&status=failure&cursor={first['next_cursor']}",
        headers=auth(),
    )
    assert response.status_code == 400
    assert named(response.json, "cursor")


def test_cursor_of_another_caller_is_400(client: FlaskClient) -> None:
    first = client.get("/api/v1/audit-logs?limit=2", headers=auth()).json
    response = client.get(
        f"/api/v1/audit-logs?limit=2&cursor={first['next_cursor']}",
        headers=auth(role="admin", org_ids=("org-7",)),
    )
    assert response.status_code == 400


@pytest.mark.parametrize("cursor", ["forged", "abc.def", "x" * 3000, "%00", "e30.AAAA"])
def test_forged_cursor_is_400_naming_cursor(client: FlaskClient, cursor: str) -> None:
    response = client.get(f"/api/v1/audit-logs?cursor={cursor}", headers=auth())
    assert response.status_code in (400, 422)
    assert named(response.json, "cursor")


@pytest.mark.parametrize(
    ("query", "parameter"),
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1e3", "limit"),
        ("status=ok", "status"),
        ("source=email", "source"),
        ("actor_type=robot", "actor_type"),
        ("category=billing", "category"),
        ("activity=NotACode", "activity"),
        ("activity=compliance.enable&activity=*", "activity"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-11-26T10:00:00", "from"),  # no offset
        ("from=0001-01-01T00:00:00%2B01:00", "from"),  # before year 1 in UTC
        ("from=1969-12-31T23:59:59Z", "from"),
        ("to=9999-12-31T23:59:59-01:00", "to"),  # after 9999 in UTC
        ("from=2026-11-26T10:00:00Z&to=2026-11-25T10:00:00Z", "from"),
        ("q=" + "a" * 257, "q"),
        ("organization_id=" + "o" * 300, "organization_id"),
    ],
)
def test_bad_input_is_4xx_naming_the_parameter(
    client: FlaskClient, store: FakeStore, query: str, parameter: str
) -> None:
    response = client.get(f"/api/v1/audit-logs?{query}", headers=auth())
    assert response.status_code in (400, 422), response.json
    assert named(response.json, parameter), response.json
    assert store.bodies == []


def test_q_of_256_characters_is_accepted(client: FlaskClient) -> None:
    assert client.get("/api/v1/audit-logs?q=" + "a" * 256, headers=auth()).status_code == 200


@pytest.mark.parametrize("limit", ["1", "500"])
def test_limit_bounds_are_inclusive(client: FlaskClient, store: FakeStore, limit: str) -> None:
    assert client.get(f"/api/v1/audit-logs?limit={limit}", headers=auth()).status_code == 200
    assert store.bodies[-1]["size"] == int(limit) + 1


def test_unknown_parameters_are_ignored(client: FlaskClient) -> None:
    assert client.get("/api/v1/audit-logs?colour=blue", headers=auth()).status_code == 200


def test_repeatable_parameters_reach_the_query(client: FlaskClient, store: FakeStore) -> None:
    client.get(
        "/api/v1/audit-logs?activity=a.b&activity=c.d&organization_id=o1&organization_id=o2",
        headers=auth(),
    )
    clauses = store.bodies[-1]["query"]["bool"]["filter"]
    assert {"terms": {"event.action": ["a.b", "c.d"]}} in clauses
    assert {"terms": {"organization.id": ["o1", "o2"]}} in clauses


def test_from_with_offset_is_accepted(client: FlaskClient, store: FakeStore) -> None:
    response = client.get("/api/v1/audit-logs?from=2026-11-26T09:00:00%2B01:00", headers=auth())
    assert response.status_code == 200
    time_range = store.bodies[-1]["query"]["bool"]["filter"][1]["range"]["@timestamp"]
    assert time_range["gte"] == "2026-11-26T08:00:00.000000Z"


# --- detail ------------------------------------------------------------------------------------


def test_detail_shape(client: FlaskClient, store: FakeStore) -> None:
    response = client.get("/api/v1/audit-logs/evt-0", headers=auth())
    assert response.status_code == 200
    details = response.json["details"]
    assert set(details) == {
        "ip",
        "user_agent",
        "service",
        "request_id",
        "changes",
        "metadata",
        "ingested_at",
    }
    assert details["ip"] == "203.0.113.9"
    assert details["changes"] == [{"field": "compliance", "old": False, "new": True}]
    assert details["metadata"] == {"ticket": "T-1"}
    doc_id = document_id("p-100", "evt-0")
    assert {"ids": {"values": [doc_id]}} in store.bodies[-1]["query"]["bool"]["filter"]


def test_missing_log_is_404(publisher: RecordingPublisher) -> None:
    client = create_app(SETTINGS, store=FakeStore([]), publisher=publisher).test_client()
    response = client.get("/api/v1/audit-logs/evt-404", headers=auth())
    assert response.status_code == 404
    assert response.json["code"] == 404


@pytest.mark.parametrize("log_id", ["a" * 129, "has space", "semi;colon", "%00"])
def test_impossible_log_id_is_404_without_a_query(
    client: FlaskClient, store: FakeStore, log_id: str
) -> None:
    assert client.get(f"/api/v1/audit-logs/{log_id}", headers=auth()).status_code == 404
    assert store.bodies == []


# --- export ------------------------------------------------------------------------------------


def test_export_csv(client: FlaskClient, publisher: RecordingPublisher) -> None:
    response = client.get(
        "/api/v1/audit-logs/export?format=csv&organization_id=org-7", headers=auth()
    )
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [row["id"] for row in rows] == ["evt-0", "evt-1", "evt-2"]
    assert rows[0]["activity"] == "Enable compliance"
    assert rows[0]["organization_id"] == "org-7"
    [event] = publisher.events
    assert response.headers["X-Download-Event-Id"] == event["event_id"]


def test_export_ndjson_has_details(client: FlaskClient) -> None:
    response = client.get("/api/v1/audit-logs/export?format=ndjson", headers=auth())
    assert response.status_code == 200
    lines = response.get_data(as_text=True).splitlines()
    assert len(lines) == 3
    assert json.loads(lines[0])["details"]["metadata"] == {"ticket": "T-1"}


def test_export_records_a_valid_download_event(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    client.get(
        "/api/v1/audit-logs/export?format=csv&organization_id=org-7&status=success&q=acme",
        headers=auth(role="admin", org_ids=("org-7",)),
    ).get_data()
    [event] = publisher.events
    assert publisher.flushed == 1
    validated = validate_event(event)  # the worker would accept it
    assert validated["action"] == "audit_log.download"
    assert validated["partner_id"] == "p-100"
    assert validated["organization"] == {"id": "org-7"}
    assert validated["actor"]["id"] == "u-1"
    assert validated["actor"]["role"] == "admin"
    assert validated["metadata"]["format"] == "csv"
    assert validated["metadata"]["q"] == "acme"


@pytest.mark.parametrize("peer", ["", "unix:/run/api.sock", None])
def test_download_event_without_a_peer_ip_is_still_valid(peer: str | None) -> None:
    from api.auth import Caller
    from api.use_cases import RequestInfo, download_event

    caller = Caller(sub="u-1", name=None, partner_id="p-100", role="owner")
    event = download_event({"format": "csv"}, caller, datetime.now(UTC), RequestInfo(ip=peer))
    assert "ip" not in validate_event(event)["source"]


def test_export_over_several_organizations_names_none(
    client: FlaskClient, publisher: RecordingPublisher
) -> None:
    client.get("/api/v1/audit-logs/export?organization_id=a&organization_id=b", headers=auth())
    assert "organization" not in publisher.events[0]


def test_export_refused_when_the_download_cannot_be_recorded(store: FakeStore) -> None:
    client = create_app(SETTINGS, store=store, publisher=RecordingPublisher(fail=True))
    response = client.test_client().get("/api/v1/audit-logs/export", headers=auth())
    assert response.status_code == 503
    assert response.is_json


def test_export_with_the_store_down_is_503_and_records_nothing(
    publisher: RecordingPublisher,
) -> None:
    client = create_app(SETTINGS, store=FakeStore(healthy=False), publisher=publisher)
    response = client.test_client().get("/api/v1/audit-logs/export", headers=auth())
    assert response.status_code == 503
    assert publisher.events == []


def test_export_bad_format_is_422(client: FlaskClient) -> None:
    response = client.get("/api/v1/audit-logs/export?format=xml", headers=auth())
    assert response.status_code == 422
    assert named(response.json, "format")


def test_export_csv_round_trips_awkward_text(publisher: RecordingPublisher) -> None:
    awkward = 'Comma, "quotes", new\nline, tab\t and ünïcode 名前'
    store = FakeStore([document(description=awkward, event_id=f"evt-{n}") for n in range(3)])
    client = create_app(SETTINGS, store=store, publisher=publisher).test_client()
    text = client.get("/api/v1/audit-logs/export", headers=auth()).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(text, newline="")))
    assert [row["description"] for row in rows] == [awkward] * 3
    assert list(rows[0]) == list(CSV_COLUMNS)


def test_export_of_nothing_is_a_header(publisher: RecordingPublisher) -> None:
    client = create_app(SETTINGS, store=FakeStore([]), publisher=publisher).test_client()
    csv_text = client.get("/api/v1/audit-logs/export", headers=auth()).get_data(as_text=True)
    assert csv_text == ",".join(CSV_COLUMNS) + "\r\n"
    ndjson = client.get("/api/v1/audit-logs/export?format=ndjson", headers=auth())
    assert ndjson.get_data() == b""


def test_export_csv_neutralises_formulas(publisher: RecordingPublisher) -> None:
    store = FakeStore([document(description='=HYPERLINK("http://x")')])
    client = create_app(SETTINGS, store=store, publisher=publisher).test_client()
    text = client.get("/api/v1/audit-logs/export", headers=auth()).get_data(as_text=True)
    row = next(csv.DictReader(io.StringIO(text)))
    assert row["description"].startswith("'=")


# --- other endpoints -----------------------------------------------------------------------


def test_activities_grouped_by_category(client: FlaskClient) -> None:
    body = client.get("/api/v1/activities", headers=auth()).json
    codes = [category["code"] for category in body["categories"]]
    assert codes == ["login_accessibility", "organization_management"]
    # The SPEC's 41, and audit_log.expire, which the product records itself (retention).
    assert sum(len(c["activities"]) for c in body["categories"]) == 42


def test_readyz_reports_an_unreachable_store() -> None:
    client = create_app(SETTINGS, store=FakeStore(healthy=False)).test_client()
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_metrics_count_requests(client: FlaskClient) -> None:
    client.get("/api/v1/audit-logs", headers=auth())
    text = client.get("/metrics").get_data(as_text=True)
    assert 'audit_api_requests_total{endpoint="/api/v1/audit-logs",method="GET",status="200"}' in (
        text
    )


def test_openapi_documents_everything(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json
    assert set(spec["paths"]) == {
        "/api/v1/audit-logs",
        "/api/v1/audit-logs/export",
        "/api/v1/audit-logs/{log_id}",
        "/api/v1/activities",
        "/api/v1/config",
        "/api/v1/integrity/public-key",
        "/api/v1/integrity/logs/{log_id}",
        "/api/v1/integrity/digests",
        "/healthz",
        "/readyz",
        "/metrics",
    }
    names = {p["name"] for p in spec["paths"]["/api/v1/audit-logs"]["get"]["parameters"]}
    assert names == {
        "q",
        "from",
        "to",
        "category",
        "activity",
        "organization_id",
        "actor_id",
        "status",
        "source",
        "actor_type",
        "limit",
        "cursor",
    }
    assert spec["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    assert spec["paths"]["/healthz"]["get"]["security"] == []


def test_docs_page_needs_no_script_or_cdn(client: FlaskClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "<script" not in html
    assert html.count("<h2>") == 11  # one per operation (7, /api/v1/config, 3 of integrity)
    assert html.count("<code>log_id</code>") == 2  # once per operation: the log, its proof
    assert "one of success, failure" in html
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]
    assert client.get("/docs/swagger").status_code == 200


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    response = client.get("/api/v1/nothing", headers=auth())
    assert response.status_code == 404
    assert response.is_json


def test_unexpected_errors_are_json_500(publisher: RecordingPublisher) -> None:
    class BrokenStore(FakeStore):
        def search(self, body: dict[str, Any]) -> Any:
            raise ZeroDivisionError

    app = create_app(SETTINGS, store=BrokenStore(), publisher=publisher)
    response = app.test_client().get("/api/v1/audit-logs", headers=auth())
    assert response.status_code == 500
    assert response.json == {
        "code": 500,
        "status": "Internal Server Error",
        "message": "internal error",
    }


def test_store_outage_is_503(publisher: RecordingPublisher) -> None:
    from api.store import StoreUnavailable

    class DownStore(FakeStore):
        def search(self, body: dict[str, Any]) -> Any:
            raise StoreUnavailable("down")

    app = create_app(SETTINGS, store=DownStore(), publisher=publisher)
    response = app.test_client().get("/api/v1/audit-logs", headers=auth())
    assert response.status_code == 503
    assert response.headers["Retry-After"]


def test_invented_methods_and_paths_do_not_grow_the_metrics(client: FlaskClient) -> None:
    """Anyone may send `FOO1 /x1`: without a token, they must not mint metric series."""
    from prometheus_client.parser import text_string_to_metric_families

    def series() -> set[tuple[str, str, str]]:
        text = client.get("/metrics").get_data(as_text=True)
        found = set()
        for family in text_string_to_metric_families(text):
            if family.name == "audit_api_requests":
                for sample in family.samples:
                    labels = sample.labels
                    found.add((labels["method"], labels["endpoint"], labels["status"]))
        return found

    client.get("/api/v1/audit-logs")
    before = series()
    for number in range(50):
        client.open(f"/invented-{number}", method=f"INVENT{number}")
        client.open("/api/v1/audit-logs", method=f"METHOD{number}")
        client.get(f"/nowhere/{number}")
    after = series()
    assert len(after - before) <= 4, sorted(after - before)
    assert {method for method, _, _ in after} <= {"GET", "HEAD", "OPTIONS", "other"}
    assert not any("invented" in endpoint or "nowhere" in endpoint for _, endpoint, _ in after)


def test_swagger_ui_is_served_from_this_origin_pinned(client: FlaskClient) -> None:
    """The viewer's token lives on this origin: no script from a CDN may run on it."""
    from api.resources.docs import SWAGGER_ASSETS, SWAGGER_INIT, swagger_version

    page = client.get("/docs/swagger")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert "<script>" not in html  # no inline script: the policy allows files of 'self' only
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert swagger_version() == "v5.34.0"  # the pinned flask-swagger-ui's distribution
    for name in (*SWAGGER_ASSETS, SWAGGER_INIT):
        asset = client.get(f"/docs/swagger/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["X-Content-Type-Options"] == "nosniff"
    for name in ("VERSION", "../static/viewer.js", "swagger-ui.js.map", "index.html"):
        assert client.get(f"/docs/swagger/assets/{name}").status_code == 404, name


def test_the_description_states_the_total_limit() -> None:
    from api.app import API_DESCRIPTION
    from api.query import TOTAL_HITS_LIMIT

    assert f"exact up to {TOTAL_HITS_LIMIT:,} logs" in API_DESCRIPTION


def test_the_client_configuration_is_the_contract_s(client: FlaskClient) -> None:
    """The viewer's enumerations, labels and limits come from here, not from copies."""
    from api.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_Q_CHARS
    from schemas.event import ACTOR_ROLES, ACTOR_TYPES, SOURCE_CHANNELS, STATUSES

    assert client.get("/api/v1/config").status_code == 401
    config = client.get("/api/v1/config", headers=auth()).json
    assert [c["code"] for c in config["statuses"]] == list(STATUSES)
    assert [c["code"] for c in config["sources"]] == list(SOURCE_CHANNELS)
    assert [c["code"] for c in config["actor_types"]] == list(ACTOR_TYPES)
    assert [c["code"] for c in config["roles"]] == list(ACTOR_ROLES)
    assert all(c["label"] for key in ("statuses", "roles") for c in config[key])
    limits = (config["page_size"], config["max_page_size"], config["max_q_chars"])
    assert limits == (DEFAULT_LIMIT, MAX_LIMIT, MAX_Q_CHARS)
