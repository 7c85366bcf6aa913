"""Bulk indexing: what each status means, and retrying until nothing is left (no network)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any

import orjson
import pytest
from elastic_transport import (
    ApiResponseMeta,
    ConnectionError,
    HttpHeaders,
    NodeConfig,
    ObjectApiResponse,
)
from elasticsearch import ApiError

from consumer import indexer as indexer_module
from consumer.backoff import Backoff
from consumer.indexer import (
    Indexer,
    RecentLogs,
    Verdict,
    classify_item,
    item_error,
    new_client,
)
from consumer.pipeline import IndexAction, RawRecord
from consumer.settings import Settings
from schemas.dead_letter import REASON_ID_CONFLICT, REASON_INDEX_REJECTED

NO_WAIT = Backoff(initial=0, maximum=0)


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, Verdict.INDEXED),
        (201, Verdict.INDEXED),
        (409, Verdict.EXISTS),
        (400, Verdict.REJECTED),
        (429, Verdict.RETRY),
        (500, Verdict.RETRY),
        (503, Verdict.RETRY),
        (403, Verdict.RETRY),  # cluster block: about the cluster, not the document
        (404, Verdict.RETRY),  # index missing while auto-create is off
    ],
)
def test_classify_item(status: int, verdict: Verdict) -> None:
    assert classify_item(status) is verdict


@pytest.mark.parametrize(
    ("kind", "verdict"),
    [
        ("mapper_parsing_exception", Verdict.REJECTED),
        ("document_parsing_exception", Verdict.REJECTED),
        ("strict_dynamic_mapping_exception", Verdict.REJECTED),
        ("illegal_argument_exception", Verdict.REJECTED),
        ("index_closed_exception", Verdict.RETRY),  # an operator closed the month's index
        ("validation_exception", Verdict.RETRY),  # the cluster's shard limit is reached
        ("cluster_block_exception", Verdict.RETRY),
    ],
)
def test_a_400_is_judged_by_its_error_type(kind: str, verdict: Verdict) -> None:
    assert classify_item(400, kind) is verdict


def test_item_error_reads_elasticsearch_errors() -> None:
    item = {
        "status": 400,
        "error": {
            "type": "document_parsing_exception",
            "reason": "bad",
            "caused_by": {"type": "x", "reason": "y"},
        },
    }

    assert item_error(item) == {
        "_elasticsearch": ["document_parsing_exception: bad (caused by x: y)"]
    }


def action(i: int, fingerprint: str = "same", doc_id: str | None = None) -> IndexAction:
    record = RawRecord(value=b"{}", topic="t", partition=0, offset=i)
    document = {
        "@timestamp": "2026-11-26T08:59:58.120Z",
        "event": {"id": f"e-{i}", "ingested": "2026-11-26T09:00:00.000Z"},
        "audit": {"partner_id": "p-1", "fingerprint": fingerprint},
    }
    return IndexAction(record, "idx-2026.11", doc_id or f"e-{i}", document, fingerprint)


class FakeClient:
    """The lookups of the indexer: `stored` maps document ids to stored fingerprints."""

    def __init__(self, stored: dict[str, str] | None = None, searchable: bool = True) -> None:
        self.stored = stored or {}
        self.searchable = searchable  # False: stored since the last refresh (mget only)
        self.searches: list[list[str]] = []

    def _source(self, doc_id: str) -> dict[str, Any]:
        return {"audit": {"fingerprint": self.stored[doc_id]}}

    async def search(self, query: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        ids = query["ids"]["values"]
        self.searches.append(ids)
        found = [i for i in ids if i in self.stored] if self.searchable else []
        return {"hits": {"hits": [{"_id": i, "_source": self._source(i)} for i in found]}}

    async def mget(self, docs: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
        return {
            "docs": [
                {"_id": d["_id"], "found": True, "_source": self._source(d["_id"])}
                if d["_id"] in self.stored
                else {"_id": d["_id"], "found": False}
                for d in docs
            ]
        }


def meta(status: int) -> ApiResponseMeta:
    return ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=HttpHeaders(),
        duration=0.0,
        node=NodeConfig("http", "localhost", 9200),
    )


def api_error(status: int) -> ApiError:
    return ApiError("boom", meta=meta(status), body={"error": "boom"})


Script = Callable[[int, list[dict[str, Any]]], Iterable[int | BaseException]]


def fake_bulk(monkeypatch: pytest.MonkeyPatch, script: Script) -> list[list[str]]:
    """Replace the bulk API: each request answers per script(request_number, its actions);
    an exception among the answers fails the request as a whole (nothing of it answered)."""
    calls: list[list[str]] = []

    async def bulk(
        client: FakeClient, *, operations: bytes, **kwargs: Any
    ) -> ObjectApiResponse[Any]:
        assert kwargs == {"filter_path": indexer_module.BULK_REPLY_FIELDS}
        # NDJSON as bytes, sent as is: a header line, then the source line, per action.
        assert isinstance(operations, bytes) and operations.endswith(b"\n")
        lines = operations[:-1].split(b"\n")
        assert len(lines) % 2 == 0
        batch = [orjson.loads(line) for line in lines[0::2]]
        assert all(list(header) == ["create"] for header in batch)
        assert all(isinstance(orjson.loads(line), dict) for line in lines[1::2])
        calls.append([header["create"]["_id"] for header in batch])
        answers = list(script(len(calls), batch))
        for answer in answers:
            if isinstance(answer, BaseException):
                raise answer
        items = []
        for answer in answers[: len(batch)]:
            assert isinstance(answer, int)
            item: dict[str, Any] = {"status": answer}  # what BULK_REPLY_FIELDS keeps
            if answer >= 300:
                item["error"] = {"type": "mapper_parsing_exception", "reason": "nope"}
            items.append({"create": item})
        errors = any(i["create"]["status"] >= 300 for i in items)
        return ObjectApiResponse(body={"errors": errors, "items": items}, meta=meta(200))

    monkeypatch.setattr(FakeClient, "bulk", bulk, raising=False)
    return calls


def run(actions: list[IndexAction], client: FakeClient | None = None) -> indexer_module.BulkOutcome:
    fake = client or FakeClient({f"e-{i}": "same" for i in range(10)}, searchable=False)
    indexer = Indexer(Settings(), client=fake, backoff=NO_WAIT)  # type: ignore[arg-type]
    return asyncio.run(indexer.index(actions))


def test_everything_created_in_one_request(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_bulk(monkeypatch, lambda n, batch: [201] * len(batch))

    outcome = run([action(i) for i in range(3)])

    assert (outcome.indexed, outcome.already_indexed, outcome.rejected) == (3, 0, [])
    assert len(calls) == 1


def test_409_counts_as_already_indexed(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_bulk(monkeypatch, lambda n, batch: [409, 201])

    outcome = run([action(0), action(1)])

    assert (outcome.indexed, outcome.already_indexed) == (1, 1)


def test_400_is_rejected_as_a_dead_letter_and_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_bulk(monkeypatch, lambda n, batch: [201, 400, 201])

    outcome = run([action(i) for i in range(3)])

    assert outcome.indexed == 2
    assert [d.record.offset for d in outcome.rejected] == [1]
    assert outcome.rejected[0].reason == REASON_INDEX_REJECTED
    assert "mapper_parsing_exception" in outcome.rejected[0].errors["_elasticsearch"][0]
    assert len(calls) == 1


def test_429_and_5xx_items_are_retried_alone_until_they_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    answers = {1: [201, 429, 503, 409], 2: [429, 201], 3: [201]}
    calls = fake_bulk(monkeypatch, lambda n, batch: answers[n])

    outcome = run([action(i) for i in range(4)])

    assert calls == [["e-0", "e-1", "e-2", "e-3"], ["e-1", "e-2"], ["e-1"]]
    assert (outcome.indexed, outcome.already_indexed, outcome.rejected) == (3, 1, [])


def test_whole_request_failures_retry_what_was_not_answered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # One action per request, so that a request can fail after an earlier one was answered.
    monkeypatch.setattr(indexer_module, "MAX_CHUNK_BYTES", 1)
    down = ConnectionError("connection refused")
    answers: dict[int, list[int | BaseException]] = {
        1: [down],  # e-0's request: nothing answered, e-1 and e-2 never sent
        2: [api_error(429)],
        3: [201],  # e-0 answered before...
        4: [api_error(503)],  # ...e-1's request broke: e-1 and e-2 (not sent) go round again
        5: [201],
        6: [201],
    }
    calls = fake_bulk(monkeypatch, lambda n, batch: answers[n])

    outcome = run([action(i) for i in range(3)])

    assert calls == [["e-0"], ["e-0"], ["e-0"], ["e-1"], ["e-1"], ["e-2"]]
    assert outcome.indexed == 3


def test_a_failed_request_retries_all_of_its_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    answers: dict[int, list[int | BaseException]] = {
        1: [ConnectionError("connection refused")],
        2: [api_error(429)],
        3: [201, 201, 201],
    }
    calls = fake_bulk(monkeypatch, lambda n, batch: answers[n])

    outcome = run([action(i) for i in range(3)])

    assert calls == [["e-0", "e-1", "e-2"]] * 3
    assert (outcome.indexed, outcome.already_indexed, outcome.rejected) == (3, 0, [])


def test_documents_a_reply_leaves_out_are_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    # Never seen from Elasticsearch; the helper's zip dropped such documents silently.
    answers = {1: [201], 2: [201, 201]}
    calls = fake_bulk(monkeypatch, lambda n, batch: answers[n])

    outcome = run([action(i) for i in range(3)])

    assert calls == [["e-0", "e-1", "e-2"], ["e-1", "e-2"]]
    assert outcome.indexed == 3


def test_bulk_bodies_are_the_serialized_sources_split_by_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sources = [b'{"n":0}', b'{"n":11}', b'{"n":222}']
    actions = [
        IndexAction(a.record, a.index, a.doc_id, a.document, a.fingerprint, source)
        for a, source in zip([action(i) for i in range(3)], sources, strict=True)
    ]
    lines = [
        b'{"create":{"_index":"idx-2026.11","_id":"e-%d"}}\n%s\n' % (i, source)
        for i, source in enumerate(sources)
    ]
    bodies = indexer_module._bulk_bodies

    assert list(bodies(actions)) == [(3, b"".join(lines))]
    # At the bound exactly, the first two fit; the third starts the next body.
    monkeypatch.setattr(indexer_module, "MAX_CHUNK_BYTES", len(lines[0]) + len(lines[1]))
    assert list(bodies(actions)) == [(2, lines[0] + lines[1]), (3, lines[2])]
    # An action larger than the bound goes alone; the others are still grouped.
    monkeypatch.setattr(indexer_module, "MAX_CHUNK_BYTES", len(lines[1]))
    assert list(bodies(actions)) == [(1, lines[0]), (2, lines[1]), (3, lines[2])]
    monkeypatch.setattr(indexer_module, "MAX_CHUNK_BYTES", 1)
    assert list(bodies(actions[:1])) == [(1, lines[0])]
    # Not serialized yet (empty source): the document itself.
    assert list(bodies([action(0)])) == [
        (1, lines[0].split(b"\n")[0] + b"\n" + orjson.dumps(action(0).document) + b"\n")
    ]


def test_nothing_to_index_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_bulk(monkeypatch, lambda n, batch: [])

    assert run([]).indexed == 0
    assert calls == []


def test_retrying_can_be_cancelled_without_finishing(monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM during an outage: the task ends by cancellation, never by 'success'."""
    fake_bulk(monkeypatch, lambda n, batch: [ConnectionError("down")])
    indexer = Indexer(Settings(), client=FakeClient(), backoff=Backoff(0.01, 0.01))  # type: ignore[arg-type]

    async def scenario() -> None:
        task = asyncio.create_task(indexer.index([action(0)]))
        await asyncio.sleep(0.1)
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(scenario())


