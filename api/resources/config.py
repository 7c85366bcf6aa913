"""`/api/v1/config`: what a client needs to offer the filters and read the answers: the
enumerations of the contract with their labels, and the API's limits (written once, in
`schemas.event` and `api.query`; the viewer keeps no copy)."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from api.models import ClientConfig
from api.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_Q_CHARS
from api.resources.common import auth_responses, protect
from schemas.event import (
    ACTOR_ROLES,
    ACTOR_TYPE_LABELS,
    ACTOR_TYPES,
    ROLE_LABELS,
    SOURCE_CHANNELS,
    SOURCE_LABELS,
    STATUS_LABELS,
    STATUSES,
)

blp = Blueprint(
    "config", __name__, url_prefix="/api/v1/config", description="Client configuration."
)
protect(blp)


def _choices(codes: tuple[str, ...], labels: dict[str, str]) -> list[dict[str, str]]:
    return [{"code": code, "label": labels[code]} for code in codes]


@blp.route("", methods=["GET"])
@blp.response(200, ClientConfig)
@auth_responses(blp)
def client_config() -> dict[str, Any]:
    """Filter choices with their labels, and the list's limits."""
    return {
        "statuses": _choices(STATUSES, STATUS_LABELS),
        "sources": _choices(SOURCE_CHANNELS, SOURCE_LABELS),
        "actor_types": _choices(ACTOR_TYPES, ACTOR_TYPE_LABELS),
        "roles": _choices(ACTOR_ROLES, ROLE_LABELS),
        "page_size": DEFAULT_LIMIT,
        "max_page_size": MAX_LIMIT,
        "max_q_chars": MAX_Q_CHARS,
    }
