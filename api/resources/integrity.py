"""`/api/v1/integrity`: the digests' public key, a log's proof, a partner's digest chain."""

from __future__ import annotations

from typing import Any

from flask import Response, jsonify
from flask_smorest import Blueprint, abort

from api import integrity, use_cases
from api.collaborators import services
from api.models import DigestPage, DigestPageArgs, Error, IntegrityStatus, PublicKeys
from api.resources.common import auth_responses, current_caller, protect
from api.scope import require_partner_wide
from schemas.integrity import ALGORITHM, public_pem

blp = Blueprint(
    "integrity",
    __name__,
    url_prefix="/api/v1/integrity",
    description="Tamper evidence: signed, chained digests of every log (docs/integrity.md).",
)
protect(blp)


@blp.route("/public-key", methods=["GET"])
@blp.response(200, PublicKeys)
@blp.alt_response(503, schema=Error, description="No public key configured")
@auth_responses(blp)
def public_key() -> dict[str, Any]:
    """The public keys digests are signed with (pin them: verify with your own copy)."""
    keys = services().integrity_keys.require()
    return {
        "algorithm": ALGORITHM,
        "keys": [{"key_id": kid, "public_key": public_pem(key)} for kid, key in keys.by_id.items()],
    }


@blp.route("/logs/<string:log_id>", methods=["GET"])
@blp.response(200, IntegrityStatus)
@blp.alt_response(404, schema=Error, description="No such log, or not visible to the caller")
@blp.alt_response(503, schema=Error, description="No public key configured")
@auth_responses(blp)
def log_proof(log_id: str) -> Response:
    """Whether a signed digest covers this log as stored, with its inclusion proof."""
    ctx, caller = services(), current_caller()
    keys = ctx.integrity_keys.require()
    source = (
        use_cases.get_source(ctx.store, log_id, caller) if use_cases.is_log_id(log_id) else None
    )
    if source is not None:
        return jsonify(integrity.log_integrity(ctx.store, keys, caller, source))
    abort(404, message="audit log not found")
    raise AssertionError("unreachable: abort raises")


@blp.route("/digests", methods=["GET"])
@blp.arguments(DigestPageArgs, location="query", as_kwargs=False)
@blp.response(200, DigestPage)
@auth_responses(blp)
def digests(params: dict[str, Any]) -> Response:
    """The caller's partner's digests in sequence order, with their entries (owners and
    super admins: a digest names every log of its batch)."""
    caller = current_caller()
    require_partner_wide(caller)
    page = integrity.digest_page(services().store, caller, params["after_seq"], params["limit"])
    return jsonify(page)
