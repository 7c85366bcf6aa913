"""Elasticsearch adapter: the index template at start-up, then bulk `create`s that never drop.

Per item: 2xx = indexed; 409 = already indexed (a redelivery: `create` with `_id` = event id);
400 = Elasticsearch refuses the document itself (mapping/parse error) -> dead letter; anything
else (429, 5xx, ...) -> retried. A failed request as a whole (connection refused, timeout, 429,
5xx) -> every item not yet answered is retried. Retries back off exponentially with jitter and
never give up: the batch is not committed until Elasticsearch acknowledged every document.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import Enum
from time import monotonic
from typing import Any, TypeVar

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, Elasticsearch
from elasticsearch.serializer import OrjsonSerializer

from consumer import metrics
from consumer.backoff import Backoff, RetryLater
from consumer.digests import Covered
from consumer.health import Health
from consumer.pipeline import DeadLetter, IndexAction
from consumer.settings import Settings
from schemas.dead_letter import REASON_ID_CONFLICT, REASON_INDEX_REJECTED
from schemas.document import NAMESPACE
from schemas.index_template import index_template, mappings, read_alias, template_name

log = logging.getLogger(__name__)

#: A bulk request body's bound: well under Elasticsearch's 100 MB request limit, even with
#: 256 KiB events (a single larger action is sent alone).
MAX_CHUNK_BYTES = 20 * 1024 * 1024
#: The parts of a bulk reply the indexer reads (`filter_path`).
BULK_REPLY_FIELDS = "errors,items.*.status,items.*.error"
#: Document ids per stored-log lookup.
LOOKUP_CHUNK = 1000

T = TypeVar("T")
R = TypeVar("R")


class Verdict(Enum):
    INDEXED = "indexed"
    #: 409 on create: a log with this id exists; its content decides redelivery or conflict.
    EXISTS = "exists"
    REJECTED = "rejected"
    RETRY = "retry"


#: 400s that are about the cluster, not the document: the same document will be accepted
#: once an operator (or time) fixes the cluster, so they are retried, never dead-lettered.
CLUSTER_SIDE_ERRORS = frozenset(
    {
        "index_closed_exception",  # a monthly index was closed
        "validation_exception",  # e.g. "this action would add [1] shards ... maximum shards open"
        "cluster_block_exception",
        "index_not_found_exception",
        "invalid_index_name_exception",  # a name clashing with an alias or a data stream
        "es_rejected_execution_exception",
        "circuit_breaking_exception",
        "unavailable_shards_exception",
        "no_shard_available_action_exception",
        "process_cluster_event_timeout_exception",
    }
)


def classify_item(status: int, error_type: str | None = None) -> Verdict:
    """What one bulk item's status and error type mean for the event behind it."""
    if 200 <= status < 300:
        return Verdict.INDEXED
    if status == 409:
        return Verdict.EXISTS
    if status == 400 and error_type not in CLUSTER_SIDE_ERRORS:
        # mapper_parsing_exception, document_parsing_exception, illegal_argument_exception:
        # the same bytes will fail the same way, so retrying would block the partition.
        return Verdict.REJECTED
    # 429 (back-pressure), 5xx, a 400 about the cluster, and other 4xx that are about the
    # cluster rather than the document (403 cluster block, 404 index missing): retry.
    return Verdict.RETRY


def error_type(item: dict[str, Any]) -> str | None:
    error = item.get("error")
    return str(error.get("type")) if isinstance(error, dict) else None


def item_error(item: dict[str, Any]) -> dict[str, list[str]]:
    """A bulk item's error as `x-dlq-errors` JSON: {"_elasticsearch": ["type: reason"]}."""
    error = item.get("error")
    if isinstance(error, dict):
        text = f"{error.get('type', 'error')}: {error.get('reason', '')}".strip()
        caused = error.get("caused_by")
        if isinstance(caused, dict):
            text += f" (caused by {caused.get('type')}: {caused.get('reason')})"
    else:
        text = str(error)
    return {"_elasticsearch": [text]}


@dataclass
class BulkOutcome:
    indexed: int = 0
    already_indexed: int = 0
    rejected: list[DeadLetter] = field(default_factory=list)
    #: Every log the batch ends with in the store (created now, or already stored with the
    #: same content), as stored: what the next digest of its partner covers.
    covered: list[Covered] = field(default_factory=list)


