"""The fast path of ``parse_event``: a compiled (msgspec) decoder of the v1 envelope.

``schemas.event.EventSchema`` (marshmallow) stays the definition of the contract and the one
that explains a refusal: this module only ever *accepts*. ``accept`` returns the normalized
event exactly as ``EventSchema`` would load it, or ``None`` when it is not sure (anything
invalid, and the few valid shapes msgspec types cannot express, e.g. a JSON ``true`` that
marshmallow takes as the integer 1): then ``parse_event`` asks marshmallow, which decides and
names the broken rules. So a refusal's DLQ reason and field paths cannot change, and what is
accepted here is proved equal to marshmallow's output by a property test
(``tests/unit/test_schemas_event_fast.py``).

The rules are written once: the limits, choices and patterns are ``schemas.event``'s own
constants; msgspec checks types, lengths and choices while it parses (one pass, in C), and the
few rules it cannot express (full-match patterns, RFC 3339 with offset, the 24-hour future
rule, IP canonical form, NUL in metadata keys) are checked here with ``schemas.event``'s code.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NotRequired, TypedDict

import msgspec

from schemas import event as contract
from schemas.catalogue import ACTION_PATTERN
from schemas.event import (
    ACTOR_ROLES,
    ACTOR_TYPES,
    EVENT_ID_PATTERN,
    MAX_CHANGES,
    MAX_DESCRIPTION_CHARS,
    MAX_EVENT_BYTES,
    MAX_FUTURE,
    MAX_METADATA_KEYS,
    SCHEMA_VERSION,
    SOURCE_CHANNELS,
    STATUSES,
    canonical_ip,
    parse_rfc3339,
)

NonEmpty = Annotated[str, msgspec.Meta(min_length=1)]
# The choices are the contract's own tuples (Literal[("a", "b")] is Literal["a", "b"]).
ActorType = Literal[ACTOR_TYPES]  # type: ignore[valid-type]
ActorRole = Literal[ACTOR_ROLES]  # type: ignore[valid-type]
Channel = Literal[SOURCE_CHANNELS]  # type: ignore[valid-type]
Status = Literal[STATUSES]  # type: ignore[valid-type]
MetadataKey = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Scalar = str | int | float | bool | None


# Optional fields are NotRequired: an absent one stays absent. One sent as null is dropped
# afterwards (`_without_nulls`), as the marshmallow schemas' `_drop_nulls` does.
class _Organization(TypedDict):
    id: NonEmpty
    name: NotRequired[str | None]


class _Actor(TypedDict):
    type: ActorType
    id: NonEmpty
    name: NotRequired[str | None]
    email: NotRequired[str | None]
    role: NotRequired[ActorRole | None]


class _Source(TypedDict):
    channel: Channel
    ip: NotRequired[str | None]
    user_agent: NotRequired[str | None]
    service: NotRequired[str | None]
    request_id: NotRequired[str | None]


class _Object(TypedDict):
    type: NonEmpty
    id: NotRequired[str | None]
    name: NotRequired[str | None]


class _Change(TypedDict):
    field: NonEmpty
    old: NotRequired[Any]
    new: NotRequired[Any]


class _Event(TypedDict):
    event_id: str
    schema_version: Literal[SCHEMA_VERSION]  # type: ignore[valid-type]
    occurred_at: str
    action: str
    partner_id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    actor: _Actor
    source: _Source
    status: Status
    organization: NotRequired[_Organization | None]
    object: NotRequired[_Object | None]
    status_reason: NotRequired[str | None]
    description: NotRequired[Annotated[str, msgspec.Meta(max_length=MAX_DESCRIPTION_CHARS)] | None]
    changes: NotRequired[Annotated[list[_Change], msgspec.Meta(max_length=MAX_CHANGES)] | None]
    metadata: NotRequired[
        Annotated[dict[MetadataKey, Scalar], msgspec.Meta(max_length=MAX_METADATA_KEYS)] | None
    ]


#: The nested objects whose null fields mean "absent" (a change's null old/new is kept).
_OBJECTS = ("organization", "actor", "source", "object")


_DECODER = msgspec.json.Decoder(_Event)


def parse_event(raw: bytes | bytearray | memoryview | None, *, now: datetime) -> dict[str, Any]:
    """``schemas.event.parse_event``, fast for valid events: the same event, or the same
    ``InvalidEvent`` (reason and field paths), for every record value."""
    if raw is not None:
        event = accept(raw, now)
        if event is not None:
            return event
    return contract.parse_event(raw, now=now)


def accept(raw: bytes | bytearray | memoryview, now: datetime) -> dict[str, Any] | None:
    """The normalized event if ``raw`` is certainly a valid v1 event, else None (ask
    marshmallow). ``now``: the reference of the 24-hour future rule."""
    if len(raw) > MAX_EVENT_BYTES:
        return None
    try:
        decoded = _DECODER.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
    event: dict[str, Any] = _without_nulls(decoded)  # type: ignore[arg-type]
    return event if _normalized(event, now) else None


def _normalized(event: dict[str, Any], now: datetime) -> bool:
    """Check the rules msgspec's types cannot express and normalize as `EventSchema` does
    (UTC time, canonical IP, a change's absent old/new as null); False if one is broken."""
    if not (
        EVENT_ID_PATTERN.fullmatch(event["event_id"]) and ACTION_PATTERN.fullmatch(event["action"])
    ):
        return False
    metadata = event.get("metadata")
    if metadata and any("\x00" in key for key in metadata):
        return False
    try:
        event["occurred_at"] = parse_rfc3339(event["occurred_at"])
        if "ip" in event["source"]:
            event["source"]["ip"] = canonical_ip(event["source"]["ip"])
    except (ValueError, OverflowError):
        return False
    if event["occurred_at"] > now + MAX_FUTURE:
        return False
    for change in event.get("changes") or ():
        change.setdefault("old", None)
        change.setdefault("new", None)
    return True


def _without_nulls(event: dict[str, Any]) -> dict[str, Any]:
    """The event with its null optional fields (top level and nested objects) left out."""
    if None in event.values():
        event = {key: value for key, value in event.items() if value is not None}
    for name in _OBJECTS:
        item = event.get(name)
        if item is not None and None in item.values():
            event[name] = {key: value for key, value in item.items() if value is not None}
    return event
