"""The read API's use cases: what list, detail and export do, independent of Flask.

Views parse the request and call these; these build queries through `api.query` (and so
through `api.scope`), run them through a `Store` and shape results with the converters of
`schemas.document`, the same ones the worker's documents are defined with.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import uuid
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from api.auth import Caller
from api.cursor import Cursor, decode_cursor, encode_cursor, fingerprint
from api.export import chunked, document_lines, lines
from api.integrity import with_proofs
from api.metrics import DOWNLOAD_EVENTS, EXPORTED_LOGS
from api.query import (
    build_detail_query,
    build_export_query,
    build_list_query,
    resolve_window,
    scope_identity,
    selection,
)
from api.store import Scan, Store
from schemas.document import document_to_log, document_to_log_detail
from schemas.integrity_verify import EXPORT_INTEGRITY_KEY
from schemas.log_shape import LOG_ID_PATTERN

log = logging.getLogger(__name__)

DOWNLOAD_ACTION = "audit_log.download"
INCOMPLETE_EXPORT_MESSAGE = (
    "export interrupted: the search backend failed; this file is incomplete, export again"
)
API_SERVICE_NAME = "audit-api"
_LOG_ID = re.compile(LOG_ID_PATTERN)


class Publisher(Protocol):
    def publish_and_wait(self, event: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class CursorKeys:
    """How cursors are signed and how long they stay valid (`Settings`)."""

    secret: bytes = field(repr=False)
    ttl_s: int


@dataclass(frozen=True)
class RequestInfo:
    """What the download event says about the HTTP request (SPEC §2 `source`)."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


def list_logs(
    store: Store, cursors: CursorKeys, params: Mapping[str, Any], caller: Caller, now: datetime
) -> dict[str, Any]:
    """One page of SPEC §4's list response. Raises `CursorError` for a bad cursor."""
    digest = fingerprint(selection(params), scope_identity(caller))
    cursor = None
    if params.get("cursor"):
        cursor = decode_cursor(params["cursor"], cursors.secret, digest, now.timestamp())
    window = (cursor.window_from, cursor.window_to) if cursor else resolve_window(params, now)
    limit = int(params["limit"])
    page = store.search(build_list_query(params, caller, now, cursor))
    next_cursor = None
    if len(page.documents) > limit:
        expires_at = int(now.timestamp()) + cursors.ttl_s
        position = page.sort_values[limit - 1]
        next_cursor = encode_cursor(
            Cursor(position, window[0], window[1], digest, expires_at), cursors.secret
        )
    return {
        "items": [document_to_log(doc) for doc in page.documents[:limit]],
        "next_cursor": next_cursor,
        "total": page.total,
    }


def is_log_id(value: str) -> bool:
    """Whether `value` can be a Log ID at all (anything else is a 404 without a query)."""
    return _LOG_ID.fullmatch(value) is not None


def get_log(store: Store, log_id: str, caller: Caller) -> dict[str, Any] | None:
    """The log with details, or None when it does not exist *or* is outside the scope."""
    document = get_source(store, log_id, caller)
    return document_to_log_detail(document) if document is not None else None


def get_source(store: Store, log_id: str, caller: Caller) -> dict[str, Any] | None:
    """The stored document of a log, or None when it does not exist *or* is out of scope."""
    return store.get(build_detail_query(log_id, caller))


def open_export(
    store: Store,
    publisher: Publisher,
    params: Mapping[str, Any],
    caller: Caller,
    now: datetime,
    request: RequestInfo,
) -> tuple[Iterator[bytes], dict[str, Any]]:
    """An export ready to stream, and its `audit_log.download` event.

    In this order: the search is opened (its first page fetched: an outage or a refusal is a
    503 or 400 before anything is recorded), then the download event is published and its
    own acknowledgement awaited (refused: the search is closed, `DownloadNotRecorded`), and
    only then may the body stream.
    """
    event = download_event(params, caller, now, request)
    documents = store.scan(build_export_query(params, caller, now))
    try:
        record_download(publisher, event)
    except DownloadNotRecorded:
        documents.close()
        raise
    fmt, read = params["format"], [0]
    if params.get("integrity"):
        details = (
            {**document_to_log_detail(document), EXPORT_INTEGRITY_KEY: proof}
            for document, proof in with_proofs(store, caller, documents)
        )
        rows = lines(fmt, _counted(fmt, details, read))
    else:
        # Without proofs, the rows are written straight from the stored documents (B4).
        rows = document_lines(fmt, _counted(fmt, documents, read))
    return _streamed(publisher, fmt, documents, rows, read, event), event


def _streamed(
    publisher: Publisher,
    fmt: str,
    documents: Scan,
    rows: Iterator[str],
    read: list[int],
    event: dict[str, Any],
) -> Iterator[bytes]:
    """The body (`rows`; `read[0]` counts the logs read so far); a failure after the first
    byte ends it as a failed transfer.

    Once the response has started, a status code can no longer say anything: an error is
    raised through the WSGI server, which then drops the connection before the chunked
    body's final marker, so the client sees an incomplete download, never a short file
    that looks whole. NDJSON gets a last line saying so; and a follow-up download event
    records that this export did not complete.
    """
    try:
        yield from chunked(rows)
    except GeneratorExit:  # the client stopped reading
        _record_incomplete(publisher, event, read[0], "client_disconnected")
        raise
    except Exception as error:
        log.error("export %s failed after %d logs: %r", event["event_id"], read[0], error)
        _record_incomplete(publisher, event, read[0], "backend_failed")
        if fmt == "ndjson":
            yield (json.dumps({"error": INCOMPLETE_EXPORT_MESSAGE}) + "\n").encode()
        raise
    finally:
        documents.close()