class RecentLogs:
    """The logs this worker stored in the last seconds (fingerprint, and what a digest
    covers), by document id.

    The cross-index lookup is a search, which sees a log only after the index refreshed
    (1 s): a reused id arriving sooner, in another month's index, is caught here instead.
    Bounded by age and count, so it costs a few MB whatever the rate.
    """

    def __init__(self, max_age_s: float = 30.0, max_entries: int = 20_000) -> None:
        self.max_age_s = max_age_s
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Stored]] = OrderedDict()

    def add(self, doc_id: str, stored: Stored, now: float) -> None:
        self._entries[doc_id] = (now, stored)
        self._entries.move_to_end(doc_id)
        while self._entries:
            oldest_at, _ = next(iter(self._entries.values()))
            if len(self._entries) <= self.max_entries and now - oldest_at <= self.max_age_s:
                break
            self._entries.popitem(last=False)

    def get(self, doc_id: str) -> Stored | None:
        entry = self._entries.get(doc_id)
        return entry[1] if entry else None


@dataclass(frozen=True)
class Stored:
    """A stored log as a batch needs it: its content fingerprint, and its coverage."""

    fingerprint: str | None
    covered: Covered | None

    @classmethod
    def of(cls, source: dict[str, Any]) -> Stored:
        """From a stored `_source` (from a lookup, or the document just created)."""
        try:
            covered: Covered | None = Covered.of(source)
        except (KeyError, TypeError, ValueError):  # not a log this version can cover
            covered = None
        return cls(_fingerprint_of(source), covered)


def ensure_template(settings: Settings, backoff: Backoff | None = None) -> None:
    """Install (or refresh) the index template before consuming; waits for Elasticsearch.

    Synchronous on purpose: it runs once in `main()` before the Faust event loop exists.
    """
    name = template_name(settings.index_prefix)
    body = index_template(settings.index_prefix)
    client = Elasticsearch(
        **settings.elasticsearch_client_options(), request_timeout=10, max_retries=0
    )
    try:
        for attempt in (backoff or Backoff()).retrying_sync(
            f"Elasticsearch at {settings.elasticsearch_url} not ready"
        ):
            with attempt:
                try:
                    _put_template_unless_newer(client, name, body)
                    _update_existing_mappings(client, settings.index_prefix)
                except (TransportError, ApiError) as error:
                    if isinstance(error, ApiError) and not _is_transient(error.status_code):
                        raise  # a wrong template or credentials: a readable crash beats a loop
                    raise RetryLater(_describe(error)) from error
    finally:
        client.close()
    log.info("index template %s installed", name)


def _put_template_unless_newer(client: Elasticsearch, name: str, body: dict[str, Any]) -> None:
    """A worker of an older release (a rolling upgrade, a restart) must not put back its
    older template: indices made from then on would need migrating again."""
    reply = client.options(ignore_status=404).indices.get_index_template(name=name)
    installed = [t["index_template"].get("version") or 0 for t in reply.get("index_templates", [])]
    if installed and installed[0] > body["version"]:
        log.warning(
            "index template %s is version %s, newer than this release's %s: left as it is",
            name,
            installed[0],
            body["version"],
        )
        return
    client.indices.put_index_template(name=name, **body)


def _update_existing_mappings(client: Elasticsearch, prefix: str) -> None:
    """Give indices made from an older template version the fields added since (additive
    only: a changed field type needs a migration, and fails here loudly)."""
    client.indices.put_mapping(
        index=f"{prefix}-*",
        properties=mappings()["properties"],
        allow_no_indices=True,
        ignore_unavailable=True,
    )


def new_client(settings: Settings) -> AsyncElasticsearch:
    # No transport-level retries: the retry policy (with backoff, for ever) is ours.
    return AsyncElasticsearch(
        **settings.elasticsearch_client_options(),
        request_timeout=30,
        max_retries=0,
        retry_on_timeout=False,
        # Replies (bulk verdicts, lookups) parsed by orjson, not the stdlib's json: ~3 % of
        # the event loop's time in B1.
        serializer=OrjsonSerializer(),
    )


