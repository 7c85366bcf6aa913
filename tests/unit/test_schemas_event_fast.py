"""The compiled fast path accepts only what marshmallow accepts, normalized the same way.

`schemas.event_fast.accept` either returns the normalized event or None (then marshmallow
decides and explains). Property: whenever it returns an event, `schemas.event.parse_event`
accepts the same bytes and returns an identical event (compared as canonical JSON, so
``True``/``1``/``1.0`` stay distinct); and `event_fast.parse_event` gives the same event or
the same `InvalidEvent` (reason and field paths) as `schemas.event.parse_event` for every
value, valid or not.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import hypothesis
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas import event_fast
from schemas.event import (
    ACTOR_ROLES,
    ACTOR_TYPES,
    MAX_DESCRIPTION_CHARS,
    SOURCE_CHANNELS,
    STATUSES,
    InvalidEvent,
    parse_event,
)
from tests.unit.test_schemas_event import valid_event

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
ABSENT = object()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)


def outcome(parse: Any, raw: bytes) -> tuple[str, str]:
    try:
        return "ok", canonical(parse(raw, now=NOW))
    except InvalidEvent as invalid:
        return invalid.reason, canonical(invalid.errors)


def check(raw: bytes) -> tuple[bool, bool]:
    """The property; returns (the fast path accepted, marshmallow accepted)."""
    fast = event_fast.accept(raw, NOW)
    slow = outcome(parse_event, raw)
    if fast is not None:
        assert slow == ("ok", canonical(fast))
    assert outcome(event_fast.parse_event, raw) == slow
    return fast is not None, slow[0] == "ok"


def maybe(valid: st.SearchStrategy[Any], *invalid: Any) -> st.SearchStrategy[Any]:
    """Mostly (19 in 20) a valid value; else absent, null, or one of the invalid ones, so
    about a third of the events are valid and the rest break one rule or a few."""
    strategies = [item for item in invalid if isinstance(item, st.SearchStrategy)]
    plain = [item for item in invalid if not isinstance(item, st.SearchStrategy)]
    others = st.one_of(st.sampled_from([ABSENT, None, *plain]), *strategies)
    return st.integers(0, 19).flatmap(lambda draw: others if draw == 0 else valid)


texts = st.text(max_size=12)
names = st.text(min_size=1, max_size=12)
odd_texts = st.sampled_from(["", " ", "a\n", "\x00", "é", "😀", "x" * 65, 7, 1.5, True, [], {}])
event_ids = st.from_regex(r"[A-Za-z0-9._:-]{1,20}", fullmatch=True)
offsets = st.sampled_from(["Z", "z", "+00:00", "-00:00", "+05:30", "-11:00", "+23:59"])
fractions = st.sampled_from(["", ".1", ".123", ".123456", ".1234567891"])
# Up to a day past NOW (the 24-hour rule), from year 1 (offsets then reach year 0).
dates = st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(2026, 11, 27, 11))
times = st.builds(
    lambda moment, frac, offset, sep: (
        f"{moment:%Y}".zfill(4) + moment.strftime(f"-%m-%d{sep}%H:%M:%S") + frac + offset
    ),
    dates,
    fractions,
    offsets,
    st.sampled_from(["T", "t"]),
)
bad_times = st.sampled_from(
    [
        "2026-02-30T10:00:00Z",
        "2026-11-26T10:00:00",
        "2026-11-27T11:00:00Z",  # more than 24 h ahead of NOW
        "2026-11-27T09:59:59Z",
        "0001-01-01T00:30:00+01:00",
        "9999-12-31T23:30:00-01:00",
        "2026-11-26T10:00:60Z",
        "2026-11-26 10:00:00Z",
        "2026-11-26T10:00:00.Z",
        "2026-11-26T10:00:00+24:00",
        "2026-11-26T10:00:00+0100",
        1700000000,
    ]
)
actions = st.sampled_from(["compliance.enable", "user.login", "made_up.thing", "a.b.c"])
ips = st.one_of(
    st.ip_addresses().map(str),
    st.sampled_from(["::FFFF:1.2.3.4", "2001:DB8::0:1", "::1", "0.0.0.0", "255.255.255.255"]),
)
bad_ips = st.sampled_from(
    ["01.2.3.4", "1.2.3", "256.1.1.1", "fe80::1%eth0", "1.2.3.4 ", " 1.2.3.4", "1.2.3.04", 12]
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=6,
)


def obj(**fields: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    extras = st.dictionaries(st.sampled_from(["extra", "x-y", "ID"]), json_values, max_size=1)
    return st.builds(
        lambda values, extra: {
            **extra,
            **{k: v for k, v in values.items() if v is not ABSENT},
        },
        st.fixed_dictionaries(fields),
        extras,
    )


organizations = obj(id=maybe(names, "", 5), name=maybe(texts, 5))
actors = obj(
    type=maybe(st.sampled_from(ACTOR_TYPES), "robot", "Partner_user"),
    id=maybe(names, ""),
    name=maybe(texts, 3),
    email=maybe(texts, []),
    role=maybe(st.sampled_from(ACTOR_ROLES), "root", ""),
)
sources = obj(
    channel=maybe(st.sampled_from(SOURCE_CHANNELS), "email"),
    ip=maybe(ips, bad_ips),
    user_agent=maybe(texts, 1),
    service=maybe(texts),
    request_id=maybe(texts, {}),
)
objects = obj(type=maybe(names, ""), id=maybe(texts, 9), name=maybe(texts))
changes = obj(field=maybe(names, "", 1), old=maybe(json_values), new=maybe(json_values))
metadata_keys = st.one_of(st.text(min_size=1, max_size=8), st.just("k" * 256))
scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), texts, st.just([1])
)

events = obj(
    event_id=maybe(event_ids, "", "a b", "x" * 129, "é", 42),
    schema_version=maybe(st.just(1), True, 1.0, "1", 2, 0),
    occurred_at=maybe(times, bad_times),
    action=maybe(actions, "Compliance.enable", "nodot", "a.b\n", "a..b", ".a.b", 3),
    partner_id=maybe(names, "", "p" * 64, "p" * 65),
    organization=maybe(organizations, "org-7", []),
    actor=maybe(actors, "u-1"),
    source=maybe(sources, []),
    object=maybe(objects, 1),
    status=maybe(st.sampled_from(STATUSES), "ok"),
    status_reason=maybe(texts, 404),
    description=maybe(texts, "d" * MAX_DESCRIPTION_CHARS, "d" * (MAX_DESCRIPTION_CHARS + 1)),
    changes=maybe(st.lists(changes, max_size=3), "none", [1], [{"field": "f"}] * 101),
    metadata=maybe(
        st.dictionaries(metadata_keys, scalars, max_size=4),
        [],
        {f"k{i}": i for i in range(51)},
        {"big": 2**70, "inf": 1e308},
        {"": 1},
        {"a\x00b": 1},
        {"k" * 257: 1},
    ),
)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events, st.booleans())
def test_fast_path_accepts_only_what_marshmallow_accepts_and_normalizes_alike(
    event: dict[str, Any], ascii_only: bool
) -> None:
    fast, slow = check(json.dumps(event, ensure_ascii=ascii_only).encode())
    hypothesis.event(f"fast path accepted: {fast}, marshmallow accepted: {slow}")


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        {
            "event_id": event_ids,
            "schema_version": st.just(1),
            "occurred_at": st.sampled_from(
                ["2026-11-26T08:59:58.120Z", "2026-11-26T09:00:00+01:00"]
            ),
            "action": st.sampled_from(["compliance.enable", "made_up.thing"]),
            "partner_id": st.text(min_size=1, max_size=64),
            "actor": obj(type=st.sampled_from(ACTOR_TYPES), id=st.text(min_size=1)),
            "source": obj(channel=st.sampled_from(SOURCE_CHANNELS), ip=maybe(ips)),
            "status": st.sampled_from(STATUSES),
            "changes": st.lists(changes, max_size=3),
        }
    )
)
def test_valid_events_take_the_fast_path(event: dict[str, Any]) -> None:
    fast, slow = check(json.dumps(event).encode())
    assert fast == slow


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"null",
        b"[]",
        b'"text"',
        b"\xef\xbb\xbf{}",
        b'{"event_id": NaN}',
        b'{"partner_id": "\\ud800"}',
        b"\xff\xfe",
        b'{"event_id": "a", "event_id": "b"}',
        b'{"a": 1}\n\n',
        b" " * 300_000,
    ],
)
def test_odd_record_values_get_the_same_verdict(raw: bytes) -> None:
    assert check(raw) == (False, False)


def test_duplicate_keys_keep_the_last_value_on_both_paths() -> None:
    # msgspec checks every occurrence, so an invalid earlier one sends the value to
    # marshmallow, which (like json.loads) keeps the last: valid either way.
    base = json.dumps(valid_event())
    assert check(('{"status": 5, ' + base[1:]).encode())[1]
    assert check((base[:-1] + ', "status": 5}').encode()) == (False, False)
