"""The LOG shapes are written once (schemas.log_shape): what the fast path builds without a
marshmallow dump is exactly what they describe, and the CSV follows their column paths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marshmallow import RAISE

from api.export import CSV_COLUMNS, _cell, csv_row
from schemas.demo import generate_events
from schemas.document import build_document, document_to_log, document_to_log_detail
from schemas.event import validate_event
from schemas.log_shape import CSV_COLUMNS as COLUMN_PATHS
from schemas.log_shape import Log, LogDetail

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
EVENTS = list(generate_events(300, seed=11, now=NOW, days=3))


def documents() -> list[dict[str, Any]]:
    built = [build_document(validate_event(e, now=NOW), NOW) for e in EVENTS]
    full = dict(EVENTS[0])  # every optional part present
    full.update(
        organization={"id": "org-1", "name": "Org"},
        object={"type": "user", "id": "u-9", "name": "U"},
        status="failure",
        status_reason="not_found",
        changes=[{"field": "f", "old": None, "new": {"a": [1]}}],
        metadata={"k": 1.5, "b": True, "n": None},
        source={
            "channel": "api",
            "ip": "2001:db8::1",
            "user_agent": "ua",
            "service": "s",
            "request_id": "r",
        },
        occurred_at=(NOW - timedelta(minutes=1)).isoformat(),
    )
    return [*built, build_document(validate_event(full, now=NOW), NOW)]


@pytest.mark.parametrize(
    ("shape", "convert"), [(Log, document_to_log), (LogDetail, document_to_log_detail)]
)
def test_the_fast_path_builds_exactly_the_documented_shape(shape: Any, convert: Any) -> None:
    schema = shape(unknown=RAISE)
    for document in documents():
        built = convert(document)
        assert schema.validate(built) == {}, built
        assert set(built) == set(schema.fields)  # no field missing, none extra


def value_at(log: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = log
    for key in path:
        value = (value or {}).get(key)
    return value


def test_csv_rows_follow_the_column_paths_of_the_contract() -> None:
    assert tuple(name for name, _ in COLUMN_PATHS) == CSV_COLUMNS
    for document in documents():
        log = document_to_log_detail(document)
        expected = [_cell(value_at(log, path) or None) for _, path in COLUMN_PATHS]
        assert csv_row(log) == expected


def test_every_leaf_of_the_detail_shape_is_exported_or_named_as_left_out() -> None:
    left_out = {("category", "code")}  # the category's label is exported, its code is not
    leaves: set[tuple[str, ...]] = set()
    for name, field in LogDetail().fields.items():
        nested = getattr(field, "nested", None)
        if nested is not None and not hasattr(field, "inner"):
            schema = nested() if isinstance(nested, type) else nested
            leaves |= {(name, sub) for sub in schema.fields}
        else:
            leaves.add((name,))
    exported = {path for _, path in COLUMN_PATHS}
    assert leaves - exported == left_out