class Indexer:
    """Bulk-creates audit documents; never overwrites one, never drops one.

    A log's id is `document_id(partner_id, event_id)`. Before a batch is sent, the ids are
    looked up among the stored logs (every monthly index, through the read alias, and the
    logs of the last seconds in `RecentLogs`), because a reused id whose `occurred_at` falls
    in another month would not collide in its own index. A stored log with the same
    fingerprint is a redelivery (nothing to do); with another fingerprint the newcomer is
    an `id_conflict` dead letter. A 409 on create (stored since the lookup) is settled the
    same way from a real-time `mget` of the stored log.
    """

    def __init__(
        self,
        settings: Settings,
        client: AsyncElasticsearch | None = None,
        backoff: Backoff | None = None,
        health: Health | None = None,
        recent: RecentLogs | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._backoff = backoff or Backoff()
        self._health = health or Health()
        self._recent = recent or RecentLogs()
        self._alias = read_alias(settings.index_prefix)

    @property
    def client(self) -> AsyncElasticsearch:
        # Created on first use, inside the running event loop that will own its connections.
        if self._client is None:
            self._client = new_client(self._settings)
        return self._client

    async def index(self, actions: Sequence[IndexAction]) -> BulkOutcome:
        """Bulk-create until every action is indexed, already indexed or dead-lettered."""
        outcome = BulkOutcome()
        pending = self._first_of_each_id(actions, outcome)
        stored = await self._retrying("Elasticsearch lookup", self._stored, pending)
        pending = [
            a for a in pending if not self._settled(a, stored.get(a.doc_id, ABSENT), outcome)
        ]
        retrying = self._backoff.retrying("Elasticsearch bulk", on_retry=metrics.ES_RETRIES.inc)
        async for attempt in retrying:
            with attempt:
                total = len(pending)
                pending, reasons = await self._attempt(pending, outcome)
                if pending:  # tenacity sleeps, then this block runs again with what is left
                    reason = f"{len(pending)} of {total} documents: {', '.join(reasons)}"
                    self._health.retrying(reason)
                    raise RetryLater(reason)
        metrics.INDEXED.inc(outcome.indexed)
        metrics.ALREADY_INDEXED.inc(outcome.already_indexed)
        return outcome

    def _first_of_each_id(
        self, actions: Sequence[IndexAction], outcome: BulkOutcome
    ) -> list[IndexAction]:
        """One action per document id; later ones in the batch are settled against it."""
        first: dict[str, IndexAction] = {}
        for action in actions:
            earlier = first.setdefault(action.doc_id, action)
            if earlier is action:
                continue
            if earlier.fingerprint == action.fingerprint:
                self._settled(action, None, outcome)
            else:
                self._settled(action, Stored(earlier.fingerprint, None), outcome)
        return list(first.values())

    async def _stored(self, actions: Sequence[IndexAction]) -> dict[str, Stored]:
        """The stored logs with these ids (the whole `_source` of the few that exist: a
        redelivery's digest covers the document as stored)."""
        found: dict[str, Stored] = {}
        unknown = []
        for action in actions:
            stored = self._recent.get(action.doc_id)
            if stored is None:
                unknown.append(action.doc_id)
            else:
                found[action.doc_id] = stored
        # Chunks stay under index.max_result_window (10,000) whatever AUDIT_BATCH_SIZE is.
        for start in range(0, len(unknown), LOOKUP_CHUNK):
            ids = unknown[start : start + LOOKUP_CHUNK]
            response = await self.client.search(
                index=self._alias,
                query={"ids": {"values": ids}},
                size=len(ids),
                track_total_hits=False,
                ignore_unavailable=True,
                allow_no_indices=True,
            )
            for hit in response["hits"]["hits"]:
                found[hit["_id"]] = Stored.of(hit["_source"])
        return found

    def _settled(
        self, action: IndexAction, stored: Stored | _Absent | None, outcome: BulkOutcome
    ) -> bool:
        """Account for an action whose id is already stored; False when it is not stored.
        `stored` None: an earlier action of the same batch, which covers the log itself."""
        if isinstance(stored, _Absent):
            return False
        if stored is None or stored.fingerprint == action.fingerprint:
            outcome.already_indexed += 1
            if stored is not None and stored.covered is not None:
                outcome.covered.append(stored.covered)
            return True
        metrics.ID_CONFLICTS.inc()
        outcome.rejected.append(
            DeadLetter(
                action.record,
                REASON_ID_CONFLICT,
                {
                    "event_id": [
                        "A log with this partner_id and event_id is already stored with other "
                        "content; it is kept unchanged. Publish new content under a new "
                        "event_id."
                    ]
                },
            )
        )
        log.warning(
            "id conflict: event %s of partner %s reused with other content; dead-lettered",
            action.document["event"]["id"],
            action.document[NAMESPACE]["partner_id"],
            extra={"doc_id": action.doc_id, "index": action.index},
        )
        return True

    async def _attempt(
        self, pending: list[IndexAction], outcome: BulkOutcome
    ) -> tuple[list[IndexAction], list[str]]:
        """One pass over `pending`: what must be retried, and why."""
        if not pending:
            return [], []
        retry: list[IndexAction] = []
        existing: list[IndexAction] = []
        answered = 0  # actions of `pending` whose request was answered
        reasons: set[str] = set()
        try:
            # The bulk API called directly, without the helper: the bodies are made of the
            # bytes the pure core serialized, and the reply is read item by item, in order.
            for end, body in _bulk_bodies(pending):
                # The client's NDJSON serializer sends a bytes body as it is (typed for dicts).
                reply = await self.client.bulk(
                    operations=body,  # type: ignore[arg-type]
                    # Only what an item's verdict needs: a third of the reply to make and parse.
                    filter_path=BULK_REPLY_FIELDS,
                )
                sent = pending[answered:end]
                items = reply.body.get("items") or []
                # Items come back in request order, one per action ("errors": false only
                # says they all are 2xx: each still needs its own accounting).
                for action, result in zip(sent, items, strict=False):
                    item = next(iter(result.values()))
                    verdict = self._record(action, int(item.get("status", 500)), item, outcome)
                    if verdict is Verdict.RETRY:
                        retry.append(action)
                        reasons.add(_item_reason(item))
                    elif verdict is Verdict.EXISTS:
                        existing.append(action)
                if len(items) < len(sent):
                    # Never seen, but never assumed done: what the reply left out is retried
                    # (the helper's zip used to drop it silently).
                    retry.extend(sent[len(items) :])
                    reasons.add(f"bulk reply with {len(items)} items for {len(sent)} documents")
                answered = end
        except (TransportError, ApiError) as error:
            # The request as a whole failed: everything not answered yet goes round again.
            retry.extend(pending[answered:])
            reasons.add(_describe(error))
        if existing:
            retry.extend(await self._settle_existing(existing, outcome, reasons))
        return retry, sorted(reasons)

    async def _settle_existing(
        self, existing: list[IndexAction], outcome: BulkOutcome, reasons: set[str]
    ) -> list[IndexAction]:
        """Settle 409s from the stored logs (real time); returns those to try again."""
        try:
            response = await self.client.mget(
                docs=[{"_index": a.index, "_id": a.doc_id} for a in existing], realtime=True
            )
        except (TransportError, ApiError) as error:
            reasons.add(_describe(error))
            return existing
        again = []
        for action, doc in zip(existing, response["docs"], strict=True):
            if doc.get("found"):
                stored = Stored.of(doc["_source"])
                self._settled(action, stored, outcome)
                self._recent.add(action.doc_id, stored, monotonic())
            else:  # deleted since the 409: create it again
                again.append(action)
                reasons.add("a stored log vanished before it could be compared")
        return again

    def _record(
        self, action: IndexAction, status: int, item: dict[str, Any], outcome: BulkOutcome
    ) -> Verdict:
        """Account for one answered item and say what it was."""
        verdict = classify_item(status, error_type(item))
        if verdict is Verdict.INDEXED:
            outcome.indexed += 1
            covered = Covered.of(action.document, action.leaf)
            outcome.covered.append(covered)
            self._recent.add(action.doc_id, Stored(action.fingerprint, covered), monotonic())
        elif verdict is Verdict.REJECTED:
            outcome.rejected.append(
                DeadLetter(action.record, REASON_INDEX_REJECTED, item_error(item))
            )
            log.warning(
                "Elasticsearch rejected event %s: %s",
                action.document["event"]["id"],
                item_error(item)["_elasticsearch"][0],
            )
        return verdict

    async def _retrying(self, what: str, call: Callable[[T], Awaitable[R]], argument: T) -> R:
        """`call(argument)` until Elasticsearch answers it (outage, 429, 5xx: back off)."""
        async for attempt in self._backoff.retrying(what, on_retry=metrics.ES_RETRIES.inc):
            with attempt:
                try:
                    return await call(argument)
                except (TransportError, ApiError) as error:
                    if isinstance(error, ApiError) and not _is_transient(error.status_code):
                        raise
                    self._health.retrying(f"{what}: {_describe(error)}")
                    raise RetryLater(_describe(error)) from error
        raise AssertionError("unreachable: the retry loop never gives up")

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


class _Absent:
    """The lookup found no stored log with the id."""


ABSENT = _Absent()


def _fingerprint_of(source: dict[str, Any]) -> str | None:
    value = (source.get(NAMESPACE) or {}).get("fingerprint")
    return str(value) if value is not None else None


def _bulk_bodies(pending: Sequence[IndexAction]) -> Iterator[tuple[int, bytes]]:
    """The NDJSON bodies of `create`s for `pending`, in order, each with the index in
    `pending` just past its last action. A body stays within MAX_CHUNK_BYTES unless one
    action alone exceeds it (then it goes alone). Lazy, as the helper's chunker was: the
    next body is joined only once the previous request was answered."""
    parts: list[bytes] = []
    size = 0
    for position, action in enumerate(pending):
        lines = action.bulk_lines()
        if parts and size + len(lines) > MAX_CHUNK_BYTES:
            yield position, b"".join(parts)
            parts, size = [], 0
        parts.append(lines)
        size += len(lines)
    if parts:
        yield len(pending), b"".join(parts)


def _item_reason(item: dict[str, Any]) -> str:
    kind = error_type(item)
    return f"item status {item.get('status')}" + (f" {kind}" if kind else "")


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _describe(error: Exception) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status_code} {error.error}"
    return f"{type(error).__name__}: {error}"