#: The exported-logs counter is added to once per this many logs (and at the end): a
#: multiprocess counter takes a lock and checks the process id on every addition.
COUNT_EVERY = 1000


def _counted(fmt: str, logs: Iterable[dict[str, Any]], read: list[int]) -> Iterator[dict[str, Any]]:
    """`logs`, with how many were read in `read[0]` and in the exported-logs counter."""
    counter = EXPORTED_LOGS.labels(fmt)
    try:
        for log_ in logs:
            read[0] += 1
            if read[0] % COUNT_EVERY == 0:
                counter.inc(COUNT_EVERY)
            yield log_
    finally:
        if read[0] % COUNT_EVERY:
            counter.inc(read[0] % COUNT_EVERY)


def download_event(
    params: Mapping[str, Any], caller: Caller, now: datetime, request: RequestInfo
) -> dict[str, Any]:
    """The `audit_log.download` event recording an export, with the caller as actor."""
    window = resolve_window(params, now)
    organizations = params.get("organization_id") or []
    fmt = params["format"]
    metadata: dict[str, Any] = {"format": fmt, "from": window[0] or None, "to": window[1]}
    for key in ("q", "status", "source", "actor_type"):
        if params.get(key):
            metadata[key] = params[key]
    for key in ("category", "activity", "organization_id", "actor_id"):
        if params.get(key):
            # SPEC §2 metadata values are scalars: lists travel as JSON text.
            metadata[key] = json.dumps(sorted(set(params[key])))
    metadata = {key: value for key, value in metadata.items() if value is not None}
    event: dict[str, Any] = {
        "event_id": f"download-{uuid.uuid4()}",
        "schema_version": 1,
        "occurred_at": now.astimezone(UTC).isoformat(timespec="milliseconds"),
        "action": DOWNLOAD_ACTION,
        "partner_id": caller.partner_id,
        "actor": _strip_none(
            {"type": "partner_user", "id": caller.sub, "name": caller.name, "role": caller.role}
        ),
        "source": _strip_none(
            {
                "channel": "api",
                "ip": _valid_ip(request.ip),
                "user_agent": request.user_agent,
                "service": API_SERVICE_NAME,
                "request_id": request.request_id,
            }
        ),
        "object": {"type": "audit_log", "name": f"audit-logs.{fmt}"},
        "status": "success",
        "description": f"Exported audit logs as {fmt.upper()}",
        "metadata": metadata,
    }
    # Only a single organization filter makes the export "that organization's audit log".
    if len(set(organizations)) == 1:
        event["organization"] = {"id": organizations[0]}
    return event


class DownloadNotRecorded(Exception):
    """The `audit_log.download` event could not be published, so the export is refused."""


def record_download(publisher: Publisher, event: dict[str, Any]) -> None:
    """Publish and wait for the broker's acknowledgement of this very event.

    Raises `DownloadNotRecorded` when it cannot be delivered: the export is refused rather
    than served unrecorded, since an audit log whose own downloads go unaudited is not one.
    """
    try:
        publisher.publish_and_wait(event)
    except Exception as exc:
        DOWNLOAD_EVENTS.labels("failed").inc()
        raise DownloadNotRecorded(str(exc)) from exc
    DOWNLOAD_EVENTS.labels("published").inc()


def incomplete_download_event(
    download: dict[str, Any], logs_read: int, reason: str
) -> dict[str, Any]:
    """The follow-up of a download event whose export did not complete (events are never
    changed once published, so the outcome is a second event naming the first)."""
    fmt = download["metadata"]["format"]
    return {
        **download,
        "event_id": f"{download['event_id']}.incomplete",
        "status": "failure",
        "status_reason": reason,
        "description": f"Export of audit logs as {fmt.upper()} did not complete "
        f"({logs_read} logs read)",
        "metadata": {
            **download["metadata"],
            "download_event_id": download["event_id"],
            "logs_read": logs_read,
        },
    }


def _record_incomplete(
    publisher: Publisher, download: dict[str, Any], logs_read: int, reason: str
) -> None:
    event = incomplete_download_event(download, logs_read, reason)
    try:
        publisher.publish_and_wait(event)
    except Exception:  # the transfer fails either way; say why in the API's log
        DOWNLOAD_EVENTS.labels("failed").inc()
        log.exception("could not record that export %s did not complete", download["event_id"])
        return
    DOWNLOAD_EVENTS.labels("incomplete").inc()


def _valid_ip(text: str | None) -> str | None:
    """The peer address if it is one (behind a Unix socket it may be empty or a path):
    an unparsable value would make the download event invalid and refuse the export."""
    try:
        return str(ipaddress.ip_address(text or ""))
    except ValueError:
        return None


def _strip_none(values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if value is not None}
