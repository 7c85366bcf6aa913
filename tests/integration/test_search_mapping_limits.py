"""Valid events, including awkward ones, always fit the strict mapping (an indexing
rejection would send a valid event to the dead-letter topic)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from schemas.document import build_document, document_to_log_detail, index_name
from schemas.event import validate_event
from schemas.index_template import index_template, read_alias, template_name
from tests.unit.test_schemas_document import events
from tests.unit.test_schemas_event import NOW, valid_event


@pytest.fixture
def prefix(es: Any, unique_name: Callable[[str], str]) -> Iterator[str]:
    name = unique_name("search-limits")
    es.indices.put_index_template(name=template_name(name), **index_template(name))
    yield name


def index_event(es: Any, prefix: str, event: dict[str, Any]) -> dict[str, Any]:
    """Index the event's document; return the LOG detail read back from Elasticsearch."""
    validated = validate_event(json.loads(json.dumps(event)), now=NOW)
    document = build_document(validated, datetime.now(UTC))
    index = index_name(prefix, validated["occurred_at"])
    es.index(index=index, id=validated["event_id"], document=document, refresh=True)
    return document_to_log_detail(es.get(index=index, id=validated["event_id"])["_source"])


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"level": [value]}
    return value


AWKWARD = {
    "huge free text": {
        "description": "x" * 4096,
        "actor": {"type": "system", "id": "s", "name": "n" * 40000, "email": "e" * 40000},
    },
    "deep change values": {"changes": [{"field": "f" * 5000, "old": nested(40), "new": [[1]]}]},
    "changes of every JSON type": {
        "changes": [
            {"field": "a", "old": 1, "new": "1"},
            {"field": "a", "old": {"x": 1}, "new": [1, "x", None]},
            {"field": "a", "old": 1.5, "new": True},
        ]
    },
    "metadata keys with dots and huge values": {
        "metadata": {"a.b": 1, "a": "x", "n": None, "big": 2**63, "long": "v" * 10000}
    },
    "unicode everywhere": {
        "actor": {"type": "partner_user", "id": "ü-1", "name": "Zoë 山田 🙂", "email": "ä@b.ç"},
        "object": {"type": "ad_group", "name": "Ærø \u0000 \ufeff"},
    },
    "ipv6": {"source": {"channel": "api", "ip": "::ffff:192.0.2.1"}},
}


@pytest.mark.parametrize("patch", AWKWARD.values(), ids=AWKWARD.keys())
def test_awkward_valid_events_index(es: Any, prefix: str, patch: dict[str, Any]) -> None:
    event = valid_event() | patch
    detail = index_event(es, prefix, event)
    assert detail["id"] == event["event_id"]
    if "changes" in patch:
        assert detail["details"]["changes"] == [
            {"field": c["field"], "old": c.get("old"), "new": c.get("new")}
            for c in patch["changes"]
        ]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(event=events())
def test_generated_valid_events_index(es: Any, prefix: str, event: dict[str, Any]) -> None:
    assert index_event(es, prefix, event)["id"] == event["event_id"]
    assert es.count(index=read_alias(prefix), query={"ids": {"values": [event["event_id"]]}})
