"""The index lifecycle as data: names, months, versions, what retention deletes and what a
migration copies (schemas/lifecycle.py), and the retention's audit event."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.catalogue import EXPIRE_ACTION, get_activity
from schemas.demo import generate_events
from schemas.document import NAMESPACE, build_document, index_name, with_search
from schemas.event import validate_event
from schemas.index_template import TEMPLATE_VERSION, index_template
from schemas.lifecycle import (
    DEFAULT_RETENTION_DAYS,
    KIND_HOLD,
    KIND_MONTH,
    LEGACY_VERSION,
    IndexName,
    IndexState,
    Month,
    hold_index,
    index_states,
    parse_duration,
    parse_index_name,
    parse_retention_days,
    partner_key,
    plan_migrations,
    plan_retention,
    progress_line,
    template_version_of,
)
from schemas.retention import expiry_event

NOW = datetime(2026, 12, 2, 18, 0, tzinfo=UTC)
P = "audit-logs"


def state(
    name: str, version: int = TEMPLATE_VERSION, aliases: tuple[str, ...] = (P,)
) -> IndexState:
    return IndexState(name, frozenset(aliases), version, uuid=f"uuid-{name}")


# --------------------------------------------------------------------------- months, names


@pytest.mark.parametrize(
    ("month", "start", "end"),
    [
        (Month(2026, 1), datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)),
        (Month(2026, 12), datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
    ],
)
def test_month_bounds(month: Month, start: datetime, end: datetime) -> None:
    assert (month.start, month.end) == (start, end)


def test_month_of_is_utc() -> None:
    assert Month.of(datetime.fromisoformat("2026-12-01T00:30:00+01:00")) == Month(2026, 11)


def test_month_names_are_the_workers_index_names() -> None:
    moment = datetime(2026, 3, 9, tzinfo=UTC)
    assert IndexName(P, KIND_MONTH, Month.of(moment)).name == index_name(P, moment)


@pytest.mark.parametrize(
    "name",
    [
        IndexName(P, KIND_MONTH, Month(2026, 1)),
        IndexName(P, KIND_MONTH, Month(2026, 1), version=3),
        IndexName(P, KIND_MONTH, Month(2026, 10), version=12),
        hold_index(P, Month(2025, 8), "p-100", "UUid_-x"),
        hold_index(P, Month(2025, 8), "p-100", "UUid_-x").versioned(4),
    ],
)
def test_names_round_trip(name: IndexName) -> None:
    assert parse_index_name(P, name.name) == name


@pytest.mark.parametrize(
    "name",
    [
        "audit-logs",
        "audit-logs_digests",
        "audit-logs_lifecycle",
        "audit-logs-2026.13",
        "audit-logs-2026.1",
        "audit-logs-2026.01-x",
        "audit-logs-2026.01-v",
        "audit-logs-hold-2026.01",
        "audit-logs-hold-2026.01-zzzzzzzzzz-00000000",
        "other-2026.01",
        "audit-logs-foo-2026.01",
    ],
)
def test_other_names_are_not_managed(name: str) -> None:
    assert parse_index_name(P, name) is None


def test_prefix_is_literal() -> None:
    assert parse_index_name("a.b", "a.b-2026.01") is not None
    assert parse_index_name("a.b", "axb-2026.01") is None


def test_hold_index_per_partner_and_incarnation() -> None:
    first = hold_index(P, Month(2025, 8), "p-1", "uuid-a")
    assert first.kind == KIND_HOLD and first.partner_key == partner_key("p-1")
    assert first.name.startswith("audit-logs-hold-2025.08-")
    assert hold_index(P, Month(2025, 8), "p-2", "uuid-a").name != first.name
    assert hold_index(P, Month(2025, 8), "p-1", "uuid-b").name != first.name
    # Any partner id, even one no index name could hold, gives a valid lower-case name.
    odd = hold_index(P, Month(2025, 8), "Ünïcode/Partner *1", "u")
    assert odd.name == odd.name.lower() and parse_index_name(P, odd.name) == odd


# --------------------------------------------------------------------------- facts


def test_template_version_from_mapping_meta() -> None:
    assert template_version_of(index_template(P)["template"]["mappings"]) == TEMPLATE_VERSION
    assert template_version_of({}) == LEGACY_VERSION
    assert template_version_of({"_meta": {"template_version": "3"}}) == LEGACY_VERSION


def test_index_states_from_get_index() -> None:
    response: dict[str, Any] = {
        "audit-logs-2026.11": {
            "aliases": {"audit-logs": {}},
            "mappings": {},
            "settings": {"index": {"number_of_shards": "2", "uuid": "u1"}},
        },
        "audit-logs-2026.12": {
            "aliases": {"audit-logs": {}, "audit-logs-2026.12-x": {}},
            "mappings": {"_meta": {"template_version": 3}},
            "settings": {
                "index": {
                    "number_of_shards": "1",
                    "uuid": "u2",
                    "blocks": {"write": "true"},
                    "refresh_interval": "1s",
                }
            },
        },
    }
    first, second = index_states(response)
    assert (first.version, first.shards, first.uuid, first.write_blocked) == (2, 2, "u1", False)
    assert (second.version, second.write_blocked, second.refresh_interval) == (3, True, "1s")
    assert second.in_alias("audit-logs") and not second.in_alias("other")


# --------------------------------------------------------------------------- retention


def test_retention_days_variable() -> None:
    assert parse_retention_days(None) == parse_retention_days(" ") == DEFAULT_RETENTION_DAYS
    assert parse_retention_days("90") == 90
    for bad in ("0", "-3", "ninety", "1.5"):
        with pytest.raises(ValueError, match="AUDIT_RETENTION_DAYS"):
            parse_retention_days(bad)


def test_retention_deletes_only_months_wholly_before_the_cutoff() -> None:
    # 400 days before 2026-12-02T18:00 is 2025-10-28T18:00: September 2025 is wholly before
    # it, October 2025 holds logs inside the window (its last days).
    states = [state(f"{P}-2025.{m:02d}") for m in (8, 9, 10, 11)] + [state(f"{P}-2026.12")]
    plan = plan_retention(P, states, NOW, 400)
    assert plan.cutoff == datetime(2025, 10, 28, 18, 0, tzinfo=UTC)
    assert [e.state.name for e in plan.expired] == [f"{P}-2025.08", f"{P}-2025.09"]


def test_a_month_ending_exactly_at_the_cutoff_expires() -> None:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    plan = plan_retention(P, [state(f"{P}-2026.01"), state(f"{P}-2026.02")], now, 28)
    assert [e.state.name for e in plan.expired] == [f"{P}-2026.01"]


def test_the_current_month_is_never_deleted() -> None:
    # Even with a retention shorter than the month so far: it is the index written to.
    plan = plan_retention(P, [state(f"{P}-2026.12"), state(f"{P}-2027.01")], NOW, 1)
    assert plan.expired == []


def test_only_indices_behind_the_read_alias_are_considered() -> None:
    states = [
        state(f"{P}-2024.01", aliases=()),  # a copy in progress
        state(f"{P}-2024.02-v3", aliases=()),
        state("audit-logs-something", aliases=(P,)),  # not a name of ours
        state(f"{P}-2024.03", version=2),
    ]
    assert [e.state.name for e in plan_retention(P, states, NOW, 30).expired] == [f"{P}-2024.03"]


def test_hold_copies_stay_while_their_partner_is_held() -> None:
    held = hold_index(P, Month(2024, 1), "p-held", "u")
    released = hold_index(P, Month(2024, 1), "p-free", "u")
    states = [state(held.name), state(released.name)]
    plan = plan_retention(P, states, NOW, 30, frozenset({partner_key("p-held")}))
    assert [e.state.name for e in plan.expired] == [released.name]
    assert plan.kept == [(held.name, "its partner is under legal hold")]


# --------------------------------------------------------------------------- migrations


def test_every_older_index_migrates_to_a_versioned_name() -> None:
    hold = hold_index(P, Month(2025, 8), "p-1", "u")
    states = [
        state(f"{P}-2026.11", version=2),
        state(f"{P}-2026.10-v3", version=3),  # already current
        state(f"{P}-2026.12", version=3),  # made by the current template
        state(hold.name, version=2),
    ]
    plan = plan_migrations(P, states, version=3)
    assert [(m.source, m.target, m.write_alias) for m in plan.migrations] == [
        (hold.name, f"{hold.name}-v3", None),
        (f"{P}-2026.11", f"{P}-2026.11-v3", f"{P}-2026.11"),
    ]


def test_a_migrated_month_migrates_again_under_its_alias() -> None:
    plan = plan_migrations(P, [state(f"{P}-2026.10-v3", version=3)], version=4)
    (migration,) = plan.migrations
    assert (migration.target, migration.write_alias) == (f"{P}-2026.10-v4", f"{P}-2026.10")


def test_newer_and_foreign_indices_are_left_alone_with_a_note() -> None:
    states = [state(f"{P}-2026.11", version=5), state("audit-logs-manual", version=2)]
    plan = plan_migrations(P, states, version=3)
    assert plan.migrations == []
    assert len(plan.notes) == 2
    assert all("left alone" in note for note in plan.notes)


def test_targets_in_progress_are_not_sources() -> None:
    states = [state(f"{P}-2026.11", version=2), state(f"{P}-2026.11-v3", aliases=())]
    assert [m.source for m in plan_migrations(P, states, version=3).migrations] == [f"{P}-2026.11"]


# --------------------------------------------------------------------------- small parts


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("1d", 86400), ("5", 5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "0", "-1h", "1w", "h"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_progress_line() -> None:
    assert progress_line("x", 500, 2000, 2.0) == "x: 500/2,000 logs copied (25 %), 250 logs/s"


def test_a_copy_restores_the_document_the_worker_built() -> None:
    """The search representation is not in `_source`; a copy recomputes it exactly."""
    ingested = datetime(2026, 12, 1, tzinfo=UTC)
    for event in generate_events(500, seed=11, now=NOW):
        document = build_document(event, ingested)
        stored = copy.deepcopy(document)
        del stored[NAMESPACE]["search"]
        assert with_search(stored) == document


def retention_record(kind: str = KIND_MONTH) -> dict[str, Any]:
    return {
        "index": "audit-logs-2025.08",
        "index_kind": kind,
        "uuid": "6KmwjPNDSNeQCVYyo021TA",
        "month": "2025-08",
        "from": "2025-08-01T00:00:00.000Z",
        "to": "2025-09-01T00:00:00.000Z",
        "cutoff": "2025-10-28T18:00:00.000Z",
        "days": 400,
        "planned_at": "2026-12-02T18:00:00.000Z",
    }


@pytest.mark.parametrize("kind", [KIND_MONTH, KIND_HOLD])
def test_the_expiry_event_is_a_valid_catalogued_event(kind: str) -> None:
    event = expiry_event(retention_record(kind), "p-100", 1234)
    validated = validate_event(event, now=NOW)
    assert validated["action"] == EXPIRE_ACTION and get_activity(EXPIRE_ACTION).known
    assert validated["partner_id"] == "p-100"
    assert validated["metadata"]["logs_deleted"] == 1234
    assert "1,234 audit log(s) of 2025-08" in validated["description"]
    assert ("legal hold" in validated["description"]) == (kind == KIND_HOLD)


def test_the_expiry_event_is_the_same_when_published_again() -> None:
    """A rerun after a crash republishes it: same id, same content, stored once."""
    record = retention_record()
    assert expiry_event(record, "p-1", 5) == expiry_event(dict(record), "p-1", 5)
    assert (
        expiry_event(record, "p-1", 5)["event_id"]
        != expiry_event({**record, "uuid": "other"}, "p-1", 5)["event_id"]
    )


def test_a_half_done_swap_is_finished() -> None:
    """Stopped between its two alias requests: the target is read, the blocked source still
    owns the month's name. Copies in progress (not blocked) are not swaps."""
    source = IndexState(f"{P}-2026.11", frozenset(), 2, write_blocked=True)
    hold = hold_index(P, Month(2025, 8), "p-1", "u")
    states = [
        source,
        state(f"{P}-2026.11-v3"),
        IndexState(hold.name, frozenset(), 2, write_blocked=True),
        state(f"{hold.name}-v3"),
        IndexState(f"{P}-2026.10", frozenset(), 2),  # a copy in progress
        state(f"{P}-2026.10-v3"),
    ]
    plan = plan_migrations(P, states, version=3)
    assert [(m.source, m.target, m.write_alias) for m in plan.unfinished] == [
        (source.name, f"{P}-2026.11-v3", f"{P}-2026.11"),
        (hold.name, f"{hold.name}-v3", None),
    ]
    assert plan.migrations == []
