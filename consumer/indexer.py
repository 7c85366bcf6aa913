"""Elasticsearch adapter: the index template at start-up, then bulk `create`s that never drop.

Per item: 2xx = indexed; 409 = already indexed (a redelivery: `create` with `_id` = event id);
400 = Elasticsearch refuses the document itself (mapping/parse error) -> dead letter; anything
else (429, 5xx, ...) -> retried. A failed request as a whole (connection refused, timeout, 429,
5xx) -> every item not yet answered is retried. Retries back off exponentially with jitter and
never give up: the batch is not committed until Elasticsearch acknowledged every document.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AsyncElasticsearch, Elasticsearch
from elasticsearch.helpers import async_streaming_bulk

from consumer import metrics
from consumer.backoff import Backoff, RetryLater
from consumer.pipeline import DeadLetter, IndexAction
from consumer.settings import Settings
from schemas.dead_letter import REASON_INDEX_REJECTED
from schemas.index_template import index_template, template_name

log = logging.getLogger(__name__)

#: Well under Elasticsearch's 100 MB request limit, even with 256 KiB events.
MAX_CHUNK_BYTES = 20 * 1024 * 1024


class Verdict(Enum):
    INDEXED = "indexed"
    ALREADY_INDEXED = "already_indexed"
    REJECTED = "rejected"
    RETRY = "retry"


def classify_item(status: int) -> Verdict:
    """What one bulk item's HTTP status means for the event behind it."""
    if 200 <= status < 300:
        return Verdict.INDEXED
    if status == 409:
        return Verdict.ALREADY_INDEXED
    if status == 400:
        # mapper_parsing_exception, document_parsing_exception, illegal_argument_exception:
        # the same bytes will fail the same way, so retrying would block the partition.
        return Verdict.REJECTED
    # 429 (back-pressure), 5xx, and 4xx that are about the cluster rather than the
    # document (403 cluster block, 404 index missing while auto-create is off): retry.
    return Verdict.RETRY


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
                    client.indices.put_index_template(name=name, **body)
                except (TransportError, ApiError) as error:
                    if isinstance(error, ApiError) and not _is_transient(error.status_code):
                        raise  # a wrong template or credentials: a readable crash beats a loop
                    raise RetryLater(_describe(error)) from error
    finally:
        client.close()
    log.info("index template %s installed", name)


def new_client(settings: Settings) -> AsyncElasticsearch:
    # No transport-level retries: the retry policy (with backoff, for ever) is ours.
    return AsyncElasticsearch(
        **settings.elasticsearch_client_options(),
        request_timeout=30,
        max_retries=0,
        retry_on_timeout=False,
    )


class Indexer:
    def __init__(
        self,
        settings: Settings,
        client: AsyncElasticsearch | None = None,
        backoff: Backoff | None = None,
    ) -> None:
        self._settings = settings
        self._client = client
        self._backoff = backoff or Backoff()

    @property
    def client(self) -> AsyncElasticsearch:
        # Created on first use, inside the running event loop that will own its connections.
        if self._client is None:
            self._client = new_client(self._settings)
        return self._client

    async def index(self, actions: Sequence[IndexAction]) -> BulkOutcome:
        """Bulk-create until every action is indexed, already indexed or rejected."""
        outcome = BulkOutcome()
        pending = list(actions)
        retrying = self._backoff.retrying("Elasticsearch bulk", on_retry=metrics.ES_RETRIES.inc)
        async for attempt in retrying:
            with attempt:
                total = len(pending)
                pending, reasons = await self._attempt(pending, outcome)
                if pending:  # tenacity sleeps, then this block runs again with what is left
                    raise RetryLater(f"{len(pending)} of {total} documents: {', '.join(reasons)}")
        metrics.INDEXED.inc(outcome.indexed)
        metrics.ALREADY_INDEXED.inc(outcome.already_indexed)
        return outcome

    async def _attempt(
        self, pending: list[IndexAction], outcome: BulkOutcome
    ) -> tuple[list[IndexAction], list[str]]:
        """One pass over `pending`: what must be retried, and why."""
        if not pending:
            return [], []
        retry: list[IndexAction] = []
        answered = 0
        reasons: set[str] = set()
        try:
            async for _ok, result in async_streaming_bulk(
                self.client,
                (action.to_bulk() for action in pending),
                chunk_size=len(pending),
                max_chunk_bytes=MAX_CHUNK_BYTES,
                raise_on_error=False,
                max_retries=0,
                yield_ok=True,
            ):
                # Items come back in request order, one per action.
                action = pending[answered]
                answered += 1
                item = next(iter(result.values()))
                if self._record(action, int(item.get("status", 500)), item, outcome):
                    retry.append(action)
                    reasons.add(f"item status {item.get('status')}")
        except (TransportError, ApiError) as error:
            # The request as a whole failed: everything not answered yet goes round again.
            retry.extend(pending[answered:])
            reasons.add(_describe(error))
        return retry, sorted(reasons)

    def _record(
        self, action: IndexAction, status: int, item: dict[str, Any], outcome: BulkOutcome
    ) -> bool:
        """Account for one answered item; True when it must be retried."""
        verdict = classify_item(status)
        if verdict is Verdict.INDEXED:
            outcome.indexed += 1
        elif verdict is Verdict.ALREADY_INDEXED:
            outcome.already_indexed += 1
        elif verdict is Verdict.REJECTED:
            outcome.rejected.append(
                DeadLetter(action.record, REASON_INDEX_REJECTED, item_error(item))
            )
            log.warning(
                "Elasticsearch rejected event %s: %s",
                action.doc_id,
                item_error(item)["_elasticsearch"][0],
            )
        return verdict is Verdict.RETRY

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _is_transient(status: int) -> bool:
    return status == 429 or status >= 500


def _describe(error: Exception) -> str:
    if isinstance(error, ApiError):
        return f"HTTP {error.status_code} {error.error}"
    return f"{type(error).__name__}: {error}"