def test_a_stored_log_with_the_same_content_is_a_redelivery_not_sent_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = fake_bulk(monkeypatch, lambda n, batch: [201] * len(batch))

    outcome = run([action(0), action(1)], FakeClient({"e-0": "same"}))

    assert (outcome.indexed, outcome.already_indexed, outcome.rejected) == (1, 1, [])
    assert calls == [["e-1"]]


def test_a_stored_log_with_other_content_makes_the_newcomer_an_id_conflict(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Found by the lookup across every monthly index: occurred_at in another month.
    calls = fake_bulk(monkeypatch, lambda n, batch: [201] * len(batch))
    conflicts = indexer_module.metrics.ID_CONFLICTS._value.get()

    outcome = run([action(0, fingerprint="new"), action(1)], FakeClient({"e-0": "old"}))

    assert outcome.indexed == 1
    [letter] = outcome.rejected
    assert (letter.record.offset, letter.reason) == (0, REASON_ID_CONFLICT)
    assert "other content" in letter.errors["event_id"][0]
    assert calls == [["e-1"]]  # the stored log is never overwritten
    assert indexer_module.metrics.ID_CONFLICTS._value.get() == conflicts + 1


def test_a_409_is_settled_from_the_stored_log_fingerprint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stored since the last refresh: the search misses it, the create answers 409.
    fake_bulk(monkeypatch, lambda n, batch: [409, 409])
    client = FakeClient({"e-0": "same", "e-1": "old"}, searchable=False)

    outcome = run([action(0), action(1, fingerprint="new")], client)

    assert outcome.already_indexed == 1
    assert [(d.record.offset, d.reason) for d in outcome.rejected] == [(1, REASON_ID_CONFLICT)]


def test_the_same_id_twice_in_one_batch_is_sent_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_bulk(monkeypatch, lambda n, batch: [201] * len(batch))
    batch = [
        action(0, doc_id="d"),
        action(1, doc_id="d"),  # a duplicate delivery
        action(2, doc_id="d", fingerprint="other"),  # a reuse
    ]

    outcome = run(batch, FakeClient())

    assert calls == [["d"]]
    assert (outcome.indexed, outcome.already_indexed) == (1, 1)
    assert [(d.record.offset, d.reason) for d in outcome.rejected] == [(2, REASON_ID_CONFLICT)]


def test_logs_stored_moments_ago_are_known_before_the_index_refreshes(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_bulk(monkeypatch, lambda n, batch: [201] * len(batch))
    client = FakeClient(searchable=False)
    indexer = Indexer(Settings(), client=client, backoff=NO_WAIT)  # type: ignore[arg-type]

    asyncio.run(indexer.index([action(0, doc_id="d")]))
    # Next batch: the same id, another month's index, other content; search cannot see it yet.
    outcome = asyncio.run(indexer.index([action(1, doc_id="d", fingerprint="other")]))

    assert [d.reason for d in outcome.rejected] == [REASON_ID_CONFLICT]
    assert client.searches == [["d"]]  # the second lookup was answered from memory


def test_recent_logs_are_bounded_by_count_and_age() -> None:
    recent = RecentLogs(max_age_s=10, max_entries=2)
    recent.add("a", "1", now=0)
    recent.add("b", "2", now=1)
    recent.add("c", "3", now=2)
    assert (recent.get("a"), recent.get("b"), recent.get("c")) == (None, "2", "3")
    recent.add("d", "4", now=11.5)
    assert (recent.get("b"), recent.get("c"), recent.get("d")) == (None, "3", "4")


def test_the_client_reads_and_writes_json_with_orjson() -> None:
    """Not the stdlib's json: the bulk verdicts and lookups are parsed on the event loop."""
    client = new_client(Settings())
    serializer = client.transport.serializers.get_serializer("application/json")
    assert serializer.loads(b'{"items": [{"create": {"status": 201}}]}') == {
        "items": [{"create": {"status": 201}}]
    }
    assert type(serializer).__name__ == "OrjsonSerializer"
