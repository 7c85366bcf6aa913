"""Test doubles for the read API: a store without Elasticsearch and a publisher without
Kafka. Importing this connects to nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from api.store import EXPORT_PAGE_SIZE, SearchPage, StoreUnavailable


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
