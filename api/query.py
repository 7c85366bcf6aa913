"""Pure functions turning validated request parameters into Elasticsearch request bodies.

No I/O here: every function takes `now` explicitly so the unit tests compare dicts. The
caller's scope comes from `api.scope.scope_filter` and is always the first filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from api.auth import Caller
from api.cursor import Cursor
from api.scope import scope_filter
from schemas import fields
from schemas.document import document_id
from schemas.search import text_query

DEFAULT_WINDOW = timedelta(hours=24)
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_Q_CHARS = 256
# ES counts hits exactly up to here and answers `relation: gte` beyond (API_DESCRIPTION says
# so). The indices are sorted like SORT (template version 3), so a page can stop after its
# top hits, but only once this many are counted: 10,000 made every list call over a busy
# window visit 10,000 logs for a number a reader takes as "1,000+" anyway.
TOTAL_HITS_LIMIT = 1_000

# Newest first, then by Log ID (unique per event): a total order, so `search_after` can
# neither skip nor repeat logs sharing a millisecond.
SORT: list[dict[str, Any]] = [{name: {"order": order}} for name, order in fields.SORT_ORDER]

# Repeatable parameters: OR within one parameter (terms), AND across parameters.
MULTI_VALUE_FILTERS = {
    "category": fields.CATEGORY,
    "activity": fields.ACTIVITY,
    "organization_id": fields.ORGANIZATION_ID,
    "actor_id": fields.ACTOR_ID,
}
SINGLE_VALUE_FILTERS = {
    "status": fields.STATUS,
    "source": fields.SOURCE,
    "actor_type": fields.ACTOR_TYPE,
}
# The parameters that select logs (as opposed to paging through them).
FILTER_PARAMS = ("q", "from_", "to", *MULTI_VALUE_FILTERS, *SINGLE_VALUE_FILTERS)


def format_time(value: datetime) -> str:
    """UTC RFC 3339 with microseconds, as Elasticsearch's default date format parses it."""
    # isoformat, not strftime: "%Y" does not zero-pad years before 1000 on glibc.
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def resolve_window(params: Mapping[str, Any], now: datetime) -> tuple[str, str]:
    """The (from, to) the request means, as strings; "" for an open lower bound.

    Neither given: the last 24 hours. `from` alone: until now. `to` alone: everything up
    to `to` (the spec is silent; an upper bound alone reads as "before this time").
    """
    start: datetime | None = params.get("from_")
    end: datetime | None = params.get("to")
    if start is None and end is None:
        start = now - DEFAULT_WINDOW
    if end is None:
        end = now
    return (format_time(start) if start else "", format_time(end))


def filter_clauses(
    params: Mapping[str, Any], caller: Caller, window: tuple[str, str]
) -> list[dict[str, Any]]:
    """Scope first, then the time window, the user's filters and the text query."""
    clauses = list(scope_filter(caller))
    time_range: dict[str, str] = {"lte": window[1]}
    if window[0]:
        time_range["gte"] = window[0]
    clauses.append({"range": {fields.TIMESTAMP: time_range}})
    for param, field in MULTI_VALUE_FILTERS.items():
        values = params.get(param)
        if values:
            clauses.append({"terms": {field: sorted(set(values))}})
    for param, field in SINGLE_VALUE_FILTERS.items():
        value = params.get(param)
        if value:
            clauses.append({"term": {field: value}})
    q = params.get("q")
    if q:
        text = text_query(q)
        if text is not None:
            clauses.append(text)
    return clauses


def selection(params: Mapping[str, Any]) -> dict[str, Any]:
    """The log-selecting parameters only (what a cursor's fingerprint covers)."""
    return {key: params.get(key) for key in FILTER_PARAMS}


def scope_identity(caller: Caller) -> dict[str, Any]:
    return {"partner_id": caller.partner_id, "role": caller.role, "org_ids": list(caller.org_ids)}


def build_list_query(
    params: Mapping[str, Any], caller: Caller, now: datetime, cursor: Cursor | None = None
) -> dict[str, Any]:
    """The search body of one list page.

    Asks for `limit + 1` hits: the extra one only tells whether a next page exists, so the
    last page never comes with a cursor leading to an empty page.
    """
    window = (cursor.window_from, cursor.window_to) if cursor else resolve_window(params, now)
    limit = int(params.get("limit") or DEFAULT_LIMIT)
    body: dict[str, Any] = {
        "query": {"bool": {"filter": filter_clauses(params, caller, window)}},
        "sort": SORT,
        "size": limit + 1,
        "track_total_hits": TOTAL_HITS_LIMIT,
    }
    if cursor is not None:
        body["search_after"] = cursor.search_after
    return body


def build_export_query(params: Mapping[str, Any], caller: Caller, now: datetime) -> dict[str, Any]:
    """Query and sort of an export (paged by the store with point-in-time + search_after)."""
    window = resolve_window(params, now)
    return {"query": {"bool": {"filter": filter_clauses(params, caller, window)}}, "sort": SORT}


def build_detail_query(log_id: str, caller: Caller) -> dict[str, Any]:
    """One log by id, inside the caller's scope: out of scope finds nothing, i.e. a 404."""
    # The Log ID is unique within a partner only: the document id is derived from both,
    # and the caller's partner is the only one it may be.
    doc_id = document_id(caller.partner_id, log_id)
    return {
        "query": {"bool": {"filter": [*scope_filter(caller), {"ids": {"values": [doc_id]}}]}},
        "size": 1,
    }
