"""The export's page prefetching: order, errors and early stops (no Elasticsearch)."""

from __future__ import annotations

import threading
import time
from collections.abc import Generator
from typing import Any

import pytest

from api.store import StoreUnavailable, _prefetched


def pages(
    count: int, size: int, closed: threading.Event, fail_at: int | None = None
) -> Generator[list[dict[str, Any]], None, None]:
    try:
        for page in range(count):
            if page == fail_at:
                raise StoreUnavailable("lost Elasticsearch mid-export")
            yield [{"n": page * size + i} for i in range(size)]
    finally:
        closed.set()  # stands for closing the point in time


def test_every_document_in_order() -> None:
    closed = threading.Event()
    assert [d["n"] for d in _prefetched(pages(7, 3, closed))] == list(range(21))
    assert closed.wait(2)


def test_no_pages_is_no_documents() -> None:
    closed = threading.Event()
    assert list(_prefetched(pages(0, 3, closed))) == []
    assert closed.wait(2)


def test_a_fetch_error_reaches_the_consumer_after_the_pages_before_it() -> None:
    closed = threading.Event()
    seen = []
    with pytest.raises(StoreUnavailable):
        for document in _prefetched(pages(5, 2, closed, fail_at=3)):
            seen.append(document["n"])
    assert seen == [0, 1, 2, 3, 4, 5]
    assert closed.wait(2)


def test_an_early_stop_ends_the_fetching_thread_and_closes_the_pages() -> None:
    closed = threading.Event()
    before = threading.active_count()
    documents = _prefetched(pages(1_000_000, 10, closed))
    assert next(documents) == {"n": 0}
    documents.close()  # the client went away
    assert closed.wait(5)
    deadline = time.monotonic() + 5
    while threading.active_count() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert threading.active_count() == before


def test_at_most_two_pages_are_held() -> None:
    """The fetcher runs at most one page ahead of the consumer (flat memory)."""
    produced = []

    def counting() -> Generator[list[dict[str, Any]], None, None]:
        for page in range(50):
            produced.append(page)
            yield [{"n": page}]

    documents = _prefetched(counting())
    next(documents)
    time.sleep(0.3)
    # page 0 consumed, page 1 queued, page 2 produced and waiting to be queued
    assert len(produced) <= 3
    documents.close()
