"""A digest being written while the next batch covers more logs of its partner (the worker
overlaps batches, consumer/ingest.py InFlight): none of those logs is left unsigned."""

from __future__ import annotations

import asyncio
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig
from elasticsearch import ApiError

from consumer.digests import Covered, DigestLog
from schemas.integrity import Entry


def covered(log_id: str) -> Covered:
    return Covered("p-1", Entry(log_id, "ab" * 32, "2026-12-01T00:00:00.000Z"), "")


class SlowStore:
    """A digest index whose `create` waits until released (or fails once, if told)."""

    def __init__(self, fail_first: bool = False) -> None:
        self.digests: list[dict[str, Any]] = []
        self.writing = asyncio.Event()
        self.release = asyncio.Event()
        self._fail = fail_first

    async def search(self, **_kwargs: Any) -> dict[str, Any]:
        return {"aggregations": {"partners": {"buckets": []}}}

    async def create(self, *, index: str, id: str, document: dict[str, Any]) -> None:
        self.writing.set()
        await self.release.wait()
        if self._fail:
            self._fail = False
            meta = ApiResponseMeta(503, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "x", 1))
            raise ApiError("unavailable", meta, {})
        self.digests.append(document)

    def signed(self) -> list[str]:
        return [entry["id"] for digest in self.digests for entry in digest["entries"]]


async def flush_while_covering(store: SlowStore) -> DigestLog:
    digests = DigestLog(store, "t", Ed25519PrivateKey.generate(), interval_s=0)
    digests.add([covered("a")])
    flushing = asyncio.create_task(digests.flush())
    await store.writing.wait()  # the digest of "a" is on its way...
    digests.add([covered("b")])  # ...when the batch in flight covers "b"
    store.release.set()
    await flushing
    await digests.flush()
    return digests


def test_logs_covered_during_a_flush_go_in_the_next_digest() -> None:
    store = SlowStore()
    asyncio.run(flush_while_covering(store))
    assert store.signed() == ["a", "b"]


def test_a_failed_digest_keeps_its_logs_and_those_covered_since() -> None:
    store = SlowStore(fail_first=True)
    asyncio.run(flush_while_covering(store))
    assert sorted(store.signed()) == ["a", "b"]
