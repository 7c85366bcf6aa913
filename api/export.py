"""Export formats: one detail-shaped log in, one line of CSV or NDJSON out.

Both work line by line on an iterator so an export of millions of logs never holds more
than the store's current page in memory.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from schemas.log_shape import CSV_COLUMNS as LOG_CSV_COLUMNS

#: Column names, from the contract (schemas.log_shape); `csv_row` fills them in this order.
CSV_COLUMNS = tuple(name for name, _path in LOG_CSV_COLUMNS)

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}

# A cell starting with one of these is a formula to spreadsheet software (CSV injection);
# descriptions and names come from upstream services and users, so they are neutralised.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
# Flush the CSV buffer to the client once it holds this much.
CHUNK_CHARS = 64 * 1024


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if value.__class__ is str:
        text: str = value
    elif isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    else:
        text = str(value)
    if text and text[0] in _FORMULA_PREFIXES:
        return "'" + text
    return text


_EMPTY: dict[str, Any] = {}


def csv_row(log: dict[str, Any]) -> list[str]:
    """Flatten a LOG-with-details into the CSV columns (in `CSV_COLUMNS` order).

    Written out rather than walking the column paths: it runs once per exported row (B4).
    tests/unit/test_schemas_log_shape.py checks it against the paths of schemas.log_shape."""
    organization = log.get("organization") or _EMPTY
    category = log.get("category") or _EMPTY
    activity = log.get("activity") or _EMPTY
    actor = log.get("actor") or _EMPTY
    obj = log.get("object") or _EMPTY
    details = log.get("details") or _EMPTY
    values = (
        log.get("id"),
        log.get("timestamp"),
        log.get("partner_id"),
        organization.get("id"),
        organization.get("name"),
        category.get("label"),
        activity.get("code"),
        activity.get("label"),
        actor.get("type"),
        actor.get("id"),
        actor.get("name"),
        actor.get("email"),
        actor.get("role"),
        log.get("source"),
        obj.get("type"),
        obj.get("id"),
        obj.get("name"),
        log.get("status"),
        log.get("status_reason"),
        log.get("description"),
        details.get("ip"),
        details.get("user_agent"),
        details.get("service"),
        details.get("request_id"),
        details.get("changes") or None,
        details.get("metadata") or None,
        details.get("ingested_at"),
    )
    return [_cell(value) for value in values]


def csv_lines(logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    """CSV text in chunks of about `CHUNK_CHARS` (the header comes with the first one)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for log in logs:
        writer.writerow(csv_row(log))
        if buffer.tell() >= CHUNK_CHARS:
            yield _drain(buffer)
    if buffer.tell():
        yield _drain(buffer)


def ndjson_lines(logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    for log in logs:
        yield json.dumps(log, ensure_ascii=False, separators=(",", ":")) + "\n"


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def lines(fmt: str, logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    return csv_lines(logs) if fmt == "csv" else ndjson_lines(logs)


def chunked(pieces: Iterable[str], size: int = 64 * 1024) -> Iterator[bytes]:
    """Group small lines into ~`size`-byte chunks: one socket write per row would make a
    million-row export spend its time in system calls.

    The first piece (the CSV header, or the first NDJSON line) goes out alone and at once:
    once the response has started, a later failure can only end it as a failed transfer,
    never turn into an error page the client would save as the file.
    """
    batch: list[str] = []
    length = 0
    first = True
    for piece in pieces:
        if first:
            first = False
            yield piece.encode("utf-8")
            continue
        batch.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(batch).encode("utf-8")
            batch, length = [], 0
    if batch:
        yield "".join(batch).encode("utf-8")
