"""The index lifecycle's side of Elasticsearch: what `audit-log indices` reads and changes.

Plain HTTP (`schemas.es_rest`), server-core APIs only (SPEC §3): index and alias
management, `_block/write`, shard stats, `_search` with `search_after` on `_seq_no`,
`_bulk`, `_mget`, composite aggregations. State that must survive a crash (legal holds,
retention records, migration checkpoints) lives in the index `{prefix}_lifecycle`, outside
the `{prefix}-*` pattern like the digests.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import orjson

from schemas import fields
from schemas.document import iso_ms, with_search
from schemas.es_rest import RestClient, StoreError, quote
from schemas.index_template import TEMPLATE_VERSION, index_template, read_alias, template_name
from schemas.lifecycle import IndexState, index_states

T = TypeVar("T")
LIFECYCLE_INDEX_VERSION = 1
#: A search resolves the read alias when it starts: how long one that did so just before the
#: alias changed may take to reach the shards (and show in their statistics).
DISPATCH_GRACE_S = 1.0
#: Search statistics that say an index is still being read.
IN_USE = ("query_current", "fetch_current", "open_contexts")
#: Transient failures (unreachable, 429, 5xx) are retried this many times, backing off
#: (about two minutes in all: a restarting node is usually back within it).
RETRIES = 9


def lifecycle_index(prefix: str) -> str:
    """Holds, retention records and migration checkpoints: outside `{prefix}-*`, so the log
    template, the read alias and retention never touch it."""
    return f"{prefix}_lifecycle"


def lifecycle_index_body() -> dict[str, Any]:
    return {
        "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
        "mappings": {
            # Records carry more than is searched; only these few fields are indexed.
            "dynamic": False,
            "_meta": {"version": LIFECYCLE_INDEX_VERSION},
            "properties": {
                "kind": {"type": "keyword"},
                "partner_id": {"type": "keyword"},
                "state": {"type": "keyword"},
                "active": {"type": "boolean"},
                "index": {"type": "keyword"},
                "updated_at": {"type": "date"},
            },
        },
    }


def now_text() -> str:
    return iso_ms(datetime.now(UTC))


def transient(error: StoreError) -> bool:
    return error.status in (0, 429) or error.status >= 500


def retrying(call: Callable[[], T], say: Callable[[str], None] | None = None) -> T:
    """`call()` again after a transient failure (1, 2, 4, ... 30 s), up to RETRIES times."""
    for attempt in range(RETRIES):
        try:
            return call()
        except StoreError as error:
            if not transient(error) or attempt == RETRIES - 1:
                raise
            delay = min(30.0, 2.0**attempt)
            if say:
                say(f"{error}; retrying in {delay:g} s")
            time.sleep(delay)
    raise AssertionError("unreachable")


@dataclass
class BulkResult:
    created: int = 0
    #: Already in the target: copied by an earlier, interrupted run.
    existing: int = 0


class Cluster:
    """One deployment's indices (prefix), through the REST API."""

    def __init__(self, rest: RestClient, prefix: str) -> None:
        self.rest = rest
        self.prefix = prefix
        self.alias = read_alias(prefix)
        self.records = Records(rest, lifecycle_index(prefix))

    # ------------------------------------------------------------------ indices

    def states(self) -> list[IndexState]:
        """Every index matching `{prefix}-*` (managed or not)."""
        path = (
            f"/{quote(self.prefix)}-*?expand_wildcards=open&filter_path=*.aliases,"
            "*.mappings._meta,*.settings.index.number_of_shards,*.settings.index.uuid,"
            "*.settings.index.blocks,*.settings.index.refresh_interval"
        )
        return index_states(self.rest.call("GET", path, missing_ok=True))

    def state(self, index: str) -> IndexState | None:
        return next((s for s in self.states() if s.name == index), None)

    def installed_template_version(self) -> int | None:
        reply = self.rest.call(
            "GET", f"/_index_template/{quote(template_name(self.prefix))}", missing_ok=True
        )
        templates = reply.get("index_templates") or []
        if not templates:
            return None
        version = templates[0]["index_template"].get("version")
        return int(version) if isinstance(version, int) else None

    def ensure_template(self) -> None:
        """Install this release's template unless a newer release's is there (a rolling
        upgrade must not be undone by an older process)."""
        installed = self.installed_template_version()
        if installed is not None and installed > TEMPLATE_VERSION:
            raise StoreError(
                f"the installed index template is version {installed}, newer than this "
                f"release's {TEMPLATE_VERSION}: use the newer release's audit-log"
            )
        if installed != TEMPLATE_VERSION:
            body = index_template(self.prefix)
            self.rest.call("PUT", f"/_index_template/{quote(template_name(self.prefix))}", body)

    def create_isolated(self, index: str) -> None:
        """Create `index` from the template, then take it out of the read alias the template
        gives it, before any log is copied in: readers never see a log twice."""
        self.rest.call("PUT", f"/{quote(index)}", {})
        self.leave_read_alias(index)

    def leave_read_alias(self, index: str) -> None:
        self.rest.call("DELETE", f"/{quote(index)}/_alias/{quote(self.alias)}", missing_ok=True)

    def set_refresh_interval(self, index: str, interval: str | None) -> None:
        body = {"index": {"refresh_interval": interval}}
        self.rest.call("PUT", f"/{quote(index)}/_settings", body)

    def refresh(self, index: str) -> None:
        retrying(lambda: self.rest.call("POST", f"/{quote(index)}/_refresh"))

    def block_writes(self, index: str) -> None:
        """The write block API waits for writes in flight to finish: once it answers, no
        log can land in `index` any more."""
        retrying(lambda: self.rest.call("PUT", f"/{quote(index)}/_block/write"))

    def unblock_writes(self, index: str) -> None:
        body = {"index": {"blocks": {"write": False}}}
        self.rest.call("PUT", f"/{quote(index)}/_settings", body, missing_ok=True)

    def aliases(self, actions: Sequence[Mapping[str, Any]]) -> None:
        """One `_aliases` request: all of `actions` take effect at once, or none does."""
        self.rest.call("POST", "/_aliases", {"actions": list(actions)})

    def delete_index(self, index: str) -> None:
        self.rest.call("DELETE", f"/{quote(index)}", missing_ok=True)

    def wait_unused(self, index: str, timeout_s: float) -> bool:
        """Wait until no search, fetch, point in time or scroll uses `index`, which has just
        left the read alias: a search that resolved the alias before must finish on it, not
        find it deleted (its shards would fail, and the reader miss their logs). False when
        something still used it at the timeout (a long export's point in time)."""
        time.sleep(DISPATCH_GRACE_S)
        deadline = time.monotonic() + timeout_s
        path = f"/{quote(index)}/_stats/search?filter_path=_all.total.search"
        while True:
            stats = self.rest.call("GET", path, missing_ok=True)
            search = stats.get("_all", {}).get("total", {}).get("search", {})
            if not any(search.get(key, 0) for key in IN_USE):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

    # ------------------------------------------------------------------ reading

    def count(self, index: str, query: Mapping[str, Any] | None = None) -> int:
        body = {"query": query} if query is not None else None
        return int(self._post(f"/{quote(index)}/_count", body)["count"])

    def partner_counts(self, index: str) -> dict[str, int]:
        """Logs per partner in `index` (a composite aggregation, page by page)."""
        counts: dict[str, int] = {}
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000,
                "sources": [{"partner": {"terms": {"field": fields.PARTNER_ID}}}],
            }
            if after:
                composite["after"] = after
            body = {"size": 0, "aggs": {"partners": {"composite": composite}}}
            reply = self._post(f"/{quote(index)}/_search", body)
            agg = reply["aggregations"]["partners"]
            for bucket in agg["buckets"]:
                counts[bucket["key"]["partner"]] = int(bucket["doc_count"])
            after = agg.get("after_key")
            if not agg["buckets"] or not after:
                return counts

    def checkpoints(self, index: str) -> dict[int, tuple[int, int]]:
        """Shard -> (global checkpoint, max seq_no) of the primaries. Every operation up to
        the global checkpoint is done on every copy, so a refresh after reading it makes
        them all visible (a later seq_no may become visible before an earlier one)."""
        path = f"/{quote(index)}/_stats/docs?level=shards&filter_path=indices.*.shards"
        reply = retrying(lambda: self.rest.call("GET", path))
        found: dict[int, tuple[int, int]] = {}
        for shards in reply["indices"].values():
            for shard, copies in shards["shards"].items():
                for copy in copies:
                    if copy.get("routing", {}).get("primary", True):
                        seq = copy["seq_no"]
                        found[int(shard)] = (seq["global_checkpoint"], seq["max_seq_no"])
        return found

    def page(
        self,
        index: str,
        shard: int,
        after: int,
        upto: int,
        size: int,
        query: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Up to `size` documents of one shard with `after` < seq_no <= `upto`, in seq_no
        order: stable across runs (unlike a point in time), so a copy can resume."""
        filters: list[Mapping[str, Any]] = [{"range": {"_seq_no": {"gt": after, "lte": upto}}}]
        if query is not None:
            filters.append(query)
        body = {
            "size": size,
            "sort": [{"_seq_no": "asc"}],
            "query": {"bool": {"filter": filters}},
            "track_total_hits": False,
        }
        path = f"/{quote(index)}/_search?preference=_shards:{shard}"
        hits: list[dict[str, Any]] = self._post(path, body)["hits"]["hits"]
        return hits

    def sample(self, index: str, size: int, seed: int) -> list[dict[str, Any]]:
        """`size` documents picked at random (reproducibly, by `seed`)."""
        body = {
            "size": size,
            "query": {
                "function_score": {"random_score": {"seed": seed, "field": "_seq_no"}},
            },
        }
        return self.search(index, body)

    def sources(self, index: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`_id` -> `_source` of those of `ids` stored in `index` (real time)."""
        if not ids:
            return {}
        reply = self.rest.call("POST", f"/{quote(index)}/_mget", {"ids": list(ids)})
        return {doc["_id"]: doc["_source"] for doc in reply["docs"] if doc.get("found")}

    def search(self, index: str, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        hits: list[dict[str, Any]] = self._post(f"/{quote(index)}/_search", body)["hits"]["hits"]
        return hits

    def _post(self, path: str, body: Mapping[str, Any] | None) -> dict[str, Any]:
        """A read (search, count): retried when the failure is transient."""
        return retrying(lambda: self.rest.call("POST", path, body))

    # ------------------------------------------------------------------ writing

    def bulk_create(self, target: str, hits: Sequence[Mapping[str, Any]]) -> BulkResult:
        """`create` each hit's document in `target` under its own `_id`, its search
        representation recomputed (it is not part of `_source`). A 409 is a log copied
        before (an interrupted run): the same document, never overwritten."""
        result = BulkResult()
        if not hits:
            return result
        lines = []
        header = {"create": {"_index": target, "_id": ""}}
        for hit in hits:
            header["create"]["_id"] = hit["_id"]
            lines.append(orjson.dumps(header))
            lines.append(orjson.dumps(with_search(hit["_source"])))
        payload = b"\n".join(lines) + b"\n"
        reply = retrying(lambda: self.rest.bulk(payload))
        failures = []
        for item in reply["items"]:
            outcome = item["create"]
            status = int(outcome.get("status", 500))
            if status < 300:
                result.created += 1
            elif status == 409:
                result.existing += 1
            else:
                failures.append(outcome)
        if failures:
            error = failures[0].get("error") or {}
            raise StoreError(
                f"{len(failures)} log(s) not copied into {target}: "
                f"{error.get('type')}: {error.get('reason')}",
                int(failures[0].get("status", 500)),
                str(error.get("type", "")),
            )
        return result


class Records:
    """Small JSON records in the lifecycle index, by id (read in real time)."""

    def __init__(self, rest: RestClient, index: str) -> None:
        self.rest = rest
        self.index = index

    def ensure(self) -> None:
        reply = self.rest.call("GET", f"/{quote(self.index)}", missing_ok=True)
        if reply:
            return
        try:
            self.rest.call("PUT", f"/{quote(self.index)}", lifecycle_index_body())
        except StoreError as error:
            if error.error_type != "resource_already_exists_exception":
                raise

    def get(self, record_id: str) -> dict[str, Any] | None:
        reply = self.rest.call(
            "GET", f"/{quote(self.index)}/_doc/{quote(record_id)}", missing_ok=True
        )
        source = reply.get("_source") if reply.get("found") else None
        return dict(source) if isinstance(source, dict) else None

    def put(self, record_id: str, record: Mapping[str, Any], listed: bool = False) -> None:
        """`listed`: wait until `find` sees it (a hold); a checkpoint is read by id only."""
        body = {**record, "updated_at": now_text()}
        path = f"/{quote(self.index)}/_doc/{quote(record_id)}" + (
            "?refresh=wait_for" if listed else ""
        )
        retrying(lambda: self.rest.call("PUT", path, body))

    def find(self, kind: str, **terms: Any) -> Iterator[dict[str, Any]]:
        """Every record of `kind` whose indexed fields equal `terms`."""
        filters = [{"term": {"kind": kind}}] + [
            {"term": {field: value}} for field, value in terms.items()
        ]
        body = {
            "size": 10_000,
            "query": {"bool": {"filter": filters}},
            "sort": [{"updated_at": "asc"}],
        }
        reply = self.rest.call(
            "POST",
            f"/{quote(self.index)}/_search?ignore_unavailable=true&allow_no_indices=true",
            body,
        )
        for hit in reply["hits"]["hits"]:
            yield hit["_source"]
