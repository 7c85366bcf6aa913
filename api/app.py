"""The app factory. Importing this module connects to nothing; `create_app` builds clients
(the Elasticsearch client connects lazily, the Kafka producer on the first export)."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, g, request
from flask_smorest import Api

from api.collaborators import EXTENSION_KEY, Services
from api.errors import register_error_handlers
from api.integrity import TrustedKeys
from api.metrics import LATENCY, REQUESTS
from api.resources import activities, audit_logs, config, docs, health, integrity, viewer
from api.settings import Settings
from api.store import ElasticsearchStore, Store
from api.use_cases import Publisher

API_DESCRIPTION = """Read API of the Partner Audit Log.

Every `/api/` call needs `Authorization: Bearer <JWT>` (claims `sub`, `name`, `partner_id`,
`role`, `org_ids`, `exp`). Owners and super admins see every log of their partner; admins
and support users see the logs of the organizations in their `org_ids`. A log outside the
caller's scope is a 404, exactly as if it did not exist.

Lists are newest first (`timestamp`, then Log ID, descending: the order the indices are
stored in, so pages and exports stop early). `total` is exact up to 1,000 logs: beyond that it
is `{"value": 1000, "relation": "gte"}` ("more than 1,000"), on every page of a list; counting
further would cost every call a visit to every matching log. The export has every log.

Cursors are opaque, bound to the filters and caller they were issued for, and expire (one hour
by default): an expired or altered cursor is a 400 naming `cursor`; start from the first page.
An export streams only once its own `audit_log.download` event is acknowledged by Kafka. If
the search backend fails after the download started, the transfer is aborted (the chunked
response ends without its final chunk, so clients report an incomplete download; NDJSON ends
with an `{"error": ...}` line) and a second download event records that it did not
complete."""


def create_app(
    settings: Settings | None = None, store: Store | None = None, publisher: Publisher | None = None
) -> Flask:
    settings = settings or Settings.from_env()
    # static_folder=None: the viewer blueprint serves its assets with its own security headers.
    app = Flask(__name__, static_folder=None)
    app.config.update(
        API_TITLE="Partner Audit Log",
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {"description": API_DESCRIPTION},
            # Every operation needs the token unless it says otherwise (health does).
            "security": [{"bearerAuth": []}],
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
                }
            },
        },
    )
    # Keys in the order SPEC §4 shows them (id, timestamp, ...), not alphabetical.
    app.json.sort_keys = False  # type: ignore[attr-defined]
    # A trailing slash is served, not redirected: some clients drop the Authorization
    # header when they follow a redirect.
    app.url_map.strict_slashes = False

    app.extensions[EXTENSION_KEY] = Services(
        settings=settings,
        store=store or _elasticsearch_store(settings),
        publisher_factory=(lambda: publisher) if publisher else lambda: _kafka_publisher(settings),
        integrity_keys=TrustedKeys.from_pems(settings.signing_public_keys),
    )

    api = Api(app)
    for module in (audit_logs, activities, config, integrity, health):
        api.register_blueprint(module.blp)
    app.register_blueprint(viewer.bp)
    app.register_blueprint(docs.bp)
    register_error_handlers(app)
    _instrument(app)
    _protect_responses(app)
    return app


def _elasticsearch_store(settings: Settings) -> Store:
    from elasticsearch import Elasticsearch

    from schemas.index_template import digest_index, read_alias

    client = Elasticsearch(**settings.elasticsearch_kwargs(), request_timeout=30)
    prefix = settings.index_prefix
    return ElasticsearchStore(client, read_alias(prefix), digest_index(prefix))


def _kafka_publisher(settings: Settings) -> Publisher:
    from schemas.publisher import AuditPublisher

    return AuditPublisher(
        settings.kafka_bootstrap_servers, topic=settings.events_topic, **settings.kafka_config
    )


#: Every other method (anyone may send `FOO /`) is counted as `other`.
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: The label of requests whose method or path is outside the app's own vocabulary: an
#: anonymous client must not be able to grow /metrics with series of its choosing.
OTHER = "other"


def _instrument(app: Flask) -> None:
    @app.before_request
    def _start_timer() -> None:
        g.started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        endpoint = request.url_rule.rule if request.url_rule else OTHER
        method = request.method if request.method in KNOWN_METHODS else OTHER
        started: Any = g.get("started")
        if started is not None:
            LATENCY.labels(method, endpoint).observe(time.perf_counter() - started)
        REQUESTS.labels(method, endpoint, str(response.status_code)).inc()
        return response


def _protect_responses(app: Flask) -> None:
    @app.after_request
    def _no_store(response: Response) -> Response:
        if request.path.startswith("/api/"):
            # Audit logs are confidential: no shared cache or browser history keeps them,
            # and nothing is ever rendered as anything but the type it says it is.
            response.headers["Cache-Control"] = "no-store"
            response.headers["X-Content-Type-Options"] = "nosniff"
        return response
