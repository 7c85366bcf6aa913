"""An export is served only with its own download event acknowledged, never looks complete
when it is not, and never leaks its point in time; Elasticsearch refusals are 400s.
(Issue 11, points 1, 4 and 5; the real-process versions are in tests/integration.)"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from elasticsearch import ApiError, TransportError

from api.app import create_app
from api.devtoken import mint_token
from api.settings import Settings
from api.store import ElasticsearchStore, SearchRejected, StoreUnavailable
from api.use_cases import INCOMPLETE_EXPORT_MESSAGE
from schemas.document import build_document
from schemas.event import validate_event
from tests.support.doubles import FakeStore, RecordingPublisher
from tests.support.events import make_event

SECRET = "unit-test-secret-of-at-least-thirty-two-bytes"
SETTINGS = Settings(jwt_secret=SECRET)
EXPORT = "/api/v1/audit-logs/export"


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(SECRET, 'u-1', 'p-100', 'owner', [])}"}


def documents(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    return [
        build_document(
            validate_event(make_event(event_id=f"e-{i}", occurred_at=now - timedelta(seconds=i))),
            now,
        )
        for i in range(count)
    ]


def test_a_refused_export_closes_its_search() -> None:
    store = FakeStore(documents(3))
    app = create_app(SETTINGS, store=store, publisher=RecordingPublisher(fail=True))
    response = app.test_client().get(EXPORT, headers=auth())
    assert response.status_code == 503
    [scan] = store.scans
    assert scan.closed


@pytest.mark.parametrize("fmt", ["csv", "ndjson"])
def test_a_failure_mid_stream_fails_the_transfer_and_records_it(fmt: str) -> None:
    store = FakeStore(documents(2000))
    store.fail_after = 1500
    publisher = RecordingPublisher()
    app = create_app(SETTINGS, store=store, publisher=publisher)
    response = app.test_client().get(f"{EXPORT}?format={fmt}", headers=auth())
    assert response.status_code == 200  # the headers left before the failure
    received = bytearray()
    with pytest.raises(StoreUnavailable):  # raised through the server: it drops the connection
        for chunk in response.response:
            received += chunk
    assert store.scans[0].closed
    download, incomplete = publisher.events
    assert incomplete["event_id"] == f"{download['event_id']}.incomplete"
    assert incomplete["status"] == "failure"
    assert incomplete["status_reason"] == "backend_failed"
    assert incomplete["metadata"]["download_event_id"] == download["event_id"]
    assert incomplete["metadata"]["logs_read"] == 1500
    validate_event(incomplete)  # the worker will index it
    if fmt == "ndjson":
        last = json.loads(received.decode().splitlines()[-1])
        assert last == {"error": INCOMPLETE_EXPORT_MESSAGE}


def test_a_client_that_stops_reading_is_recorded_as_incomplete() -> None:
    store = FakeStore(documents(3000))
    publisher = RecordingPublisher()
    app = create_app(SETTINGS, store=store, publisher=publisher)
    response = app.test_client().get(f"{EXPORT}?format=csv", headers=auth())
    body = iter(response.response)
    next(body)
    response.close()  # what the WSGI server does when the client went away
    assert store.scans[0].closed
    assert [e["status_reason"] for e in publisher.events[1:]] == ["client_disconnected"]


def test_a_complete_export_records_one_event_and_closes() -> None:
    store = FakeStore(documents(1200))
    publisher = RecordingPublisher()
    app = create_app(SETTINGS, store=store, publisher=publisher)
    body = app.test_client().get(f"{EXPORT}?format=ndjson", headers=auth()).get_data()
    assert len(body.splitlines()) == 1200
    assert len(publisher.events) == 1
    assert store.scans[0].closed


def test_each_export_waits_for_its_own_acknowledgement_only() -> None:
    """Two threads share the publisher: one's failure is never the other's."""

    class OneBadEvent(RecordingPublisher):
        def publish_and_wait(self, event: dict[str, Any]) -> None:
            if event["metadata"].get("q") == "doomed":
                raise RuntimeError("this message was refused")
            super().publish_and_wait(event)

    store, publisher = FakeStore(documents(5)), OneBadEvent()
    app = create_app(SETTINGS, store=store, publisher=publisher)
    statuses: dict[str, int] = {}

    def export(q: str) -> None:
        response = app.test_client().get(f"{EXPORT}?q={q}", headers=auth())
        response.get_data()
        statuses[q] = response.status_code

    threads = [threading.Thread(target=export, args=(q,)) for q in ("doomed", "fine", "good")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == {"doomed": 503, "fine": 200, "good": 200}


# --- Elasticsearch's refusals are the API's 400 ---------------------------------------------


class RefusingStore(FakeStore):
    def search(self, body: dict[str, Any]) -> Any:
        raise SearchRejected("illegal_argument_exception: Result window is too large")

    def scan(self, body: dict[str, Any], page_size: int = 1000) -> Any:
        raise SearchRejected("illegal_argument_exception: Result window is too large")


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/api/v1/audit-logs?q=acme", "q"),
        ("/api/v1/audit-logs?status=success", "status"),
        ("/api/v1/audit-logs", "query"),
        ("/api/v1/audit-logs/e-1", "query"),
        (f"{EXPORT}?format=csv&q=acme", "q"),
    ],
)
def test_an_elasticsearch_400_is_a_400_naming_a_parameter(path: str, named: str) -> None:
    publisher = RecordingPublisher()
    app = create_app(SETTINGS, store=RefusingStore(), publisher=publisher)
    response = app.test_client().get(path, headers=auth())
    assert response.status_code == 400
    assert named in response.json["errors"]["query"]
    assert publisher.events == []  # a refused export records nothing


class FakeClient:
    """Elasticsearch's client as the store calls it; `search` answers from `answers`."""

    def __init__(self, answers: list[Any]) -> None:
        self.answers = answers
        self.closed: list[str] = []

    def open_point_in_time(self, **_: Any) -> dict[str, str]:
        return {"id": "pit-1"}

    def search(self, **_: Any) -> Any:
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def close_point_in_time(self, id: str) -> None:
        self.closed.append(id)


