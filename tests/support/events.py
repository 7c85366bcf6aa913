"""Realistic SPEC §2 events, and indexing them the way the worker does (for tests that read
them back through the API or Elasticsearch)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

_counter = itertools.count(1)


def make_event(
    *,
    event_id: str | None = None,
    occurred_at: datetime | None = None,
    partner_id: str = "p-100",
    organization: dict[str, Any] | None = None,
    action: str = "compliance.enable",
    actor: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    obj: dict[str, Any] | None = None,
    status: str = "success",
    **extra: Any,
) -> dict[str, Any]:
    """A valid SPEC §2 event (the example of the spec unless overridden)."""
    when = occurred_at or datetime.now(UTC) - timedelta(minutes=5)
    event: dict[str, Any] = {
        "event_id": event_id or f"evt-{next(_counter):06d}",
        "schema_version": 1,
        "occurred_at": when.astimezone(UTC).isoformat(timespec="milliseconds"),
        "action": action,
        "partner_id": partner_id,
        "actor": actor
        or {
            "type": "partner_user",
            "id": "u-42",
            "name": "Jane Doe",
            "email": "jane@partner.example",
            "role": "admin",
        },
        "source": source or {"channel": "ui", "ip": "203.0.113.9", "user_agent": "Mozilla/5.0"},
        "status": status,
    }
    if organization is not None:
        event["organization"] = organization
    if obj is not None:
        event["object"] = obj
    event.update(extra)
    return event


def install_template(es: Any, prefix: str) -> None:
    """Install the product's index template for `prefix` (as the worker does at start)."""
    from schemas.index_template import index_template, template_name

    es.indices.put_index_template(name=template_name(prefix), **index_template(prefix))


def index_events(es: Any, prefix: str, events: list[dict[str, Any]]) -> None:
    """Index events the way the worker does (validated, `schemas.document.stored_log`:
    monthly index from `occurred_at`, `_id` from partner and event id, op_type create),
    then refresh so they are searchable."""
    from elasticsearch import helpers

    from schemas.document import stored_log
    from schemas.event import validate_event

    now = datetime.now(UTC)

    def actions() -> Iterator[dict[str, Any]]:
        for raw in events:
            index, doc_id, document = stored_log(prefix, validate_event(raw, now=now), now)
            yield {"_op_type": "create", "_index": index, "_id": doc_id, "_source": document}

    helpers.bulk(es, actions(), chunk_size=2000, refresh=False)
    es.indices.refresh(index=f"{prefix}-*")
