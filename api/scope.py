"""The ONE place that turns a caller into the filter every query must carry.

List, detail and export all build their Elasticsearch query through `scope_filter`, so
there is no code path that reads logs without it. A role this module does not know is
refused here too (defence in depth behind `api.auth`).
"""

from __future__ import annotations

from typing import Any

from api.auth import AuthError, Caller
from schemas import fields

PARTNER_WIDE_ROLES = frozenset({"owner", "super_admin"})
ORGANIZATION_ROLES = frozenset({"admin", "support"})


def scope_filter(caller: Caller) -> list[dict[str, Any]]:
    """Filter clauses (for `bool.filter`) limiting a query to what `caller` may see."""
    if not caller.partner_id:
        raise AuthError(403, "token has no partner")
    partner = {"term": {fields.PARTNER_ID: caller.partner_id}}
    if caller.role in PARTNER_WIDE_ROLES:
        return [partner]
    if caller.role in ORGANIZATION_ROLES:
        if not caller.org_ids:
            # An admin managing no organization sees nothing, including logs that
            # concern no organization at all (SPEC §4).
            return [partner, {"match_none": {}}]
        return [partner, {"terms": {fields.ORGANIZATION_ID: sorted(caller.org_ids)}}]
    raise AuthError(403, "role not allowed to read audit logs")


def digest_filter(caller: Caller) -> list[dict[str, Any]]:
    """Filter clauses limiting a digest query to the caller's partner. Which *logs* of those
    digests a caller may learn about is decided per log (through `scope_filter`); only
    partner-wide roles read whole digests (`require_partner_wide`)."""
    if not caller.partner_id:
        raise AuthError(403, "token has no partner")
    return [{"term": {"partner_id": caller.partner_id}}]


def require_partner_wide(caller: Caller) -> None:
    """Whole digests name every log of the partner: owners and super admins only."""
    if caller.role not in PARTNER_WIDE_ROLES:
        raise AuthError(403, "only owners and super admins read the partner's digests")
