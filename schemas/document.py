"""Event -> Elasticsearch audit document (ECS names) -> API LOG shape (SPEC §4).

Both conversions live here so the worker and the API cannot drift apart. ECS fields carry
what ECS has a name for; everything product-specific sits under the ``audit`` namespace.
Absent optional values are omitted from the document (not written as null) and come back
as null in the LOG shape.
"""

from __future__ import annotations

import binascii
import hashlib
from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache, partial
from typing import Any, NamedTuple

import orjson

from schemas.catalogue import Activity, get_activity
from schemas.event import MAX_DESCRIPTION_CHARS, parse_rfc3339
from schemas.fields import AUDIT, FINGERPRINT, SEARCH, TIMESTAMP, last_key
from schemas.integrity import canonical_leaf_hash
from schemas.search import search_representation
from schemas.speedups import compiled

ECS_VERSION = "8.11.0"
DATASET = "partner_audit"
NAMESPACE = AUDIT
#: Where the content fingerprint of the event behind a document is kept (see `fingerprint`).
FINGERPRINT_FIELD = FINGERPRINT
#: The keys of the search representation and of the fingerprint within ``audit``.
_SEARCH = last_key(SEARCH)
_FINGERPRINT = last_key(FINGERPRINT)


def as_utc(value: datetime | str) -> datetime:
    """A validated ``occurred_at`` (UTC datetime) or an RFC 3339 string, as a UTC datetime."""
    if isinstance(value, str):
        return parse_rfc3339(value)
    if value.tzinfo is UTC:  # the validated event's own (twice per event: no copy)
        return value
    if value.tzinfo is None:
        raise ValueError("naive datetime: an offset is required")
    return value.astimezone(UTC)


def iso_ms(value: datetime | str) -> str:
    """``2026-11-26T08:59:58.120Z``: UTC, millisecond precision (Elasticsearch ``date``)."""
    moment = as_utc(value).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds") + "Z"


def index_name(prefix: str, occurred_at: datetime | str) -> str:
    """Monthly index chosen from the event's own time, so a replay lands in the same place."""
    return f"{prefix}-{as_utc(occurred_at):%Y.%m}"


def document_id(partner_id: str, event_id: str) -> str:
    """The Elasticsearch ``_id`` of a log: derived from the idempotency key (SPEC §3).

    ``event_id`` is unique only within its partner, so both go in; hashed, so the id has a
    fixed size (22 characters) whatever the partner id holds, and reveals neither.
    """
    key = f"{len(partner_id)}:{partner_id}:{event_id}".encode()
    digest = hashlib.blake2b(key, digest_size=16, person=b"audit-log-id-v1").digest()
    # base64.urlsafe_b64encode, without its Python-level wrapper (this runs once per event).
    encoded = binascii.b2a_base64(digest, newline=False).translate(_URLSAFE)
    return encoded.rstrip(b"=").decode("ascii")


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def fingerprint(event: dict[str, Any]) -> str:
    """A hash of a validated event's content: equal for a redelivery of the same event,
    different when an id is reused for other content (which is then an ``id_conflict``).

    Canonical JSON (sorted keys) of the validated, normalized event, so whitespace, key
    order, ``null`` for an absent optional field or another offset for the same instant
    do not count as a difference.
    """
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS | orjson.OPT_UTC_Z)
    return hashlib.sha256(canonical).hexdigest()[:32]


def _display(item: dict[str, Any] | None, *keys: str) -> str | None:
    """The first present value of ``keys`` in ``item``: a human name for a thing."""
    for key in keys:
        if item and item.get(key):
            return str(item[key])
    return None


def generate_description(event: dict[str, Any], activity: Activity) -> str:
    """``Enable compliance — Acme Ltd by Jane Doe`` (+ ``(failed: reason)``).

    Built from the activity label, the object (with its organization when they differ),
    and the actor; used when the event carries no description.
    """
    target = _display(event.get("object"), "name", "id")
    organization = _display(event.get("organization"), "name", "id")
    if target and organization and target != organization:
        target = f"{target} ({organization})"
    text = activity.label + (f" — {target or organization}" if target or organization else "")
    text += f" by {_display(event['actor'], 'name', 'email', 'id')}"
    if event["status"] == "failure":
        reason = event.get("status_reason")
        text += f" (failed: {reason})" if reason else " (failed)"
    return text[:MAX_DESCRIPTION_CHARS]


#: What `_compact` leaves out (a module constant: a literal here would be built per value).
_ABSENT_VALUES: tuple[Any, ...] = (None, {}, [])


def compact(mapping: dict[str, Any]) -> dict[str, Any]:
    """Drop absent values and empty sub-objects, so the document holds only facts."""
    return {key: value for key, value in mapping.items() if value not in _ABSENT_VALUES}


