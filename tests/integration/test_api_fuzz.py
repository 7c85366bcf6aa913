"""R7: the API fuzzed from its own OpenAPI document, and hostile `q` values, on real
Elasticsearch. Nothing a client sends may produce a 5xx."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings
from tests.support.doubles import RecordingPublisher
from tests.support.events import index_events, install_template, make_event
from tests.support.tokens import TEST_SIGNING_PUBLIC_KEY

SECRET = "integration-secret-of-at-least-32-bytes!"
TOKEN = mint_token(SECRET, "u-1", "p-f", "admin", ["org-1"], ttl=3600)
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime.now(UTC)


@pytest.fixture(scope="module")
def app(es: Any, es_url: str) -> Iterator[Flask]:
    prefix = f"t-api-fuzz-{uuid.uuid4().hex[:10]}"
    install_template(es, prefix)
    index_events(
        es,
        prefix,
        [
            make_event(
                event_id=f"fz-{n}",
                partner_id="p-f",
                occurred_at=NOW - timedelta(minutes=n * 7),
                organization={"id": f"org-{n % 3}", "name": "Acme"},
                obj={"type": "user", "id": f"u-{n}", "name": "Zoë Ünïcode 名前"},
                description=f'Fuzz fixture {n} with * ? " \\ / ( : symbols',
            )
            for n in range(60)
        ],
    )
    settings_ = Settings(
        jwt_secret=SECRET,
        index_prefix=prefix,
        elasticsearch_url=es_url,
        signing_public_keys=(TEST_SIGNING_PUBLIC_KEY,),
    )
    yield create_app(settings_, publisher=RecordingPublisher())
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
    es.options(ignore_status=404).indices.delete_index_template(name=prefix)


@pytest.fixture(scope="module")
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- schemathesis -------------------------------------------------------------------------

OPERATIONS = [
    ("GET", "/api/v1/audit-logs"),
    ("GET", "/api/v1/audit-logs/export"),
    ("GET", "/api/v1/audit-logs/{log_id}"),
    ("GET", "/api/v1/activities"),
    ("GET", "/api/v1/config"),
    ("GET", "/api/v1/integrity/public-key"),
    ("GET", "/api/v1/integrity/logs/{log_id}"),
    ("GET", "/api/v1/integrity/digests"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
]
MAX_EXAMPLES = 50


@pytest.fixture(scope="module")
def api_schema(app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


def test_openapi_lists_exactly_the_fuzzed_operations(api_schema: Any) -> None:
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


# Negative generation needs something to break: operations without parameters have none.
FUZZ_CASES = [(method, path, GenerationMode.POSITIVE) for method, path in OPERATIONS] + [
    (method, path, GenerationMode.NEGATIVE) for method, path in OPERATIONS[:3]
]


@pytest.mark.parametrize(
    ("method", "path", "mode"), FUZZ_CASES, ids=[f"{p}-{m.value}" for _, p, m in FUZZ_CASES]
)
def test_openapi_fuzz_no_server_errors(
    api_schema: Any, method: str, path: str, mode: GenerationMode
) -> None:
    """Generated requests (valid ones, then invalid ones) with a valid token: never a 5xx;
    valid requests get responses (status, content type, body) the document declares."""
    operation = api_schema[path][method]

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        response = case.call(headers=HEADERS)
        assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
        # Every other default check applies (status code, content type, headers and body
        # conformance). Two do not:
        # - positive_data_acceptance: some rules cannot be said in OpenAPI 3.0 (`from` <=
        #   `to`, a cursor's signature, the 1970-9999 time range), so a schema-valid
        #   request may rightly be a 422;
        # - negative_data_rejection: SPEC §4 lets the API ignore unknown query parameters,
        #   which is most of what negative generation adds (invalid values of known
        #   parameters are 422s, tested in tests/unit/test_api_app.py).
        case.validate_response(
            response,
            headers=HEADERS,
            excluded_checks=[checks.positive_data_acceptance, checks.negative_data_rejection],
        )

    run()


# --- hostile q ----------------------------------------------------------------------------

HOSTILE_Q = [
    "*",
    "?",
    "**",
    "*:*",
    "_id:*",
    "a AND b",
    "NOT x",
    "x OR y",
    "(",
    ")",
    "((((",
    "[",
    "]",
    "{",
    "}",
    "\\",
    "\\\\",
    "/",
    "/.*/",
    "/a[b/",
    ".*",
    "a.*b",
    "[a-z]+",
    "(a|b)*c",
    "^$",
    '"',
    '"unterminated',
    '""',
    "~",
    "fuzzy~2",
    "boost^10",
    "a:b:c",
    "@timestamp:>0",
    '{"match_all":{}}',
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "%00",
    "%",
    "&",
    "#",
    "\x00",
    "a\x00b",
    "\x00" * 50,
    "\u202e",
    "\ufeff",
    "😀",
    "😀" * 100,
    "名前",
    "Ünïcode",
    "ß",
    "İ",
    "\u0301",
    "\ud7ff",
    "\t\n\r",
    " ",
    "   ",
    "a" * 256,
    "é" * 256,
    "😀" * 64,
    "zoë",
    "ZOË",
    "fixture 1",
    '* ? " \\ / ( :',
    "-",
    "--",
    "+",
    "!",
    "&&",
    "||",
    "a" * 3 + " " + "b" * 3 + " " + "c" * 3,
    " ".join(["ab"] * 85),
    " ".join("xyz" * 40),
]
OVERSIZED_Q = [
    "a" * 257,
    "x" * 10_240,
    "😀" * 5000,
    "\x00" * 10_240,
    "(" * 10_240,
    " ".join(["abc"] * 3000),
]


@pytest.mark.parametrize("q", HOSTILE_Q, ids=range(len(HOSTILE_Q)))
def test_hostile_q_is_never_a_server_error(client: FlaskClient, q: str) -> None:
    response = client.get("/api/v1/audit-logs", query_string={"q": q}, headers=HEADERS)
    assert response.status_code == 200, response.json
    export = client.get(
        "/api/v1/audit-logs/export", query_string={"q": q, "format": "ndjson"}, headers=HEADERS
    )
    assert export.status_code == 200
    export.get_data()  # the streamed body must complete too


@pytest.mark.parametrize("q", OVERSIZED_Q, ids=range(len(OVERSIZED_Q)))
def test_oversized_q_is_422_naming_q(client: FlaskClient, q: str) -> None:
    response = client.get("/api/v1/audit-logs", query_string={"q": q}, headers=HEADERS)
    assert response.status_code == 422
    assert "q" in response.json["errors"]["query"]


def test_query_syntax_is_literal(client: FlaskClient) -> None:
    """Characters that would be syntax match themselves and nothing else."""

    def found(q: str) -> int:
        body = client.get("/api/v1/audit-logs", query_string={"q": q}, headers=HEADERS).json
        return int(body["total"]["value"])

    visible = found("fixture")
    assert visible == 20  # org-1's third of the 60 fixtures
    assert found("*") == visible  # every description has a literal " * " word
    assert found("**") == 0  # as a wildcard it would match everything
    assert found("*:*") == 0
    assert found("fuzz*") == 0
    assert found('" \\ / ( :') == visible


@pytest.mark.parametrize(
    "raw",
    [
        "q=%FF%FE",  # not UTF-8
        "q=%",
        "limit=%00",
        "from=%00",
        "cursor=%FF",
        "activity=%C0%AF",
        "q=a&q=b",
        "limit=1&limit=2",
        "from=2026-02-30T00:00:00Z",
        "from=9999-12-31T23:59:59Z",
        "from=0001-01-01T00:00:00Z",
        "to=2026-11-26T25:00:00Z",
        "from=2026-11-26T10:00:00%2B99:00",
        "limit=99999999999999999999999",
        "organization_id=",
        "status=",
    ],
)
def test_malformed_query_strings_are_never_a_server_error(client: FlaskClient, raw: str) -> None:
    response = client.get(f"/api/v1/audit-logs?{raw}", headers=HEADERS)
    assert response.status_code < 500, (raw, response.get_data(as_text=True)[:300])
    assert response.is_json


@pytest.mark.parametrize(
    "log_id",
    ["%00", "..%2F..%2Fetc", "a" * 10_000, "😀", "*", "_all", "fz-1%20OR%201", "fz-1\\", "%FF"],
)
def test_hostile_log_ids_are_404(client: FlaskClient, log_id: str) -> None:
    response = client.get(f"/api/v1/audit-logs/{log_id}", headers=HEADERS)
    assert response.status_code == 404
