"""The Elasticsearch adapter: the only module of `api/` that talks to Elasticsearch.

Views receive a `Store`; tests substitute a fake with the same three methods. Every
request body it runs was built by `api.query`, which puts the caller's scope in it.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import msgspec
from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.serializer import CompatibilityModeJsonSerializer, JsonSerializer

EXPORT_PAGE_SIZE = 1000
PIT_KEEP_ALIVE = "2m"


log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """Elasticsearch could not answer; the API answers 503, never a stack trace."""


class SearchRejected(Exception):
    """Elasticsearch refused the search itself (HTTP 400): a value of the request that
    passed the API's own checks is still one it will not take. The API answers 400."""


@dataclass
class SearchPage:
    documents: list[dict[str, Any]]
    sort_values: list[list[Any]]
    total: dict[str, Any] = field(default_factory=lambda: {"value": 0, "relation": "eq"})


class Scan(Iterable[dict[str, Any]], Protocol):
    """The documents of an export; `close()` releases what they hold (a point in time),
    also when they were never iterated (an export refused before it streamed)."""

    def close(self) -> None: ...


class Store(Protocol):
    def search(self, body: dict[str, Any]) -> SearchPage: ...

    def get(self, body: dict[str, Any]) -> dict[str, Any] | None: ...

    def scan(self, body: dict[str, Any], page_size: int = EXPORT_PAGE_SIZE) -> Scan: ...

    def digests(self, body: dict[str, Any]) -> list[dict[str, Any]]: ...

    def ping(self) -> bool: ...