#: `compact`, compiled when `schemas._speedups` is built (~7 times per event).
_compact: Callable[[dict[str, Any]], dict[str, Any]] = (
    compact if compiled is None else partial(compiled.compact, _ABSENT_VALUES)
)


def _single(key: str, value: Any) -> dict[str, Any] | None:
    """``_compact({key: value})`` or None when that is empty (a one-field ECS object)."""
    return None if value in _ABSENT_VALUES else {key: value}


def searchable_values(event: dict[str, Any], description: str) -> list[str | None]:
    """SPEC §4 ``q`` scope: Log ID, actor id/name/email, object id/name, description."""
    actor, obj = event["actor"], event.get("object") or {}
    return [
        event["event_id"],
        actor["id"],
        actor.get("name"),
        actor.get("email"),
        obj.get("id"),
        obj.get("name"),
        description,
    ]


def stored_searchable_values(source: dict[str, Any]) -> list[str | None]:
    """``searchable_values`` read back from a stored document (``_source``)."""
    user, obj = source.get("user") or {}, source[NAMESPACE].get("object") or {}
    return [
        source["event"]["id"],
        user.get("id"),
        user.get("name"),
        user.get("email"),
        obj.get("id"),
        obj.get("name"),
        source.get("message"),
    ]


def with_search(source: dict[str, Any]) -> dict[str, Any]:
    """A stored ``_source`` made indexable again, for a copy into another index.

    The search representation is left out of ``_source`` (see the index template), so it
    is recomputed from the values it is made of; the rest is the stored document itself,
    which the copy then stores unchanged (its integrity leaf stays the same).
    """
    search = search_representation(stored_searchable_values(source))
    return {**source, NAMESPACE: {**source[NAMESPACE], _SEARCH: search}}


def _ecs_part(event: dict[str, Any], description: str, ingested: str) -> dict[str, Any]:
    actor, source = event["actor"], event["source"]
    return _compact(
        {
            TIMESTAMP: iso_ms(event["occurred_at"]),
            "ecs": {"version": ECS_VERSION},
            "event": _compact(
                {
                    "id": event["event_id"],
                    "kind": "event",
                    "action": event["action"],
                    "outcome": event["status"],
                    "reason": event.get("status_reason"),
                    "ingested": ingested,
                    "dataset": DATASET,
                }
            ),
            "message": description,
            "user": _compact(
                {
                    "id": actor["id"],
                    "name": actor.get("name"),
                    "email": actor.get("email"),
                    "roles": [actor["role"]] if actor.get("role") else None,
                }
            ),
            "organization": _compact(event.get("organization") or {}),
            "source": _single("ip", source.get("ip")),
            "user_agent": _single("original", source.get("user_agent")),
            "service": _single("name", source.get("service")),
            "http": {"request": {"id": source["request_id"]}} if source.get("request_id") else None,
        }
    )


def _audit_part(event: dict[str, Any], activity: Activity) -> dict[str, Any]:
    """The ``audit`` namespace without its search representation (added last, see
    ``_document_and_search``)."""
    actor = event["actor"]
    return _compact(
        {
            "schema_version": event["schema_version"],
            "partner_id": event["partner_id"],
            "category": {"code": activity.category_code, "label": activity.category_label},
            "activity": {"code": activity.code, "label": activity.label},
            "actor": _compact({"type": actor["type"], "role": actor.get("role")}),
            "source": {"channel": event["source"]["channel"]},
            "object": _compact(event.get("object") or {}),
            "description_generated": not event.get("description"),
            "changes": [dict(change) for change in event.get("changes") or []],
            "metadata": dict(event.get("metadata") or {}),
            _FINGERPRINT: fingerprint(event),
        }
    )


@lru_cache(maxsize=4)
def _ingested_text(ingested_at: datetime) -> str:
    # One ingest time serves a whole batch: formatted once, not once per document.
    return iso_ms(ingested_at)


def build_document(event: dict[str, Any], ingested_at: datetime) -> dict[str, Any]:
    """The Elasticsearch document for a validated event (see ``schemas.event``). Pure.

    ``event["occurred_at"]`` may be the validated UTC datetime or an RFC 3339 string.
    """
    document, search = _document_and_search(event, ingested_at)
    document[NAMESPACE][_SEARCH] = search
    return document


def _document_and_search(
    event: dict[str, Any], ingested_at: datetime
) -> tuple[dict[str, Any], dict[str, list[str]]]:
    """The document as Elasticsearch keeps it in ``_source`` (everything but the search
    representation, which the index template leaves out), and the search representation."""
    activity = get_activity(event["action"])
    description = event.get("description") or generate_description(event, activity)
    document = _ecs_part(event, description, _ingested_text(ingested_at))
    document[NAMESPACE] = _audit_part(event, activity)
    return document, search_representation(searchable_values(event, description))


