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

CSV_COLUMNS = (
    "id",
    "timestamp",
    "partner_id",
    "organization_id",
    "organization_name",
    "category",
    "activity_code",
    "activity",
    "actor_type",
    "actor_id",
    "actor_name",
    "actor_email",
    "actor_role",
    "source",
    "object_type",
    "object_id",
    "object_name",
    "status",
    "status_reason",
    "description",
    "ip",
    "user_agent",
    "service",
    "request_id",
    "changes",
    "metadata",
    "ingested_at",
)

MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "ndjson": "application/x-ndjson"}

# A cell starting with one of these is a formula to spreadsheet software (CSV injection);
# descriptions and names come from upstream services and users, so they are neutralised.
_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    text = str(value)
    if text.startswith(_FORMULA_PREFIXES):
        return "'" + text
    return text


def csv_row(log: dict[str, Any]) -> dict[str, str]:
    """Flatten a LOG-with-details into the CSV columns."""

    def part(name: str) -> dict[str, Any]:
        value = log.get(name)
        return value if isinstance(value, dict) else {}

    organization, category, activity = part("organization"), part("category"), part("activity")
    actor, obj, details = part("actor"), part("object"), part("details")
    row = {
        "id": log.get("id"),
        "timestamp": log.get("timestamp"),
        "partner_id": log.get("partner_id"),
        "organization_id": organization.get("id"),
        "organization_name": organization.get("name"),
        "category": category.get("label"),
        "activity_code": activity.get("code"),
        "activity": activity.get("label"),
        "actor_type": actor.get("type"),
        "actor_id": actor.get("id"),
        "actor_name": actor.get("name"),
        "actor_email": actor.get("email"),
        "actor_role": actor.get("role"),
        "source": log.get("source"),
        "object_type": obj.get("type"),
        "object_id": obj.get("id"),
        "object_name": obj.get("name"),
        "status": log.get("status"),
        "status_reason": log.get("status_reason"),
        "description": log.get("description"),
        "ip": details.get("ip"),
        "user_agent": details.get("user_agent"),
        "service": details.get("service"),
        "request_id": details.get("request_id"),
        "changes": details.get("changes") or None,
        "metadata": details.get("metadata") or None,
        "ingested_at": details.get("ingested_at"),
    }
    return {column: _cell(row[column]) for column in CSV_COLUMNS}


def csv_lines(logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=CSV_COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    yield _drain(buffer)
    for log in logs:
        writer.writerow(csv_row(log))
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
    million-row export spend its time in system calls."""
    batch: list[str] = []
    length = 0
    for piece in pieces:
        batch.append(piece)
        length += len(piece)
        if length >= size:
            yield "".join(batch).encode("utf-8")
            batch, length = [], 0
    if batch:
        yield "".join(batch).encode("utf-8")
