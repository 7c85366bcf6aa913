"""Reading digests and logs straight from Elasticsearch, for `audit-log verify`.

Plain HTTP (urllib) rather than the Elasticsearch client: `schemas/` may not depend on it,
and a verifier should need as little as possible besides the store's REST API. Only what
Elasticsearch's server core has is used: `_search` with `search_after` and point in time.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from schemas import fields
from schemas.catalogue import EXPIRE_ACTION
from schemas.es_rest import RestClient, StoreAddress, StoreError
from schemas.index_template import digest_index, read_alias
from schemas.integrity import Digest

__all__ = ["PAGE", "StoreAddress", "StoreError", "StoreReader"]

PAGE = 1000


class StoreReader:
    """The digests of a partner and its logs in a time range, as the store holds them."""

    def __init__(self, address: StoreAddress, prefix: str, timeout_s: float = 60) -> None:
        self._rest = RestClient(address, timeout_s)
        self._prefix = prefix

    def digests(self, partner_id: str) -> list[Digest]:
        """Every digest of the partner, in sequence order."""
        body = {"query": {"term": {"partner_id": partner_id}}, "sort": [{"seq": "asc"}]}
        index = digest_index(self._prefix)
        try:
            hits = list(self._search_after(index, body))
        except StoreError as error:
            if "index_not_found_exception" in str(error):
                return []
            raise
        return [Digest.from_json(hit["_source"]) for hit in hits]

    def logs(self, partner_id: str, window: tuple[str, str]) -> dict[str, dict[str, Any]]:
        """Log ID -> `_source` of the partner's logs with `@timestamp` in `window`."""
        query = {
            "bool": {
                "filter": [
                    {"term": {fields.PARTNER_ID: partner_id}},
                    {"range": {fields.TIMESTAMP: {"gte": window[0], "lte": window[1]}}},
                ]
            }
        }
        pit = self._call("POST", f"/{read_alias(self._prefix)}/_pit?keep_alive=2m", None)
        body = {
            "query": query,
            "sort": [{fields.TIMESTAMP: "asc"}, {fields.LOG_ID: "asc"}],
            "pit": {"id": pit["id"], "keep_alive": "2m"},
        }
        try:
            return {
                hit["_source"]["event"]["id"]: hit["_source"]
                for hit in self._search_after(None, body)
            }
        finally:
            self._call("DELETE", "/_pit", {"id": pit["id"]}, quiet=True)

    def expiries(self, partner_id: str) -> dict[str, dict[str, Any]]:
        """Log ID -> `_source` of the partner's `audit_log.expire` logs (retention's records
        of what it deleted), whatever their time."""
        body = {
            "query": {
                "bool": {
                    "filter": [
                        {"term": {fields.PARTNER_ID: partner_id}},
                        {"term": {fields.ACTIVITY: EXPIRE_ACTION}},
                    ]
                }
            },
            "sort": [{fields.TIMESTAMP: "asc"}, {fields.LOG_ID: "asc"}],
        }
        try:
            hits = self._search_after(read_alias(self._prefix), body)
            return {hit["_source"]["event"]["id"]: hit["_source"] for hit in hits}
        except StoreError as error:
            if "index_not_found_exception" in str(error):
                return {}
            raise

    def _search_after(self, index: str | None, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
        path = f"/{index}/_search" if index else "/_search"
        after: list[Any] | None = None
        while True:
            page = {**body, "size": PAGE, "track_total_hits": False}
            if after is not None:
                page["search_after"] = after
            hits = self._call("POST", path, page)["hits"]["hits"]
            yield from hits
            if len(hits) < PAGE:
                return
            after = hits[-1]["sort"]

    def _call(
        self, method: str, path: str, body: dict[str, Any] | None, quiet: bool = False
    ) -> dict[str, Any]:
        return self._rest.call(method, path, body, quiet=quiet)