def stored_log(
    prefix: str, event: dict[str, Any], ingested_at: datetime
) -> tuple[str, str, dict[str, Any]]:
    """Where and what the worker stores for a validated event: (index, _id, document).

    The one recipe for tests, benchmarks and tools that index logs as the worker does.
    """
    return (
        index_name(prefix, event["occurred_at"]),
        document_id(event["partner_id"], event["event_id"]),
        build_document(event, ingested_at),
    )


class SerializedLog(NamedTuple):
    """``stored_log`` as the worker sends it: also the bulk source, and the integrity leaf
    of the stored document (``schemas.integrity.leaf_hash``), from one serialization."""

    index_name: str
    doc_id: str
    document: dict[str, Any]
    source: bytes
    leaf: str


def serialized_log(prefix: str, event: dict[str, Any], ingested_at: datetime) -> SerializedLog:
    """``stored_log``, with the document serialized once: the canonical JSON of what
    Elasticsearch keeps (its leaf hash is over exactly these bytes), into which the search
    representation is then spliced for the bulk request."""
    document, search = _document_and_search(event, ingested_at)
    stored = orjson.dumps(document, option=orjson.OPT_SORT_KEYS)  # = integrity.canonical
    leaf = canonical_leaf_hash(stored)
    document[NAMESPACE][_SEARCH] = search
    return SerializedLog(
        index_name(prefix, event["occurred_at"]),
        document_id(event["partner_id"], event["event_id"]),
        document,
        _with_search(stored, document),
        leaf,
    )


def _with_search(stored: bytes, document: dict[str, Any]) -> bytes:
    """The bulk source: `stored` (canonical JSON, so it opens with ``@timestamp`` then
    ``audit``) with ``audit.search`` inserted as the first field of ``audit``. Field order
    means nothing to Elasticsearch, and ``_source`` leaves the search part out again."""
    head = b"".join(
        (b"{", _TIMESTAMP_KEY, b":", orjson.dumps(document[TIMESTAMP]), b",", _AUDIT_KEY, b":{")
    )
    if not stored.startswith(head):  # a field sorting before "audit" would end up here
        return orjson.dumps(document)
    search = orjson.dumps(document[NAMESPACE][_SEARCH])
    return b"".join((head, _SEARCH_KEY, b":", search, b",", stored[len(head) :]))


_TIMESTAMP_KEY, _AUDIT_KEY, _SEARCH_KEY = (orjson.dumps(k) for k in (TIMESTAMP, AUDIT, _SEARCH))


def _pick(item: dict[str, Any] | None, *keys: str) -> dict[str, Any] | None:
    if not item:
        return None
    return {key: item.get(key) for key in keys}


def document_to_log(doc: dict[str, Any]) -> dict[str, Any]:
    """SPEC §4 LOG from a stored document (``_source``)."""
    event, user, audit = doc["event"], doc.get("user", {}), doc[NAMESPACE]
    roles = user.get("roles") or [None]
    return {
        "id": event["id"],
        "timestamp": doc[TIMESTAMP],
        "partner_id": audit["partner_id"],
        "organization": _pick(doc.get("organization"), "id", "name"),
        "category": dict(audit["category"]),
        "activity": dict(audit["activity"]),
        "actor": {
            "type": audit["actor"]["type"],
            "id": user.get("id"),
            "name": user.get("name"),
            "email": user.get("email"),
            "role": roles[0],
        },
        "source": audit["source"]["channel"],
        "object": _pick(audit.get("object"), "type", "id", "name"),
        "status": event["outcome"],
        "status_reason": event.get("reason"),
        "description": doc.get("message"),
    }


def document_to_log_detail(doc: dict[str, Any]) -> dict[str, Any]:
    """LOG plus ``details``: ip, user agent, service, request id, changes, metadata, ingest time."""
    log = document_to_log(doc)
    audit = doc[NAMESPACE]
    log["details"] = {
        "ip": doc.get("source", {}).get("ip"),
        "user_agent": doc.get("user_agent", {}).get("original"),
        "service": doc.get("service", {}).get("name"),
        "request_id": doc.get("http", {}).get("request", {}).get("id"),
        "changes": [
            {"field": c["field"], "old": c.get("old"), "new": c.get("new")}
            for c in audit.get("changes", [])
        ],
        "metadata": dict(audit.get("metadata", {})),
        "ingested_at": doc["event"].get("ingested"),
    }
    return log
