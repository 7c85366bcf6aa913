"""The audit document's field names, written once.

`schemas.document` builds the document with these names, `schemas.index_template` maps them,
and the query side (`schemas.search`, `api.query`, `api.scope`, the integrity and lifecycle
stores) filters, sorts and aggregates on them. A dotted name is a path into the document:
``event.id`` is ``doc["event"]["id"]``. The nested literals of `build_document` and of the
mapping spell out the rest of the document; a unit test (tests/unit/test_schemas_fields.py)
checks that every name here is in both.
"""

from __future__ import annotations

#: The product's own namespace (everything ECS has no name for).
AUDIT = "audit"

TIMESTAMP = "@timestamp"
#: The Log ID (the event's ``event_id``).
LOG_ID = "event.id"
ACTIVITY = "event.action"
STATUS = "event.outcome"
INGESTED = "event.ingested"
ACTOR_ID = "user.id"
ORGANIZATION_ID = "organization.id"
PARTNER_ID = f"{AUDIT}.partner_id"
CATEGORY = f"{AUDIT}.category.code"
ACTOR_TYPE = f"{AUDIT}.actor.type"
SOURCE = f"{AUDIT}.source.channel"
#: The content fingerprint of the event behind a document (`schemas.document.fingerprint`).
FINGERPRINT = f"{AUDIT}.fingerprint"
#: The search representation (indexed, left out of ``_source``), and its two fields.
SEARCH = f"{AUDIT}.search"
SEARCH_GRAMS = f"{SEARCH}.grams"
SEARCH_PREFIXES = f"{SEARCH}.prefixes"

#: The order of lists, exports and of the indices themselves: newest first, ties broken by
#: the Log ID (unique per event, so the order is total).
SORT_ORDER: tuple[tuple[str, str], ...] = ((TIMESTAMP, "desc"), (LOG_ID, "desc"))

NAMES: tuple[str, ...] = (
    TIMESTAMP,
    LOG_ID,
    ACTIVITY,
    STATUS,
    INGESTED,
    ACTOR_ID,
    ORGANIZATION_ID,
    PARTNER_ID,
    CATEGORY,
    ACTOR_TYPE,
    SOURCE,
    FINGERPRINT,
    SEARCH_GRAMS,
    SEARCH_PREFIXES,
)


def last_key(name: str) -> str:
    """The last part of a dotted name: the key within its object (``event.id`` -> ``id``)."""
    return name.rsplit(".", 1)[-1]


def path(name: str) -> tuple[str, ...]:
    """The keys leading to a field, outermost first (``event.id`` -> ``("event", "id")``)."""
    return tuple(name.split("."))