class ElasticsearchStore:
    def __init__(self, client: Elasticsearch, index: str, digest_index: str = "") -> None:
        self._client = client
        _decode_replies_fast(client)
        self._index = index
        self._digest_index = digest_index

    def digests(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """Digests (`_source`) a body built by `api.integrity` selects; none before the
        worker stored its first one."""
        response = self._call(
            self._client.search,
            index=self._digest_index,
            ignore_unavailable=True,
            allow_no_indices=True,
            allow_partial_search_results=False,
            **body,
        )
        return [hit["_source"] for hit in response["hits"]["hits"]]

    def search(self, body: dict[str, Any]) -> SearchPage:
        response = self._call(
            self._client.search,
            index=self._index,
            # The alias appears with the first indexed log; before that, an empty list.
            ignore_unavailable=True,
            allow_no_indices=True,
            # A shard that fails must fail the search: partial results would be an audit
            # log silently missing entries (a month being migrated, a node restarting).
            allow_partial_search_results=False,
            **body,
        )
        return _page(response)

    def get(self, body: dict[str, Any]) -> dict[str, Any] | None:
        page = self.search(body)
        return page.documents[0] if page.documents else None

    def scan(self, body: dict[str, Any], page_size: int = EXPORT_PAGE_SIZE) -> Scan:
        """Every matching document, in `body["sort"]` order, one page in memory at a time.

        The point in time is opened and the first page fetched here, eagerly, so an
        unreachable or refusing Elasticsearch is a 503 or 400 before the export's response
        starts (and before its download event is sent), not a truncated 200. The point in
        time pins the view of the indices: logs arriving during a long export neither shift
        pages nor appear twice.
        """
        pit = self._call(
            self._client.open_point_in_time,
            index=self._index,
            keep_alive=PIT_KEEP_ALIVE,
            ignore_unavailable=True,
            allow_partial_search_results=False,
        )
        scan = PointInTimeScan(self, pit["id"], body, page_size)
        try:
            scan.start()
        except BaseException:
            scan.close()
            raise
        return scan

    def close_point_in_time(self, pit_id: str) -> None:
        # If closing fails, the point in time expires by itself after PIT_KEEP_ALIVE.
        with contextlib.suppress(ApiError, TransportError):
            self._client.close_point_in_time(id=pit_id)

    def ping(self) -> bool:
        """Whether Elasticsearch answers. Not `client.ping()`: that is `HEAD /`, which the
        minimal distribution lacks (the `rest-root` module), while cluster health is core."""
        try:
            health = self._client.cluster.health(timeout="2s")
        except (ApiError, TransportError):
            return False
        return health.get("status") in ("green", "yellow")

    @staticmethod
    def _call(method: Any, **kwargs: Any) -> Any:
        for delay in (*SHARD_RETRY_DELAYS_S, None):
            try:
                return _answer(method, **kwargs)
            except _MissingShards:
                if delay is None:
                    raise StoreUnavailable("Elasticsearch answered 503: shards missing") from None
                # An index left the alias (a migration, retention) after this search had
                # resolved it: asking again sees the alias as it is now, whole.
                time.sleep(delay)
        raise AssertionError("unreachable")


#: Waits before asking again when shards went missing under a search (an alias swap).
SHARD_RETRY_DELAYS_S = (0.05, 0.2, 0.5)


class _MissingShards(Exception):
    """A search met an index that was removed (or not yet allocated) while it ran."""


def _answer(method: Any, **kwargs: Any) -> Any:
    """`method(**kwargs)`, its failures as the API's own exceptions."""
    try:
        return method(**kwargs)
    except TransportError as exc:
        raise StoreUnavailable(f"Elasticsearch unreachable: {exc.__class__.__name__}") from exc
    except ApiError as exc:
        if exc.status_code == 400:
            raise SearchRejected(_reason(exc)) from exc
        if exc.status_code == 503 and _shards_missing(exc):
            raise _MissingShards from exc
        # 429 and 5xx, but also 401/403 (our credentials) or a 404 nobody expected:
        # the backend's problem, never the caller's, and never a stack trace.
        log.warning("Elasticsearch answered %s: %s", exc.status_code, _reason(exc))
        raise StoreUnavailable(f"Elasticsearch answered {exc.status_code}") from exc


def _shards_missing(error: ApiError) -> bool:
    text = str(error.body)
    return "missing shards" in text or "no_shard_available_action_exception" in text


class PointInTimeScan:
    """An export's documents through a point in time and `search_after`, a page ahead.

    `start()` fetches the first page; iterating yields every document (fetching page n+1
    while page n is written); `close()` (also at the end of iteration, or when the client
    went away) closes the point in time once.
    """

    def __init__(
        self, store: ElasticsearchStore, pit_id: str, body: dict[str, Any], page_size: int
    ) -> None:
        self._store = store
        self._pit_id = pit_id
        self._body = body
        self._page_size = page_size
        self._first: SearchPage | None = None
        self._closed = False
        self._lock = threading.Lock()

    def start(self) -> None:
        self._first = self._fetch(None)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        try:
            yield from _prefetched(self._pages())
        finally:
            self.close()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._store.close_point_in_time(self._pit_id)

    def _pages(self) -> Generator[list[dict[str, Any]], None, None]:
        page = self._first if self._first is not None else self._fetch(None)
        while True:
            if page.documents:
                yield page.documents
            if len(page.documents) < self._page_size:
                return
            page = self._fetch(page.sort_values[-1])

    def _fetch(self, search_after: list[Any] | None) -> SearchPage:
        extra: dict[str, Any] = {}
        if search_after is not None:
            extra["search_after"] = search_after
        response = self._store._call(
            self._store._client.search,
            pit={"id": self._pit_id, "keep_alive": PIT_KEEP_ALIVE},
            size=self._page_size,
            track_total_hits=False,
            allow_partial_search_results=False,
            query=self._body["query"],
            sort=self._body["sort"],
            **extra,
        )
        self._pit_id = response.get("pit_id", self._pit_id)
        return _page(response)


_decode_json = msgspec.json.Decoder().decode


class _FastReplies(JsonSerializer):
    """Replies decoded in C straight from the bytes (an export page is 1 MB of JSON);
    requests still encoded by the client's own serializer.

    msgspec rather than orjson: the same speed here, and the same values as the standard
    library's decoder, where orjson turns an integer beyond 64 bits (a metadata value) into
    a float. What msgspec refuses (NaN, a lone surrogate) goes to the standard decoder."""

    def json_loads(self, data: bytes) -> Any:
        try:
            return _decode_json(data)
        except msgspec.DecodeError:
            return super().json_loads(data)


class _CompatibleFastReplies(_FastReplies, CompatibilityModeJsonSerializer):
    pass


def _decode_replies_fast(client: Elasticsearch) -> None:
    """Give `client` the C decoder for its JSON replies (both JSON media types Elasticsearch
    answers with), where it has the default serializers: decoding the pages is a large part
    of an export's CPU, and the standard library's decoder takes 1.6-1.8x as long."""
    serializers = getattr(getattr(client, "transport", None), "serializers", None)
    table = getattr(serializers, "serializers", None)
    if not isinstance(table, dict):
        return
    for kind, faster in (
        (JsonSerializer, _FastReplies),
        (CompatibilityModeJsonSerializer, _CompatibleFastReplies),
    ):
        if type(table.get(kind.mimetype)) is kind:
            table[kind.mimetype] = faster()


def _reason(error: ApiError) -> str:
    """Elasticsearch's own words for a refusal (the root cause's type and reason)."""
    body = error.body if isinstance(error.body, dict) else {}
    detail = body.get("error")
    if not isinstance(detail, dict):
        detail = {}
    causes = detail.get("root_cause") or [detail]
    cause = causes[0] if causes and isinstance(causes[0], dict) else {}
    kind, reason = cause.get("type") or error.error, cause.get("reason") or ""
    return f"{kind}: {reason}".strip(": ")


def _page(response: Any) -> SearchPage:
    shards = response.get("_shards") or {}
    if shards.get("failed"):  # belt and braces: never serve part of the answer as all of it
        raise StoreUnavailable(f"{shards['failed']} of {shards.get('total')} shards failed")
    hits = response["hits"]
    total = hits.get("total") or {"value": len(hits["hits"]), "relation": "eq"}
    return SearchPage(
        documents=[hit["_source"] for hit in hits["hits"]],
        sort_values=[hit.get("sort", []) for hit in hits["hits"]],
        total={"value": total["value"], "relation": total["relation"]},
    )


_DONE = object()


def _prefetched(pages: Generator[list[dict[str, Any]], None, None]) -> Iterator[dict[str, Any]]:
    """The documents of `pages`, fetching page n+1 in a thread while page n is consumed.

    An export alternates waiting for Elasticsearch and formatting rows; overlapping the two
    is most of its speed. At most two pages are in memory (the one being written and the
    one waiting in the queue), so memory stays flat. When the consumer stops early (the
    client went away), the fetching thread stops at its next page and closes the point in
    time; an error while fetching is raised to the consumer.
    """
    handoff: queue.Queue[Any] = queue.Queue(maxsize=1)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                handoff.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def fetch() -> None:
        try:
            for page in pages:
                if not offer(page):
                    return
            offer(_DONE)
        except BaseException as exc:  # handed to the consumer, who raises it
            offer(exc)
        finally:
            pages.close()

    thread = threading.Thread(target=fetch, name="export-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = handoff.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield from item
    finally:
        stop.set()
