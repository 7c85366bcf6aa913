"""Liveness, readiness and metrics: unauthenticated, for orchestrators and Prometheus."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask_smorest import Blueprint
from prometheus_client import CONTENT_TYPE_LATEST

from api.collaborators import services
from api.metrics import exposition
from api.models import Health

blp = Blueprint("health", __name__, description="Health and metrics (no token needed).")
PUBLIC: list[dict[str, Any]] = []  # OpenAPI: overrides the global bearer requirement


@blp.route("/healthz", methods=["GET"])
@blp.response(200, Health)
@blp.doc(security=PUBLIC)
def healthz() -> dict[str, Any]:
    """Liveness: the process answers (checks nothing else, so a slow backend never gets
    healthy API processes restarted)."""
    return {"status": "ok", "checks": {}}


@blp.route("/readyz", methods=["GET"])
@blp.response(200, Health)
@blp.alt_response(503, schema=Health, description="Elasticsearch unreachable")
@blp.doc(security=PUBLIC)
def readyz() -> tuple[dict[str, Any], int]:
    """Readiness: Elasticsearch answers."""
    if services().store.ping():
        return {"status": "ok", "checks": {"elasticsearch": "ok"}}, 200
    return {"status": "unavailable", "checks": {"elasticsearch": "unreachable"}}, 503


@blp.route("/metrics", methods=["GET"])
@blp.doc(
    security=PUBLIC,
    responses={
        "200": {
            "description": "Prometheus text exposition format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
)
def metrics() -> Response:
    """Prometheus metrics."""
    return Response(exposition(services().settings.metrics_dir), content_type=CONTENT_TYPE_LATEST)
