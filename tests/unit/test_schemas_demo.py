"""The demo stream: valid, reproducible, and covering what the product must show."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from schemas.catalogue import SYSTEM_ACTIVITIES, all_activities
from schemas.demo import generate_events, organization_name
from schemas.event import validate_event

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_every_event_is_valid_and_in_time_order() -> None:
    events = [validate_event(e, now=NOW) for e in generate_events(2000, seed=3, now=NOW)]
    times = [e["occurred_at"] for e in events]
    assert times == sorted(times)
    assert NOW - timedelta(days=30) <= times[0] and times[-1] <= NOW


def test_coverage() -> None:
    events = list(generate_events(2000, seed=3, now=NOW))
    portal = {a.code for a in all_activities()} - SYSTEM_ACTIVITIES
    assert {e["action"] for e in events[:41]} == portal
    assert not {e["action"] for e in events} & SYSTEM_ACTIVITIES
    assert {e["partner_id"] for e in events} == {f"p-{n:03d}" for n in range(1, 21)}
    assert all(e["organization"]["id"] <= "org-0500" for e in events)
    assert {e["actor"]["type"] for e in events} == {
        "partner_user",
        "organization_user",
        "internal_support",
        "system",
    }
    assert {e["source"]["channel"] for e in events} == {"ui", "api", "system"}
    statuses = Counter(e["status"] for e in events)
    assert 0.02 < statuses["failure"] / len(events) < 0.08
    assert all("status_reason" in e for e in events if e["status"] == "failure")
    assert any("changes" in e for e in events) and any("metadata" in e for e in events)
    assert any("description" in e for e in events) and any("description" not in e for e in events)


def test_reproducible_and_tenancy_is_stable() -> None:
    first = list(generate_events(300, seed=9, now=NOW))
    assert first == list(generate_events(300, seed=9, now=NOW))
    assert first != list(generate_events(300, seed=10, now=NOW))
    owner = {}
    for event in first:
        org = event["organization"]
        assert owner.setdefault(org["id"], event["partner_id"]) == event["partner_id"]
        assert org["name"] == organization_name(int(org["id"].removeprefix("org-")))
