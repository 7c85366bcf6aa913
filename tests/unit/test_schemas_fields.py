"""The field names of `schemas.fields` are where the builder writes and the mapping maps."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas import fields
from schemas.document import build_document
from schemas.event import validate_event
from schemas.index_template import INDEX_SORT, mappings
from tests.support.events import make_event


def _document() -> dict[str, Any]:
    event = make_event(
        organization={"id": "org-7", "name": "Acme Ltd"},
        obj={"type": "organization", "id": "org-7", "name": "Acme Ltd"},
    )
    return build_document(validate_event(event), datetime(2026, 12, 1, tzinfo=UTC))


@pytest.mark.parametrize("name", fields.NAMES)
def test_every_name_is_in_the_document_and_the_mapping(name: str) -> None:
    value: Any = _document()
    mapped: Any = mappings()
    for part in fields.path(name):
        value = value[part]
        mapped = mapped["properties"][part]
    assert value is not None
    assert "type" in mapped


def test_the_index_is_sorted_as_lists_are() -> None:
    assert list(zip(INDEX_SORT["field"], INDEX_SORT["order"], strict=True)) == list(
        fields.SORT_ORDER
    )
    assert fields.last_key(fields.LOG_ID) == "id"
