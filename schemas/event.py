"""The version-1 inbound event envelope (SPEC §2) and its validation.

``parse_event`` turns a Kafka record value into a validated event dict, or raises
``InvalidEvent`` whose ``reason`` says which stage failed and whose ``errors`` map a dotted
field path (``actor.role``, ``changes.3.field``) to messages naming the broken rule.

The validated dict is normalized: ``occurred_at`` is a timezone-aware ``datetime`` in UTC,
``source.ip`` is the canonical text of the address, optional fields given as ``null`` are
dropped, and unknown fields are dropped. Everything else is as sent.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Mapping
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, post_load, validate, validates

from schemas.catalogue import ACTION_PATTERN

MAX_EVENT_BYTES = 262144
SCHEMA_VERSION = 1
MAX_FUTURE = timedelta(hours=24)
MAX_DESCRIPTION_CHARS = 4096
MAX_CHANGES = 100
MAX_METADATA_KEYS = 50

ACTOR_TYPES = ("partner_user", "organization_user", "internal_support", "system")
ACTOR_ROLES = ("owner", "super_admin", "admin", "support")
SOURCE_CHANNELS = ("ui", "api", "system")
STATUSES = ("success", "failure")

#: How people read the enumerations above (the viewer and any client take them from the
#: API's GET /api/v1/config, never from a copy).
STATUS_LABELS = {"success": "Success", "failure": "Failed"}
SOURCE_LABELS = {"ui": "UI", "api": "API", "system": "System"}
ACTOR_TYPE_LABELS = {
    "partner_user": "Partner user",
    "organization_user": "Organization user",
    "internal_support": "Internal support",
    "system": "System",
}
ROLE_LABELS = {
    "owner": "Owner",
    "super_admin": "Super Admin",
    "admin": "Admin",
    "support": "Support",
}

EVENT_ID_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,128}")

# RFC 3339 date-time; the offset is mandatory (a local time without one is ambiguous).
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))"
)


class InvalidEvent(Exception):
    """An event that must go to the dead-letter topic.

    reason: ``too_large``, ``not_utf8``, ``not_json``, ``not_object`` or ``invalid_fields``.
    errors: field path -> messages (``_event`` for problems with the record as a whole).
    """

    def __init__(self, reason: str, errors: Mapping[str, list[str]] | None = None) -> None:
        self.reason = reason
        self.errors: dict[str, list[str]] = dict(errors or {})
        super().__init__(self.summary())

    def summary(self) -> str:
        details = "; ".join(f"{path}: {' '.join(msgs)}" for path, msgs in self.errors.items())
        return f"{self.reason}: {details}" if details else self.reason


def parse_rfc3339(text: str) -> datetime:
    """Parse an RFC 3339 date-time that carries an offset; return it in UTC.

    Fractions finer than a microsecond are truncated. Raises ValueError.
    """
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise ValueError(text)
    year, month, day, hour, minute, second, frac, zulu, sign, off_h, off_m = match.groups()
    micro = int(frac[:6].ljust(6, "0")) if frac else 0
    zone = UTC if zulu else _offset_zone(sign, off_h, off_m)
    local = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=zone
    )
    return local if zulu else local.astimezone(UTC)


@lru_cache(maxsize=256)
def _offset_zone(sign: str, hours: str, minutes: str) -> timezone:
    # A few offsets recur in every stream: one zone object each (this runs once per event).
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"{sign}{hours}:{minutes}")
    offset = timedelta(hours=int(hours), minutes=int(minutes))
    return timezone(-offset if sign == "-" else offset)


def _fullmatch(pattern: re.Pattern[str], rule: str) -> validate.Validator:
    def check(value: str) -> str:
        if pattern.fullmatch(value) is None:
            raise ValidationError(f"Must match {rule}.")
        return value

    return check  # type: ignore[return-value]


def _no_nul(value: str) -> str:
    # Elasticsearch's `flattened` type (audit.metadata) reserves U+0000 in keys: a key with
    # it would pass here and be refused at indexing, so it is refused here, by name.
    if "\x00" in value:
        raise ValidationError("Must not contain the NUL character (U+0000).")
    return value


class _OccurredAt(fields.Field):
    """A string holding an RFC 3339 date-time with offset, loaded as a UTC datetime."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own convention
        "invalid": "Must be an RFC 3339 date-time with an offset, "
        "e.g. 2026-11-26T09:00:00.123+01:00.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        if not isinstance(value, str):
            raise self.make_error("invalid")
        try:
            return parse_rfc3339(value)
        except (ValueError, OverflowError) as error:  # 2026-02-30, or year 1 shifted to 0
            raise self.make_error("invalid") from error


