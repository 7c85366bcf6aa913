"""The query builder and the scope rules, as plain dicts (no Elasticsearch)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from api.auth import AuthError, Caller
from api.cursor import Cursor
from api.query import (
    SORT,
    TOTAL_HITS_LIMIT,
    build_detail_query,
    build_export_query,
    build_list_query,
    resolve_window,
)
from api.scope import scope_filter
from schemas.document import document_id
from schemas.search import text_query

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
OWNER = Caller(sub="u-1", name="O", partner_id="p-100", role="owner")
ADMIN = Caller(sub="u-2", name="A", partner_id="p-100", role="admin", org_ids=("org-7", "org-2"))


def filters(body: dict) -> list[dict]:
    return body["query"]["bool"]["filter"]


def params(**values: object) -> dict:
    return {"limit": 50, **values}


# --- scope ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["owner", "super_admin"])
def test_partner_wide_roles_see_their_partner_only(role: str) -> None:
    caller = Caller(sub="u", name=None, partner_id="p-1", role=role, org_ids=("org-9",))
    assert scope_filter(caller) == [{"term": {"audit.partner_id": "p-1"}}]


@pytest.mark.parametrize("role", ["admin", "support"])
def test_organization_roles_see_their_organizations_of_their_partner(role: str) -> None:
    caller = Caller(sub="u", name=None, partner_id="p-1", role=role, org_ids=("b", "a"))
    assert scope_filter(caller) == [
        {"term": {"audit.partner_id": "p-1"}},
        {"terms": {"organization.id": ["a", "b"]}},
    ]


@pytest.mark.parametrize("role", ["admin", "support"])
def test_organization_role_without_organizations_sees_nothing(role: str) -> None:
    caller = Caller(sub="u", name=None, partner_id="p-1", role=role)
    assert {"match_none": {}} in scope_filter(caller)


@pytest.mark.parametrize("role", ["viewer", "", "OWNER", "root"])
def test_unknown_role_is_forbidden(role: str) -> None:
    with pytest.raises(AuthError) as info:
        scope_filter(Caller(sub="u", name=None, partner_id="p-1", role=role))
    assert info.value.status == 403


def test_every_query_carries_the_scope_first() -> None:
    for body in (
        build_list_query(params(), ADMIN, NOW),
        build_export_query(params(format="csv"), ADMIN, NOW),
        build_detail_query("evt-1", ADMIN),
    ):
        assert filters(body)[: len(scope_filter(ADMIN))] == scope_filter(ADMIN)


# --- time window ----------------------------------------------------------------------


def test_default_window_is_the_last_24_hours() -> None:
    body = build_list_query(params(), OWNER, NOW)
    assert {
        "range": {
            "@timestamp": {
                "gte": "2026-11-25T10:00:00.000000Z",
                "lte": "2026-11-26T10:00:00.000000Z",
            }
        }
    } in filters(body)


def test_from_alone_means_until_now() -> None:
    start = NOW - timedelta(days=3)
    assert resolve_window({"from_": start}, NOW) == (
        "2026-11-23T10:00:00.000000Z",
        "2026-11-26T10:00:00.000000Z",
    )


def test_to_alone_has_no_lower_bound() -> None:
    end = NOW - timedelta(days=3)
    body = build_list_query(params(to=end), OWNER, NOW)
    assert {"range": {"@timestamp": {"lte": "2026-11-23T10:00:00.000000Z"}}} in filters(body)


def test_from_and_to_are_converted_to_utc() -> None:
    plus_one = timezone(timedelta(hours=1))
    start = datetime(2026, 11, 1, 1, 0, tzinfo=plus_one)
    end = datetime(2026, 11, 2, 1, 0, tzinfo=plus_one)
    assert resolve_window({"from_": start, "to": end}, NOW) == (
        "2026-11-01T00:00:00.000000Z",
        "2026-11-02T00:00:00.000000Z",
    )


# --- filters ------------------------------------------------------------------------------


def test_repeatable_filters_are_or_within_and_across() -> None:
    body = build_list_query(
        params(
            category=["organization_management"],
            activity=["b.x", "a.y", "a.y"],
            organization_id=["org-2", "org-1"],
            actor_id=["u-1"],
        ),
        OWNER,
        NOW,
    )
    clauses = filters(body)
    assert {"terms": {"audit.category.code": ["organization_management"]}} in clauses
    assert {"terms": {"event.action": ["a.y", "b.x"]}} in clauses
    assert {"terms": {"organization.id": ["org-1", "org-2"]}} in clauses
    assert {"terms": {"user.id": ["u-1"]}} in clauses


def test_single_value_filters() -> None:
    clauses = filters(
        build_list_query(params(status="failure", source="api", actor_type="system"), OWNER, NOW)
    )
    assert {"term": {"event.outcome": "failure"}} in clauses
    assert {"term": {"audit.source.channel": "api"}} in clauses
    assert {"term": {"audit.actor.type": "system"}} in clauses


def test_q_uses_the_shared_text_query() -> None:
    body = build_list_query(params(q="ompli Ja"), OWNER, NOW)
    assert text_query("ompli Ja") in filters(body)


def test_blank_q_adds_nothing() -> None:
    assert filters(build_list_query(params(q="   "), OWNER, NOW)) == filters(
        build_list_query(params(), OWNER, NOW)
    )


def test_no_filters_means_scope_and_window_only() -> None:
    assert len(filters(build_list_query(params(), OWNER, NOW))) == 2


# --- paging ------------------------------------------------------------------------------


def test_sort_is_newest_first_with_log_id_tiebreaker() -> None:
    body = build_list_query(params(limit=20), OWNER, NOW)
    assert (
        body["sort"]
        == SORT
        == [
            {"@timestamp": {"order": "desc"}},
            {"event.id": {"order": "desc"}},
        ]
    )
    assert body["size"] == 21  # one extra hit tells whether a next page exists
    assert body["track_total_hits"] == TOTAL_HITS_LIMIT
    assert "search_after" not in body


def test_cursor_supplies_search_after_and_pins_the_window() -> None:
    cursor = Cursor(
        [1764150000000, "evt-9"], "2026-11-25T00:00:00.000000Z", "2026-11-26T00:00:00.000000Z", "fp"
    )
    body = build_list_query(params(), OWNER, NOW + timedelta(hours=5), cursor)
    assert body["search_after"] == [1764150000000, "evt-9"]
    assert {
        "range": {
            "@timestamp": {
                "gte": "2026-11-25T00:00:00.000000Z",
                "lte": "2026-11-26T00:00:00.000000Z",
            }
        }
    } in filters(body)


def test_export_query_has_no_size_or_cursor() -> None:
    body = build_export_query(params(format="csv", status="success"), OWNER, NOW)
    assert set(body) == {"query", "sort"}


def test_detail_query_is_ids_inside_the_scope() -> None:
    doc_id = document_id("p-100", "evt-1")
    assert build_detail_query("evt-1", ADMIN) == {
        "query": {"bool": {"filter": [*scope_filter(ADMIN), {"ids": {"values": [doc_id]}}]}},
        "size": 1,
    }


def test_detail_query_addresses_the_log_of_the_callers_partner() -> None:
    other = Caller(sub="u-9", name="B", partner_id="p-200", role="owner")
    ours, theirs = build_detail_query("evt-1", ADMIN), build_detail_query("evt-1", other)
    assert ours["query"]["bool"]["filter"][-1] != theirs["query"]["bool"]["filter"][-1]
