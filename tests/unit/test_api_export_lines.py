"""`api.export.csv_lines` builds each line without `csv.writer`: the bytes must be exactly
what the writer makes of `csv_row` (minimal quoting, CRLF), for ordinary rows and for every
awkward cell (commas, quotes, line breaks, formulas, values that are not text)."""

from __future__ import annotations

import csv
import io
import json
import random
from datetime import UTC, datetime
from typing import Any

from api.export import CSV_COLUMNS, _quoted, csv_lines, csv_row, document_lines, lines, ndjson_lines
from schemas.demo import generate_events
from schemas.document import build_document, document_to_log_detail
from schemas.event import validate_event

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
AWKWARD = [",", '"', "\r", "\n", "\t", "=", "+", "-", "@", "'", " ", "a", "é", "\u2028", ";", "\\"]


def written(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return buffer.getvalue()


def documents() -> list[dict[str, Any]]:
    events = generate_events(400, seed=5, now=NOW, days=3)
    return [build_document(validate_event(e, now=NOW), NOW) for e in events]


def details() -> list[dict[str, Any]]:
    return [document_to_log_detail(document) for document in documents()]


def awkward_text(rng: random.Random) -> str:
    return "".join(rng.choice(AWKWARD) for _ in range(rng.randint(0, 6)))


def awkward(log: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """`log` with one of its values replaced by something a CSV writer must take care of."""
    log = json.loads(json.dumps(log))
    choice = rng.randrange(8)
    if choice == 0:
        log["description"] = awkward_text(rng)
    elif choice == 1:
        log["details"]["user_agent"] = awkward_text(rng)
    elif choice == 2:
        log["id"] = awkward_text(rng)  # the first cell
    elif choice == 3:
        log["details"]["ingested_at"] = awkward_text(rng)  # the last cell
    elif choice == 4:
        log["status_reason"] = rng.choice([0, -5, 1.5, False, True, ["x"], {"a": "b"}])
    elif choice == 5:
        log["details"]["metadata"] = {awkward_text(rng): rng.choice([awkward_text(rng), 1, None])}
    elif choice == 6:
        log["details"]["changes"] = [{"field": awkward_text(rng), "old": None, "new": [1, 2]}]
    else:
        log["details"]["metadata"] = rng.choice([{}, {"n": 1e16}, {"k": "=1+2"}])
        log["details"]["changes"] = rng.choice([[], [1], [[]], "text", {"a": 1}])
    return log


def test_csv_lines_are_what_the_csv_writer_writes() -> None:
    logs = details()
    rng = random.Random(7)
    logs += [awkward(rng.choice(logs), rng) for _ in range(3000)]
    assert "".join(csv_lines(logs)) == written([csv_row(log) for log in logs])


def test_an_export_of_nothing_is_the_header() -> None:
    assert "".join(csv_lines([])) == written([])


def test_quoting_is_the_csv_writers() -> None:
    rng = random.Random(3)
    for _ in range(20000):
        cell = awkward_text(rng)
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\r\n").writerow([cell, "x"])
        assert _quoted(cell) + ",x\r\n" == buffer.getvalue()


def test_ndjson_lines_are_compact_json_of_each_log() -> None:
    logs = details()[:50]
    expected = "".join(
        json.dumps(log, ensure_ascii=False, separators=(",", ":")) + "\n" for log in logs
    )
    assert "".join(ndjson_lines(logs)) == expected


def awkward_document(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """A stored document with one part missing, odd or awkward to write as CSV."""
    document = json.loads(json.dumps(document))
    audit = document["audit"]
    choice = rng.randrange(10)
    if choice == 0:
        document["message"] = awkward_text(rng)
    elif choice == 1:
        document["user_agent"] = {"original": awkward_text(rng)}
    elif choice == 2:
        document["event"]["id"] = awkward_text(rng)
    elif choice == 3:
        for part in ("organization", "user", "source", "user_agent", "service", "http"):
            if rng.random() < 0.5:
                document.pop(part, None)
        audit.pop("object", None)
    elif choice == 4:
        audit["metadata"] = {"big": 123456789012345678901234567890, "x": awkward_text(rng)}
    elif choice == 5:
        audit["changes"] = [{"new": [1, 2], "extra": 1, "field": awkward_text(rng)}, {"field": "f"}]
    elif choice == 6:
        audit["changes"], audit["metadata"] = [], {}
    elif choice == 7:
        document["user"] = {"roles": [], "name": awkward_text(rng)}
    elif choice == 8:
        document["organization"], audit["object"] = {}, {"type": awkward_text(rng)}
    else:
        document["event"]["reason"] = rng.choice([0, 1.5, False, awkward_text(rng)])
    return document


def test_rows_straight_from_the_documents_are_the_rows_of_their_details() -> None:
    stored = documents()
    rng = random.Random(11)
    stored += [awkward_document(rng.choice(stored), rng) for _ in range(3000)]
    for fmt in ("csv", "ndjson"):
        expected = "".join(lines(fmt, (document_to_log_detail(d) for d in stored)))
        assert "".join(document_lines(fmt, stored)) == expected
    assert "".join(document_lines("csv", [])) == written([])
