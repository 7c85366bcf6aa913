"""Marshmallow schemas of the API's parameters and responses (they generate /openapi.json).

Parameter schemas validate everything SPEC §4 lists as bad input, so a bad value is a 422
naming the parameter before any view code runs.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_smorest.error_handler import ErrorSchema
from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from api.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_Q_CHARS
from schemas.catalogue import ACTION_PATTERN, OTHER_CATEGORY_CODE, categories
from schemas.event import ACTOR_TYPES, SOURCE_CHANNELS, STATUSES
from schemas.log_shape import LOG_ID_PATTERN, CodeLabel, Log, LogDetail

# The LOG shapes are the contract's (schemas.log_shape); the API documents them from there.
__all__ = ["LOG_ID_PATTERN", "CodeLabel", "Log", "LogDetail"]

EXPORT_FORMATS = ("csv", "ndjson")
# Organization and actor ids are free-form upstream; bound them so a filter stays cheap.
MAX_ID_CHARS = 256
MAX_VALUES_PER_FILTER = 100


# Wide enough for any audit question, narrow enough that "now - 24 h" and UTC conversion
# can never leave the range Python and Elasticsearch dates share.
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(9999, 1, 1, tzinfo=UTC)


def category_codes() -> list[str]:
    return [category.code for category in categories()] + [OTHER_CATEGORY_CODE]


class AwareDateTime(fields.DateTime):
    """RFC 3339: an explicit offset is required, so a time is never guessed in local time."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        result = super()._deserialize(value, attr, data, **kwargs)
        if result.tzinfo is None or result.utcoffset() is None:
            raise ValidationError("Must be an RFC 3339 time with an offset (e.g. Z or +01:00).")
        try:
            utc = result.astimezone(UTC)
        except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 is before year 1 in UTC
            raise ValidationError("Time out of range.") from None
        if not MIN_TIME <= utc <= MAX_TIME:
            raise ValidationError(f"Must be between {MIN_TIME:%Y} and {MAX_TIME:%Y}.")
        return utc


def _repeatable(inner: fields.Field, description: str) -> fields.List:
    return fields.List(
        inner,
        validate=validate.Length(max=MAX_VALUES_PER_FILTER),
        metadata={"description": description + " Repeatable: OR within, AND across parameters."},
    )


class FilterArgs(Schema):
    q = fields.String(
        validate=validate.Length(max=MAX_Q_CHARS),
        metadata={
            "description": "Partial, case-insensitive search over Log ID, actor id/name/email, "
            "object id/name and description. Every white-space separated term must match; "
            "3+ characters match anywhere, 1-2 characters match a word start."
        },
    )
    from_ = AwareDateTime(
        data_key="from",
        metadata={"description": "RFC 3339. Without from and to: the last 24 hours."},
    )
    to = AwareDateTime(metadata={"description": "RFC 3339. `from` alone means until now."})
    category = _repeatable(
        fields.String(validate=validate.OneOf(category_codes())), "Category code."
    )
    activity = _repeatable(
        fields.String(validate=validate.Regexp(f"^{ACTION_PATTERN.pattern}$")),
        "Activity code.",
    )
    organization_id = _repeatable(
        fields.String(validate=validate.Length(min=1, max=MAX_ID_CHARS)), "Organization id."
    )
    actor_id = _repeatable(
        fields.String(validate=validate.Length(min=1, max=MAX_ID_CHARS)), "Actor id."
    )
    status = fields.String(validate=validate.OneOf(STATUSES))
    source = fields.String(validate=validate.OneOf(SOURCE_CHANNELS))
    actor_type = fields.String(validate=validate.OneOf(ACTOR_TYPES))

    @validates_schema
    def _window_order(self, data: dict[str, Any], **kwargs: Any) -> None:
        start, end = data.get("from_"), data.get("to")
        if start is not None and end is not None and start > end:
            raise ValidationError("`from` must not be after `to`.", field_name="from")


class ListArgs(FilterArgs):
    limit = fields.Integer(
        load_default=DEFAULT_LIMIT,
        validate=validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1-{MAX_LIMIT}."},
    )
    cursor = fields.String(
        validate=validate.Length(min=1, max=2048),
        metadata={"description": "`next_cursor` of the previous page, with the same filters."},
    )


class ExportArgs(FilterArgs):
    format = fields.String(
        load_default="csv",
        validate=validate.OneOf(EXPORT_FORMATS),
        metadata={"description": "csv or ndjson."},
    )
    integrity = fields.Boolean(
        load_default=False,
        metadata={
            "description": "NDJSON only: each line also carries the stored document and the "
            "signed digest with the Merkle proof that covers it, so `audit-log verify "
            "--export FILE` checks the file offline with the public key alone."
        },
    )

    @validates_schema
    def _integrity_needs_ndjson(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("integrity") and data.get("format") != "ndjson":
            raise ValidationError("integrity proofs come with format=ndjson", "integrity")


class IntegrityStatus(Schema):
    log_id = fields.String(required=True)
    status = fields.String(
        required=True,
        metadata={
            "description": "verified: a digest signed by the configured key covers the log "
            "as stored; not_covered: no digest names it (yet: digests follow within seconds); "
            "changed: digests name it with another content; bad_signature: its digest does "
            "not verify with the configured key."
        },
    )
    verified = fields.Boolean(required=True)
    leaf = fields.String(required=True)
    digest = fields.Dict(metadata={"description": "The covering digest's signed header."})
    index = fields.Integer()
    proof = fields.List(fields.String(), metadata={"description": "RFC 9162 inclusion proof."})


class PublicKeys(Schema):
    algorithm = fields.String(required=True)
    keys = fields.List(fields.Dict(), required=True)


class DigestPageArgs(Schema):
    after_seq = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class DigestPage(Schema):
    items = fields.List(fields.Dict(), required=True)
    next_after_seq = fields.Integer(allow_none=True, required=True)


# --- responses ---------------------------------------------------------------------------


class Total(Schema):
    value = fields.Integer(required=True)
    relation = fields.String(required=True, validate=validate.OneOf(("eq", "gte")))


class LogList(Schema):
    items = fields.List(fields.Nested(Log), required=True)
    next_cursor = fields.String(required=True, allow_none=True)
    total = fields.Nested(Total, required=True)


class CatalogueActivity(CodeLabel):
    object_type = fields.String(required=True)


class CatalogueCategory(CodeLabel):
    activities = fields.List(fields.Nested(CatalogueActivity), required=True)


class ActivityCatalogue(Schema):
    categories = fields.List(fields.Nested(CatalogueCategory), required=True)


class ClientConfig(Schema):
    statuses = fields.List(fields.Nested(CodeLabel), required=True)
    sources = fields.List(fields.Nested(CodeLabel), required=True)
    actor_types = fields.List(fields.Nested(CodeLabel), required=True)
    roles = fields.List(fields.Nested(CodeLabel), required=True)
    page_size = fields.Integer(required=True, metadata={"description": "The default `limit`."})
    max_page_size = fields.Integer(required=True, metadata={"description": "The largest `limit`."})
    max_q_chars = fields.Integer(required=True, metadata={"description": "The longest `q`."})


class Health(Schema):
    status = fields.String(required=True)
    checks = fields.Dict(keys=fields.String(), values=fields.String())


# flask-smorest's own error body (code, status, message, errors): every error the API
# answers has this one shape, whether flask-smorest or `api.errors` produced it.
Error = ErrorSchema
