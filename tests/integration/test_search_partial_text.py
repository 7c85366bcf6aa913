"""SPEC §4 ``q`` on the real (minimal) Elasticsearch: the template installs, and documents
built from events are found or not found exactly as the rules say, with ``text_query``."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.document import build_document, index_name
from schemas.event import validate_event
from schemas.index_template import index_template, read_alias, template_name
from schemas.search import text_query
from tests.unit.test_schemas_search import spec_match

NOW = datetime.now(UTC)


def make_event(
    event_id: str,
    *,
    action: str = "password.reset",
    actor: dict[str, Any],
    obj: dict[str, Any] | None = None,
    description: str | None = None,
    occurred_at: datetime | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": event_id,
        "schema_version": 1,
        "occurred_at": (occurred_at or NOW - timedelta(hours=1)).isoformat(),
        "action": action,
        "partner_id": "p-001",
        "organization": {"id": "org-0001", "name": "Northwind"},
        "actor": {"type": "partner_user", **actor},
        "source": {"channel": "ui", "ip": "203.0.113.9"},
        "status": "success",
    }
    if obj is not None:
        event["object"] = obj
    if description is not None:
        event["description"] = description
    return event


def install_and_index(es: Any, prefix: str, events: Iterable[dict[str, Any]]) -> None:
    es.indices.put_index_template(name=template_name(prefix), **index_template(prefix))
    for event in events:
        validated = validate_event(event)
        es.index(
            index=index_name(prefix, validated["occurred_at"]),
            id=validated["event_id"],
            document=build_document(validated, datetime.now(UTC)),
            op_type="create",
        )
    es.indices.refresh(index=read_alias(prefix))


def found(es: Any, prefix: str, q: str) -> set[str]:
    query = text_query(q)
    assert query is not None
    response = es.search(
        index=read_alias(prefix), query=query, size=1000, source_includes=["event.id"]
    )
    return {hit["_id"] for hit in response["hits"]["hits"]}


CORPUS = [
    # A: the SPEC's own examples (description generated: "Enable compliance — Acme Ltd by ...").
    make_event(
        "log-AAA-7f3e9c21-end",
        action="compliance.enable",
        actor={"id": "u-42", "name": "Jane Doe", "email": "jane@acme.com"},
        obj={"type": "organization", "id": "org-7", "name": "Acme Ltd"},
    ),
    # B: special characters that must stay literal.
    make_event(
        "log-BBB-0001",
        actor={"id": "u-9", "name": "Bob Stone", "email": "bob@contoso.example"},
        obj={"type": "user", "id": "u-77", "name": "Mary (Ops)"},
        description='Reset "mary" via C:\\tools\\reset.exe path/to/x *urgent* '
        "key:value (ticket) why?",
    ),
    # C: every trigram of "jane@acme" is present, but spread over two values.
    make_event(
        "log-CCC-0002",
        actor={"id": "u-3", "name": "Jane", "email": "one@acme.io"},
        description="Routine reset",
    ),
]
A, B, C = "log-AAA-7f3e9c21-end", "log-BBB-0001", "log-CCC-0002"


@pytest.fixture(scope="module")
def corpus_prefix(es: Any) -> Iterator[str]:
    # Module scope: one small corpus serves every read-only query below.
    prefix = f"t-search-corpus-{uuid.uuid4().hex[:10]}"
    install_and_index(es, prefix, CORPUS)
    yield prefix
    es.options(ignore_status=404).indices.delete(index=f"{prefix}-*")
    es.options(ignore_status=404).indices.delete_index_template(name=template_name(prefix))


def test_template_installs_with_alias_and_strict_mapping(es: Any, corpus_prefix: str) -> None:
    template = es.indices.get_index_template(name=template_name(corpus_prefix))
    assert template["index_templates"][0]["index_template"]["index_patterns"] == [
        f"{corpus_prefix}-*"
    ]
    indices = es.indices.get_alias(name=read_alias(corpus_prefix))
    assert list(indices) == [index_name(corpus_prefix, NOW - timedelta(hours=1))]
    with pytest.raises(Exception, match="strict_dynamic_mapping"):
        es.index(index=next(iter(indices)), document={"surprise": 1})


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("ompli", {A}),  # inside "Enable compliance"
        ("acme.co", {A}),  # inside jane@acme.com, punctuation included
        ("7f3e9c", {A}),  # middle piece of a Log ID
        ("AAA-7F3E", {A}),
        ("JANE@ACME.COM", {A}),  # case-insensitive
        ("jane@acme", {A}),  # not C: its trigrams are in two different values
        ("ja", {A, C}),  # 2 characters: start of a word
        ("co", {A, B}),  # "com", "compliance"; "contoso"
        ("ne", set()),  # only in the middle of words
        ("e", {A, B}),  # "Enable"; "exe" after the dot in reset.exe
        ("*", {B}),  # literal: "*urgent*" starts with it
        ("*urg", {B}),
        ("urgent*", {B}),
        ("a*", set()),  # not a wildcard
        ('"mary"', {B}),
        ('mary"', {B}),
        ("c:\\tools\\", {B}),
        ("\\", set()),  # a backslash inside a word is not a word start
        ("key:val", {B}),
        (":", set()),
        ("(ticket)", {B}),
        ("(", {A, B}),  # A's generated description ends "Acme Ltd (Northwind) by ..."
        ("(ops", {B}),
        ("path/to", {B}),
        ("why?", {B}),
        ("?", set()),
        ("jane acme", {A, C}),  # AND across terms, each may match a different value
        ("jane contoso", set()),
        ("reset routine", {C}),
        ("zzz", set()),
    ],
)
def test_q_rules(es: Any, corpus_prefix: str, q: str, expected: set[str]) -> None:
    assert found(es, corpus_prefix, q) == expected
    # The offline reference agrees, so the unit tests describe what Elasticsearch does.
    assert {e["event_id"] for e in CORPUS if spec_match(q, searchable(e))} == expected


def searchable(event: dict[str, Any]) -> list[str]:
    validated = validate_event(event)
    doc = build_document(validated, NOW)
    obj = event.get("object", {})
    return [
        event["event_id"],
        event["actor"]["id"],
        event["actor"].get("name", ""),
        event["actor"].get("email", ""),
        obj.get("id", ""),
        obj.get("name", ""),
        doc["message"],
    ]


def test_random_corpus_matches_reference(es: Any, unique_name: Callable[[str], str]) -> None:
    """Many random values and terms: Elasticsearch returns exactly the reference's answer."""
    rng = random.Random(20261126)
    alphabet = 'abcAB12.-@_*(" é'

    def word(low: int, high: int) -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high))).strip()

    events = [
        make_event(
            f"r-{n}",
            actor={"id": word(1, 6) or "x", "name": word(0, 10), "email": word(0, 10)},
            obj={"type": "user", "id": word(1, 5) or "o", "name": word(0, 8)},
            description=word(1, 20) or "d",
        )
        for n in range(80)
    ]
    for event in events:  # empty optional strings are not events anyone sends
        event["actor"] = {k: v for k, v in event["actor"].items() if v}
        event["object"] = {k: v for k, v in event["object"].items() if v}
    prefix = unique_name("search-random")
    install_and_index(es, prefix, events)
    for _ in range(150):
        q = " ".join(word(1, 4).replace(" ", "") or "a" for _ in range(rng.randint(1, 2)))
        expected = {e["event_id"] for e in events if spec_match(q, searchable(e))}
        assert found(es, prefix, q) == expected, q
