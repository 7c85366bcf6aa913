"""Test doubles for the read API: a store without Elasticsearch, a publisher without Kafka,
and realistic events. Used by this repository's tests; importing it connects to nothing."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from api.store import EXPORT_PAGE_SIZE, SearchPage, StoreUnavailable

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


class FakeStore:
    """Answers with the documents it was given, in order, and records every request body.

    It does not evaluate queries: tests of what a query *selects* run on real
    Elasticsearch; tests with this store check parameters, shapes and status codes.
    """

    def __init__(self, documents: list[dict[str, Any]] | None = None, healthy: bool = True):
        self.documents = list(documents or [])
        self.healthy = healthy
        self.bodies: list[dict[str, Any]] = []
        self.scans: list[FakeScan] = []
        #: An export's documents fail (as Elasticsearch would mid-stream) after this many.
        self.fail_after: int | None = None
        #: What `digests` answers, whatever the query.
        self.digest_sources: list[dict[str, Any]] = []

    def search(self, body: dict[str, Any]) -> SearchPage:
        self.bodies.append(body)
        size = int(body.get("size", 10))
        docs = self.documents[:size]
        return SearchPage(
            documents=docs,
            sort_values=[sort_position(doc) for doc in docs],
            total={"value": len(self.documents), "relation": "eq"},
        )

    def get(self, body: dict[str, Any]) -> dict[str, Any] | None:
        page = self.search(body)
        return page.documents[0] if page.documents else None

    def scan(self, body: dict[str, Any], page_size: int = EXPORT_PAGE_SIZE) -> FakeScan:
        if not self.healthy:
            raise StoreUnavailable("fake store is down")
        self.bodies.append(body)
        scan = FakeScan(list(self.documents), self.fail_after)
        self.scans.append(scan)
        return scan

    def digests(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        self.bodies.append(body)
        return list(self.digest_sources)

    def ping(self) -> bool:
        return self.healthy


def sort_position(document: dict[str, Any]) -> list[Any]:
    """A log's sort values as Elasticsearch returns them (epoch milliseconds, Log ID)."""
    moment = datetime.fromisoformat(document["@timestamp"].replace("Z", "+00:00"))
    return [round(moment.timestamp() * 1000), document["event"]["id"]]


class FakeScan:
    """An export's documents; records whether it was closed (the point in time released)."""

    def __init__(self, documents: list[dict[str, Any]], fail_after: int | None) -> None:
        self.documents = documents
        self.fail_after = fail_after
        self.closed = False

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for number, document in enumerate(self.documents):
            if number == self.fail_after:
                raise StoreUnavailable("fake store failed mid-export")
            yield document

    def close(self) -> None:
        self.closed = True


class RecordingPublisher:
    """Keeps acknowledged events in memory; `fail=True` makes delivery fail like a dead
    broker. `flushed` counts the acknowledgements waited for."""

    def __init__(self, fail: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.flushed = 0
        self.fail = fail

    def publish_and_wait(self, event: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("broker unavailable")
        self.events.append(event)
        self.flushed += 1


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
