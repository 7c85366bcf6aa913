"""Export formats: one detail-shaped log in, one line of CSV or NDJSON out.

Both work line by line on an iterator so an export of millions of logs never holds more
than the store's current page in memory.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from schemas.document import NAMESPACE, document_to_log_detail
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
        return _json(value)
    else:
        text = str(value)
    if text and text[0] in _FORMULA_PREFIXES:
        return "'" + text
    return text


#: `json.dumps(value, ensure_ascii=False, separators=(",", ":"))`, with the encoder built
#: once rather than on every call (the same encoder, so the same text).
_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

_EMPTY: dict[str, Any] = {}


def _values(log: dict[str, Any]) -> tuple[Any, ...]:
    """The raw values of a LOG-with-details in `CSV_COLUMNS` order (before `_cell`).

    Written out rather than walking the column paths: it runs once per exported row (B4).
    tests/unit/test_schemas_log_shape.py checks it against the paths of schemas.log_shape."""
    organization = log.get("organization") or _EMPTY
    category = log.get("category") or _EMPTY
    activity = log.get("activity") or _EMPTY
    actor = log.get("actor") or _EMPTY
    obj = log.get("object") or _EMPTY
    details = log.get("details") or _EMPTY
    return (
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


def _document_parts(doc: dict[str, Any]) -> tuple[tuple[Any, ...], Any, Any]:
    """`_parts(document_to_log_detail(doc))` read straight from a stored document (its
    `_source`), without building the LOG and its details: what a CSV export does per row.
    An absent value is "" here (None there): the same empty cell.
    tests/unit/test_api_export_lines.py checks the two give the same lines."""
    event, audit = doc["event"], doc[NAMESPACE]
    user = doc.get("user", _EMPTY)
    organization = doc.get("organization") or _EMPTY
    obj = audit.get("object") or _EMPTY
    changes = audit.get("changes", _NONE)
    metadata = audit.get("metadata", _EMPTY)
    texts = (
        event["id"],
        doc["@timestamp"],
        audit["partner_id"],
        organization.get("id", ""),
        organization.get("name", ""),
        audit["category"].get("label", ""),
        audit["activity"].get("code", ""),
        audit["activity"].get("label", ""),
        audit["actor"]["type"],
        user.get("id", ""),
        user.get("name", ""),
        user.get("email", ""),
        (user.get("roles") or _NO_ROLE)[0],
        audit["source"]["channel"],
        obj.get("type", ""),
        obj.get("id", ""),
        obj.get("name", ""),
        event["outcome"],
        event.get("reason", ""),
        doc.get("message", ""),
        doc.get("source", _EMPTY).get("ip", ""),
        doc.get("user_agent", _EMPTY).get("original", ""),
        doc.get("service", _EMPTY).get("name", ""),
        doc.get("http", _EMPTY).get("request", _EMPTY).get("id", ""),
        event.get("ingested", ""),
    )
    return (
        texts,
        [{"field": c["field"], "old": c.get("old"), "new": c.get("new")} for c in changes] or None,
        (metadata if metadata.__class__ is dict else dict(metadata)) or None,
    )


_NO_ROLE: list[Any] = [""]
_NONE: tuple[Any, ...] = ()


def _parts(log: dict[str, Any]) -> tuple[tuple[Any, ...], Any, Any]:
    """The values of a LOG-with-details as `_line` takes them: the text columns (all but
    the JSON ones, in order), then changes and metadata."""
    values = _values(log)
    return (*values[:_CHANGES], values[-1]), values[_CHANGES], values[_METADATA]


def csv_row(log: dict[str, Any]) -> list[str]:
    """Flatten a LOG-with-details into the CSV cells (in `CSV_COLUMNS` order)."""
    return [_cell(value) for value in _values(log)]


# The positions of the two JSON columns (changes, metadata): every other column is text.
_CHANGES = CSV_COLUMNS.index("changes")
_METADATA = CSV_COLUMNS.index("metadata")
if (_CHANGES, _METADATA, len(CSV_COLUMNS)) != (24, 25, 27):  # `csv_line` builds this layout
    raise ImportError("csv_line expects the columns ..., changes, metadata, ingested_at")
# In the text cells joined by commas, a cell starting a formula shows as one of these after
# a comma (or as the line's first character).
_FORMULA_AFTER_COMMA = re.compile("," + "[" + re.escape("".join(_FORMULA_PREFIXES)) + "]")


def csv_line(log: dict[str, Any]) -> str:
    """One CSV line (ending in CRLF) of a LOG-with-details: exactly what `csv.writer`
    (minimal quoting) writes for `csv_row(log)`."""
    return _line(*_parts(log))


def document_csv_line(document: dict[str, Any]) -> str:
    """`csv_line(document_to_log_detail(document))`, straight from the stored document."""
    return _line(*_document_parts(document))


def _line(texts: tuple[Any, ...], changes: Any, metadata: Any) -> str:
    """The CSV line of a row's raw values, without `csv.writer`'s per-cell calls: the text
    cells are joined once and checked on the joined line; only a row with a cell to
    neutralise or a value that is not text takes the cell-by-cell way."""
    try:
        plain = ",".join(texts)
    except TypeError:  # None (an empty cell), or a value that is not text: careful then
        try:
            plain = ",".join([text if text is not None else "" for text in texts])
        except TypeError:
            return _careful_line(texts, changes, metadata)
    if plain[:1] in _FORMULA_PREFIXES or _FORMULA_AFTER_COMMA.search(plain) is not None:
        return _careful_line(texts, changes, metadata)  # (or a comma inside a cell before one)
    if (changes is not None and changes.__class__ is not list) or (
        metadata is not None and metadata.__class__ is not dict
    ):
        return _careful_line(texts, changes, metadata)
    json_cells = (
        _quoted(_json(changes)) if changes else "",
        _quoted(_json(metadata)) if metadata else "",
    )
    others = '"' in plain or "\n" in plain or "\r" in plain
    if not others and plain.count(",") == len(texts) - 1:  # no cell to quote
        cut = plain.rfind(",")  # before the last text cell, `ingested_at`: the JSON cells go there
        return f"{plain[:cut]},{json_cells[0]},{json_cells[1]}{plain[cut:]}\r\n"
    cells = [text if text is not None else "" for text in texts]
    if others:
        quoted = [_quoted(cell) for cell in cells]
    else:  # only commas to quote (a user agent's, say): no quote character to double
        quoted = [f'"{cell}"' if "," in cell else cell for cell in cells]
    return ",".join([*quoted[:-1], *json_cells, quoted[-1]]) + "\r\n"


def _quoted(cell: str) -> str:
    """`cell` as `csv.writer` writes it with minimal quoting (tests/unit/test_api_export_lines.py
    compares the two)."""
    if '"' in cell or "," in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


def _careful_line(texts: tuple[Any, ...], changes: Any, metadata: Any) -> str:
    values = (*texts[:-1], changes, metadata, texts[-1])
    return ",".join([_quoted(_cell(value)) for value in values]) + "\r\n"


def csv_lines(logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    """CSV text: the header line first, on its own, then the rows in pieces of about
    `CHUNK_CHARS`."""
    return _csv_text(map(csv_line, logs))


def _csv_text(rows: Iterable[str]) -> Iterator[str]:
    yield ",".join([_quoted(name) for name in CSV_COLUMNS]) + "\r\n"
    batch: list[str] = []
    length = 0
    for line in rows:
        batch.append(line)
        length += len(line)
        if length >= CHUNK_CHARS:
            yield "".join(batch)
            batch, length = [], 0
    if batch:
        yield "".join(batch)


def ndjson_lines(logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    for log in logs:
        yield _json(log) + "\n"


def lines(fmt: str, logs: Iterable[dict[str, Any]]) -> Iterator[str]:
    """The export's text, from LOGs with details."""
    return csv_lines(logs) if fmt == "csv" else ndjson_lines(logs)


def document_lines(fmt: str, documents: Iterable[dict[str, Any]]) -> Iterator[str]:
    """`lines(fmt, map(document_to_log_detail, documents))`, the CSV made straight from the
    stored documents."""
    if fmt == "csv":
        return _csv_text(map(document_csv_line, documents))
    return ndjson_lines(map(document_to_log_detail, documents))


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