_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_CANONICAL_IPV4 = re.compile(rf"{_OCTET}(?:\.{_OCTET}){{3}}")


def canonical_ip(text: str) -> str:
    """An IPv4 or IPv6 address in its canonical text; ValueError if it is none."""
    if _CANONICAL_IPV4.fullmatch(text):
        return text  # already what str(ip_address(text)) gives, at a fraction of its cost
    return _canonical_address(text)


@lru_cache(maxsize=4096)
def _canonical_address(text: str) -> str:
    """`canonical_ip` of any other text: remembered (an event stream's IPv6 addresses recur,
    and `ipaddress` costs ~20 us for each); a refusal raises and so is never remembered."""
    address = ipaddress.ip_address(text)
    # A zone id (fe80::1%eth0) is valid for Python but rejected by Elasticsearch.
    if getattr(address, "scope_id", None):
        raise ValueError(text)
    return str(address)


class _IpAddress(fields.String):
    default_error_messages = {"invalid_ip": "Must be an IPv4 or IPv6 address."}  # noqa: RUF012

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text = super()._deserialize(value, attr, data, **kwargs)
        try:
            return canonical_ip(text)
        except ValueError as error:
            raise self.make_error("invalid_ip") from error


class _Scalar(fields.Field):
    """A metadata value: string, number, boolean or null (no arrays or objects)."""

    default_error_messages = {  # noqa: RUF012
        "invalid": "Must be a scalar: string, number, boolean or null.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        if value is None or isinstance(value, str | bool | int):
            return value
        if isinstance(value, float) and math.isfinite(value):
            return value
        raise self.make_error("invalid")


class _Base(Schema):
    class Meta:
        unknown = EXCLUDE  # SPEC §2: unknown extra fields are ignored, not fatal


class _Strict(_Base):
    @post_load
    def _drop_nulls(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        # An optional field sent as null means "absent"; downstream code sees one shape.
        return {key: value for key, value in data.items() if value is not None}


def _text(
    *, required: bool = False, min_len: int | None = None, max_len: int | None = None, **kwargs: Any
) -> fields.String:
    checks = []
    if min_len is not None or max_len is not None:
        checks.append(validate.Length(min=min_len, max=max_len))
    return fields.String(required=required, allow_none=not required, validate=checks, **kwargs)


def _choice(options: tuple[str, ...], *, required: bool = False) -> fields.String:
    return fields.String(
        required=required, allow_none=not required, validate=validate.OneOf(options)
    )


class OrganizationSchema(_Strict):
    id = _text(required=True, min_len=1)
    name = _text()


class ActorSchema(_Strict):
    type = _choice(ACTOR_TYPES, required=True)
    id = _text(required=True, min_len=1)
    name = _text()
    email = _text()
    role = _choice(ACTOR_ROLES)


class SourceSchema(_Strict):
    channel = _choice(SOURCE_CHANNELS, required=True)
    ip = _IpAddress(allow_none=True)
    user_agent = _text()
    service = _text()
    request_id = _text()


class ObjectSchema(_Strict):
    type = _text(required=True, min_len=1)
    id = _text()
    name = _text()


class ChangeSchema(_Base):
    # old/new are any JSON value; null is meaningful here ("was empty"), so it is kept.
    field = _text(required=True, min_len=1)
    old = fields.Raw(allow_none=True, load_default=None)
    new = fields.Raw(allow_none=True, load_default=None)


class EventSchema(_Strict):
    """SPEC §2, version 1. ``now`` (UTC) is the reference for the 24-hour future rule."""

    event_id = fields.String(
        required=True,
        validate=_fullmatch(EVENT_ID_PATTERN, "1-128 characters of A-Z a-z 0-9 . _ : -"),
    )
    schema_version = fields.Integer(
        required=True,
        strict=True,
        validate=validate.Equal(SCHEMA_VERSION, error="Must be the integer {other}."),
        error_messages={"invalid": "Must be the integer 1 (a JSON number, not a string)."},
    )
    occurred_at = _OccurredAt(required=True)
    action = fields.String(
        required=True,
        validate=_fullmatch(ACTION_PATTERN, r"^[a-z0-9_]+(\.[a-z0-9_]+)+$, e.g. compliance.enable"),
    )
    partner_id = _text(required=True, min_len=1, max_len=64)
    organization = fields.Nested(OrganizationSchema, allow_none=True)
    actor = fields.Nested(ActorSchema, required=True)
    source = fields.Nested(SourceSchema, required=True)
    object = fields.Nested(ObjectSchema, allow_none=True)
    status = _choice(STATUSES, required=True)
    status_reason = _text()
    description = _text(max_len=MAX_DESCRIPTION_CHARS)
    changes = fields.List(
        fields.Nested(ChangeSchema), allow_none=True, validate=validate.Length(max=MAX_CHANGES)
    )
    metadata = fields.Dict(
        keys=fields.String(validate=[validate.Length(min=1, max=256), _no_nul]),
        values=_Scalar(allow_none=True),
        allow_none=True,
        validate=validate.Length(max=MAX_METADATA_KEYS, error="At most {max} keys."),
    )

    def __init__(self, *, now: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.now = now

    @validates("occurred_at")
    def _not_far_future(self, value: datetime, **kwargs: Any) -> None:
        now = self.now or _REFERENCE_NOW.get() or datetime.now(UTC)
        if value > now + MAX_FUTURE:
            raise ValidationError("Must not be more than 24 hours in the future.")


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict -> {"actor.role": [...], "changes.3.field": [...]}."""
    if isinstance(messages, Mapping):
        flat: dict[str, list[str]] = {}
        for key, value in messages.items():
            # "_schema" holds errors about the object itself: they belong to its own path.
            child = f"{prefix}.{key}" if prefix else str(key)
            path = prefix if key == "_schema" else child
            flat.update(flatten_errors(value, path))
        return flat
    items = messages if isinstance(messages, list) else [messages]
    return {prefix or "_event": [str(item) for item in items]}


# The reference time of the call in progress, so one schema instance serves every call:
# building EventSchema (and its nested schemas) per event was most of the parsing time.
_REFERENCE_NOW: ContextVar[datetime | None] = ContextVar("event_reference_now", default=None)
_SHARED_SCHEMA = EventSchema()


def validate_event(obj: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """Validate a decoded event; return the normalized event dict or raise InvalidEvent."""
    if not isinstance(obj, dict):
        raise InvalidEvent("not_object", {"_event": ["The record value must be a JSON object."]})
    token = _REFERENCE_NOW.set(now)
    try:
        loaded: dict[str, Any] = _SHARED_SCHEMA.load(obj)
    except ValidationError as error:
        raise InvalidEvent("invalid_fields", flatten_errors(error.messages)) from error
    finally:
        _REFERENCE_NOW.reset(token)
    return loaded


def _reject_constant(name: str) -> Any:
    # json accepts NaN/Infinity by default; they are not JSON and Elasticsearch rejects them.
    raise ValueError(f"{name} is not valid JSON")


def decode_event(raw: bytes | bytearray | memoryview | None) -> Any:
    """Size check, UTF-8 and JSON decoding of a record value (no field validation)."""
    data = bytes(raw or b"")
    if len(data) > MAX_EVENT_BYTES:
        raise InvalidEvent(
            "too_large", {"_event": [f"{len(data)} bytes; the limit is {MAX_EVENT_BYTES}."]}
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidEvent("not_utf8", {"_event": [f"Not UTF-8: {error.reason}."]}) from error
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:  # RecursionError: absurdly deep nesting
        raise InvalidEvent("not_json", {"_event": [f"Not JSON: {error}."]}) from error


def parse_event(
    raw: bytes | bytearray | memoryview | None, *, now: datetime | None = None
) -> dict[str, Any]:
    """Decode and validate one Kafka record value; raise InvalidEvent if it is not an event."""
    return validate_event(decode_event(raw), now=now)