def es_error(status: int, kind: str) -> ApiError:
    from elastic_transport import ApiResponseMeta, HttpHeaders

    meta = ApiResponseMeta(status, "1.1", HttpHeaders(), 0.01, None)  # type: ignore[arg-type]
    body = {"error": {"root_cause": [{"type": kind, "reason": "because"}], "type": kind}}
    return ApiError(kind, meta, body)


def page(count: int) -> dict[str, Any]:
    hits = [{"_source": {"n": i}, "sort": [i, f"e-{i}"]} for i in range(count)]
    return {"pit_id": "pit-1", "hits": {"hits": hits}}


@pytest.mark.parametrize(
    ("failure", "raised"),
    [
        (es_error(400, "illegal_argument_exception"), SearchRejected),
        (es_error(404, "search_context_missing_exception"), StoreUnavailable),
        (es_error(503, "unavailable"), StoreUnavailable),
        (TransportError("connection refused"), StoreUnavailable),
    ],
)
def test_the_first_page_fails_before_the_export_starts_and_closes_the_pit(
    failure: Exception, raised: type[Exception]
) -> None:
    client = FakeClient([failure])
    with pytest.raises(raised):
        ElasticsearchStore(client, "alias").scan({"query": {}, "sort": []})  # type: ignore[arg-type]
    assert client.closed == ["pit-1"]


def test_an_unread_scan_closes_its_pit_once_when_closed() -> None:
    client = FakeClient([page(2)])
    scan = ElasticsearchStore(client, "alias").scan({"query": {}, "sort": []}, page_size=2)  # type: ignore[arg-type]
    scan.close()
    scan.close()
    assert client.closed == ["pit-1"]


def test_a_later_page_failure_reaches_the_reader_and_closes_the_pit() -> None:
    client = FakeClient([page(2), page(2), es_error(404, "search_context_missing_exception")])
    scan = ElasticsearchStore(client, "alias").scan({"query": {}, "sort": []}, page_size=2)  # type: ignore[arg-type]
    seen = []
    with pytest.raises(StoreUnavailable):
        for document in scan:
            seen.append(document["n"])
    assert seen == [0, 1, 0, 1]
    assert client.closed == ["pit-1"]


def test_a_search_with_a_failed_shard_is_unavailable_never_a_partial_answer() -> None:
    """A month being migrated, a node restarting: some shards fail. Serving the rest as the
    answer would show an audit log with holes; it is a 503 instead."""
    partial = {**page(2), "_shards": {"total": 2, "successful": 1, "failed": 1}}
    client = FakeClient([partial])
    with pytest.raises(StoreUnavailable, match="1 of 2 shards failed"):
        ElasticsearchStore(client, "alias").search({"query": {}})  # type: ignore[arg-type]


def test_a_search_meeting_an_index_removed_under_it_asks_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An alias swap (migration, retention) removed an index this search had resolved:
    asked again, the alias is whole; only a lasting failure is a 503."""
    from api import store as store_module

    monkeypatch.setattr(store_module, "SHARD_RETRY_DELAYS_S", (0, 0))
    missing = es_error(503, "search_phase_execution_exception")
    missing.body["error"]["caused_by"] = {"reason": "Search rejected due to missing shards [x]"}
    client = FakeClient([missing, page(2)])
    found = ElasticsearchStore(client, "alias").search({"query": {}})  # type: ignore[arg-type]
    assert len(found.documents) == 2
    client = FakeClient([missing, missing, missing])
    with pytest.raises(StoreUnavailable):
        ElasticsearchStore(client, "alias").search({"query": {}})  # type: ignore[arg-type]
    other = FakeClient([es_error(503, "unavailable"), page(2)])
    with pytest.raises(StoreUnavailable):  # other 503s are not retried here
        ElasticsearchStore(other, "alias").search({"query": {}})  # type: ignore[arg-type]
