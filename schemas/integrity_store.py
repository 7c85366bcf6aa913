"""Reading digests and logs straight from Elasticsearch, for `audit-log verify`.

Plain HTTP (urllib) rather than the Elasticsearch client: `schemas/` may not depend on it,
and a verifier should need as little as possible besides the store's REST API. Only what
Elasticsearch's server core has is used: `_search` with `search_after` and point in time.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from schemas.index_template import digest_index, read_alias
from schemas.integrity import Digest

PAGE = 1000
DEFAULT_URL = "http://127.0.0.1:9200"


class StoreError(Exception):
    """Elasticsearch could not be read; the message says where and why, in one line."""


@dataclass(frozen=True)
class StoreAddress:
    url: str = DEFAULT_URL
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_certs: str | None = None

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise StoreError(f"ELASTICSEARCH_URL={self.url!r} must start with http:// or https://")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> StoreAddress:
        env = os.environ if env is None else env
        return cls(
            url=(env.get("ELASTICSEARCH_URL") or DEFAULT_URL).rstrip("/"),
            api_key=env.get("ELASTICSEARCH_API_KEY") or None,
            username=env.get("ELASTICSEARCH_USERNAME") or None,
            password=env.get("ELASTICSEARCH_PASSWORD") or None,
            ca_certs=env.get("ELASTICSEARCH_CA_CERTS") or None,
        )


class StoreReader:
    """The digests of a partner and its logs in a time range, as the store holds them."""

    def __init__(self, address: StoreAddress, prefix: str, timeout_s: float = 60) -> None:
        self._address = address
        self._prefix = prefix
        self._timeout = timeout_s
        self._context = ssl.create_default_context(cafile=address.ca_certs)

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
                    {"term": {"audit.partner_id": partner_id}},
                    {"range": {"@timestamp": {"gte": window[0], "lte": window[1]}}},
                ]
            }
        }
        pit = self._call("POST", f"/{read_alias(self._prefix)}/_pit?keep_alive=2m", None)
        body = {
            "query": query,
            "sort": [{"@timestamp": "asc"}, {"event.id": "asc"}],
            "pit": {"id": pit["id"], "keep_alive": "2m"},
        }
        try:
            return {
                hit["_source"]["event"]["id"]: hit["_source"]
                for hit in self._search_after(None, body)
            }
        finally:
            self._call("DELETE", "/_pit", {"id": pit["id"]}, quiet=True)

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
        data = json.dumps(body).encode() if body is not None else None
        # The scheme is http(s) by construction (StoreAddress refuses anything else).
        request = urllib.request.Request(  # noqa: S310
            self._address.url + path, data=data, method=method, headers=self._headers()
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self._timeout, context=self._context
            ) as reply:
                result: dict[str, Any] = json.loads(reply.read() or b"{}")
                return result
        except urllib.error.HTTPError as error:
            if quiet:
                return {}
            raise StoreError(
                f"Elasticsearch at {self._address.url} answered {error.code}: {_reason(error)}"
            ) from None
        except (urllib.error.URLError, OSError) as error:
            if quiet:
                return {}
            reason = getattr(error, "reason", error)
            raise StoreError(
                f"cannot reach Elasticsearch at {self._address.url}: {reason}"
            ) from None

    def _headers(self) -> dict[str, str]:
        headers = {"Content-Type": "application/json"}
        if self._address.api_key:
            headers["Authorization"] = f"ApiKey {self._address.api_key}"
        elif self._address.username:
            token = f"{self._address.username}:{self._address.password or ''}".encode()
            headers["Authorization"] = f"Basic {base64.b64encode(token).decode()}"
        return headers


def _reason(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read()).get("error", {})
    except ValueError:
        return str(error.reason)
    if isinstance(detail, dict):
        cause = (detail.get("root_cause") or [detail])[0]
        return f"{cause.get('type')}: {cause.get('reason')}"
    return str(detail)
