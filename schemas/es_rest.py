"""Elasticsearch's REST API over plain HTTP (urllib), for the `audit-log` tools.

`schemas/` may not depend on the Elasticsearch client, and an operator's tool (`verify`,
`indices`) should need as little as possible besides the cluster's REST API. Where the store
is comes from `schemas.config.ElasticsearchOptions`, the worker's and the API's own options
(ELASTICSEARCH_*). Every failure is a `StoreError` whose message is one readable line.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

import orjson

from schemas.config import ElasticsearchOptions

#: Where the store is and how to authenticate: the worker's and the API's own options.
StoreAddress = ElasticsearchOptions


class StoreError(Exception):
    """Elasticsearch could not be read or written; the message says where and why, in one
    line. `status` is the HTTP status (0: not reached), `error_type` Elasticsearch's."""

    def __init__(self, message: str, status: int = 0, error_type: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class RestClient:
    """JSON in, JSON out; one request per call (these tools make few, large requests)."""

    def __init__(self, address: ElasticsearchOptions, timeout_s: float = 60) -> None:
        self.address = address
        self._timeout = timeout_s
        self._context = address.ssl_context()  # ConfigError naming ELASTICSEARCH_CA_CERTS

    def call(
        self,
        method: str,
        path: str,
        body: Mapping[str, Any] | None = None,
        *,
        missing_ok: bool = False,
        quiet: bool = False,
    ) -> dict[str, Any]:
        """`body` as JSON to `path`; the reply's JSON. `missing_ok`: a 404 answers {};
        `quiet`: any failure answers {} (for clean-ups that may fail harmlessly)."""
        data = json.dumps(body).encode() if body is not None else None
        return self._send(method, path, data, "application/json", missing_ok, quiet)

    def bulk(self, ndjson: bytes, refresh: bool = False) -> dict[str, Any]:
        """One `_bulk` request of ready NDJSON lines."""
        path = "/_bulk" + ("?refresh=true" if refresh else "")
        return self._send("POST", path, ndjson, "application/x-ndjson", False, False)

    def _send(
        self,
        method: str,
        path: str,
        data: bytes | None,
        content_type: str,
        missing_ok: bool,
        quiet: bool,
    ) -> dict[str, Any]:
        # The scheme is http(s) by construction (ElasticsearchOptions refuses anything else).
        request = urllib.request.Request(  # noqa: S310
            self.address.url + path,
            data=data,
            method=method,
            headers=self.address.headers(content_type),
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self._timeout, context=self._context
            ) as reply:
                raw = reply.read()
        except urllib.error.HTTPError as error:
            if quiet or (missing_ok and error.code == 404):
                return {}
            kind, reason = _reason(error)
            raise StoreError(
                f"Elasticsearch at {self.address.url} answered {error.code}: {kind}: {reason}",
                error.code,
                kind,
            ) from None
        except (urllib.error.URLError, OSError) as error:
            if quiet:
                return {}
            why = getattr(error, "reason", error)
            raise StoreError(f"cannot reach Elasticsearch at {self.address.url}: {why}") from None
        result: dict[str, Any] = orjson.loads(raw) if raw else {}
        return result


def quote(name: str) -> str:
    """An index, alias or id as one URL path segment."""
    return urllib.parse.quote(name, safe="")


def _reason(error: urllib.error.HTTPError) -> tuple[str, str]:
    """Elasticsearch's own words for a refusal: (root cause type, reason)."""
    try:
        detail = json.loads(error.read()).get("error", {})
    except (ValueError, AttributeError):
        return "error", str(error.reason)
    if isinstance(detail, dict):
        cause = (detail.get("root_cause") or [detail])[0]
        return str(cause.get("type")), str(cause.get("reason"))
    return "error", str(detail)
