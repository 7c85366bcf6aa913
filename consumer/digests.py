"""Signed digests of the logs this worker stored, chained per partner in Elasticsearch.

Why it is safe under redelivery, replay, SIGKILL, rebalances and several workers:

* Every log a batch ends with in the store (created now, or already there with the same
  content) is covered, from the document Elasticsearch holds. A redelivered event is simply
  covered again, with the same leaf: never a gap, and a repeat verifies.
* Offsets are committed only after the digests covering their records are stored (the
  agent flushes, then commits). A worker killed before that leaves its records uncommitted:
  they come back, are found stored, and are covered by whoever takes them.
* A partner's chain is appended with `create` at a deterministic id per (partner, seq):
  two workers racing for one sequence number cannot both win; the loser reads the winner
  (in real time), and signs again as the next one. No fork, no gap.

Digests are flushed per interval (`AUDIT_DIGEST_INTERVAL_SECONDS`) or when many logs wait,
not per batch, so a slow trickle does not create one digest per partner per batch.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from time import monotonic
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, ConflictError, NotFoundError

from consumer import metrics
from consumer.backoff import Backoff, RetryLater
from consumer.health import Health
from schemas.document import iso_ms
from schemas.index_template import digest_index, digest_index_body
from schemas.integrity import (
    GENESIS,
    HEADER_FIELDS,
    Digest,
    Entry,
    digest_doc_id,
    entry_of,
    sign_digest,
    span,
    stored_source,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Covered:
    """A log that is in the store with this document: to be covered by its partner's next
    digest."""

    partner_id: str
    entry: Entry
    ingested: str

    @classmethod
    def of(cls, document: Mapping[str, Any], leaf: str | None = None) -> Covered:
        """`leaf`: the stored document's leaf hash when known (the worker's pure core hashes
        each document it serializes); otherwise hashed here from `document`."""
        source = stored_source(document) if leaf is None else document
        return cls(
            str(source["audit"]["partner_id"]),
            entry_of(source, leaf),
            str(source["event"].get("ingested") or ""),
        )


@dataclass
class _Pending:
    entries: dict[str, Entry] = field(default_factory=dict)
    ingested: list[str] = field(default_factory=list)


class DigestLog:
    """Collects covered logs per partner; `flush` signs and stores one digest per partner."""

    def __init__(
        self,
        client: Any,
        prefix: str,
        key: Ed25519PrivateKey,
        interval_s: float = 10.0,
        max_leaves: int = 10_000,
        backoff: Backoff | None = None,
        health: Health | None = None,
    ) -> None:
        self._client = client
        self.index = digest_index(prefix)
        self._key = key
        self.interval_s = interval_s
        self.max_leaves = max_leaves
        self._backoff = backoff or Backoff()
        self._health = health or Health()
        self._pending: dict[str, _Pending] = {}
        self._heads: dict[str, tuple[int, str]] = {}
        self._waiting = 0
        self._last_flush = monotonic()

    @property
    def client(self) -> AsyncElasticsearch:
        result: AsyncElasticsearch = self._client() if callable(self._client) else self._client
        return result

    def add(self, covered: Iterable[Covered]) -> None:
        for item in covered:
            pending = self._pending.setdefault(item.partner_id, _Pending())
            if item.entry.log_id not in pending.entries:
                pending.entries[item.entry.log_id] = item.entry
                pending.ingested.append(item.ingested)
                self._waiting += 1

    def due(self, now: float | None = None) -> bool:
        """Whether to flush now: the interval passed, or many logs wait."""
        elapsed = (monotonic() if now is None else now) - self._last_flush
        return self._waiting >= self.max_leaves or elapsed >= self.interval_s

    async def flush(self) -> int:
        """Sign and store a digest per partner with waiting logs; retries until stored.
        Returns how many digests were written."""
        written = 0
        if self._pending:
            what = f"digest index {self.index}"
            async for attempt in self._backoff.retrying(what, on_retry=metrics.ES_RETRIES.inc):
                with attempt:
                    written += await self._flush_once()
        self._last_flush = monotonic()
        return written

    async def _flush_once(self) -> int:
        try:
            await self._learn_heads([p for p in self._pending if p not in self._heads])
            written = 0
            for partner_id in list(self._pending):
                # Taken out before the write: a batch in flight (app.InFlight) may cover
                # more logs of this partner meanwhile; they wait for the next digest.
                pending = self._pending.pop(partner_id)
                try:
                    await self._append(partner_id, pending)
                except BaseException:
                    self._put_back(partner_id, pending)
                    raise
                written += 1
                self._waiting -= len(pending.entries)
        except (TransportError, ApiError) as error:
            if isinstance(error, ApiError) and error.status_code == 404:
                await self._create_index()
            reason = f"{self.index}: {type(error).__name__}: {error}"
            self._health.retrying(reason)
            raise RetryLater(reason) from error
        metrics.DIGESTS.inc(written)
        return written

    def _put_back(self, partner_id: str, pending: _Pending) -> None:
        """A digest that was not stored: its logs wait again, before any covered since."""
        since = self._pending.get(partner_id, _Pending())
        pending.entries.update(since.entries)
        pending.ingested += since.ingested
        self._pending[partner_id] = pending

    async def _append(self, partner_id: str, pending: _Pending) -> None:
        """Add one digest to the partner's chain, moving past sequence numbers others took."""
        seq, previous = self._heads.get(partner_id, (0, GENESIS))
        entries = list(pending.entries.values())
        bounds = {
            **span(pending.ingested, "ingested"),
            **span((entry.timestamp for entry in entries), "timestamp"),
        }
        created_at = iso_ms(datetime.now(UTC))
        while True:
            digest = sign_digest(
                self._key, partner_id, seq + 1, previous, created_at, entries, bounds
            )
            try:
                await self.client.create(
                    index=self.index,
                    id=digest_doc_id(partner_id, seq + 1),
                    document=digest_document(digest),
                )
            except ConflictError:
                # Another worker holds this sequence number: continue after it.
                winner = await self._read(partner_id, seq + 1)
                seq, previous = winner.seq, winner.hash
                continue
            self._heads[partner_id] = (digest.seq, digest.hash)
            metrics.DIGEST_LEAVES.inc(len(entries))
            return

    async def _read(self, partner_id: str, seq: int) -> Digest:
        response = await self.client.get(
            index=self.index,
            id=digest_doc_id(partner_id, seq),
            source_includes=[*HEADER_FIELDS, "signature"],
            realtime=True,
        )
        return Digest.from_json(response["_source"])

    async def _learn_heads(self, partners: list[str]) -> None:
        """The latest digest of each partner (a search: not real time, so a head written in
        the last second may be missed; `_append` then meets it as a conflict)."""
        if not partners:
            return
        try:
            response = await self.client.search(
                index=self.index,
                size=0,
                query={"terms": {"partner_id": partners}},
                aggs={
                    "partners": {
                        "terms": {"field": "partner_id", "size": len(partners)},
                        "aggs": {
                            "head": {
                                "top_hits": {
                                    "size": 1,
                                    "sort": [{"seq": "desc"}],
                                    "_source": [*HEADER_FIELDS, "signature"],
                                }
                            }
                        },
                    }
                },
            )
        except NotFoundError:
            await self._create_index()
            return
        for bucket in response["aggregations"]["partners"]["buckets"]:
            head = Digest.from_json(bucket["head"]["hits"]["hits"][0]["_source"])
            self._heads[head.partner_id] = (head.seq, head.hash)

    async def _create_index(self) -> None:
        try:
            await self.client.indices.create(index=self.index, **digest_index_body())
        except ApiError as error:
            if error.error != "resource_already_exists_exception":
                raise


def digest_document(digest: Digest) -> dict[str, Any]:
    """The digest as stored: header, signature, entries, and the covered ids (searchable)."""
    return {**digest.to_json(), "entry_ids": [entry.log_id for entry in digest.entries]}
