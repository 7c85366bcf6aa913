"""The LOG and LOG-with-details shapes of SPEC §4, defined once (marshmallow, so the API's
OpenAPI document is generated from them), and the CSV export's columns as paths into them.

`schemas.document.document_to_log` / `document_to_log_detail` build these shapes without a
marshmallow dump (the API's fast path); tests/unit/test_schemas_log_shape.py checks that
what they build is exactly what these schemas describe.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from schemas.event import ACTOR_TYPES, EVENT_ID_PATTERN, SOURCE_CHANNELS, STATUSES

# Log IDs are `event_id`s: SPEC §2 restricts their alphabet and length.
LOG_ID_PATTERN = f"^{EVENT_ID_PATTERN.pattern}$"


class OrganizationRef(Schema):
    id = fields.String(required=True)
    name = fields.String(allow_none=True)


class CodeLabel(Schema):
    code = fields.String(required=True)
    label = fields.String(required=True)


class Actor(Schema):
    type = fields.String(required=True, validate=validate.OneOf(ACTOR_TYPES))
    id = fields.String(required=True)
    name = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    role = fields.String(allow_none=True)


class ObjectRef(Schema):
    type = fields.String(required=True)
    id = fields.String(allow_none=True)
    name = fields.String(allow_none=True)


class Log(Schema):
    id = fields.String(required=True)
    timestamp = fields.String(required=True, metadata={"format": "date-time"})
    partner_id = fields.String(required=True)
    organization = fields.Nested(OrganizationRef, allow_none=True)
    category = fields.Nested(CodeLabel, required=True)
    activity = fields.Nested(CodeLabel, required=True)
    actor = fields.Nested(Actor, required=True)
    source = fields.String(required=True, validate=validate.OneOf(SOURCE_CHANNELS))
    object = fields.Nested(ObjectRef, allow_none=True)
    status = fields.String(required=True, validate=validate.OneOf(STATUSES))
    status_reason = fields.String(allow_none=True)
    description = fields.String(allow_none=True)


class Change(Schema):
    field = fields.String(required=True)
    old = fields.Raw(allow_none=True)
    new = fields.Raw(allow_none=True)


class LogDetails(Schema):
    ip = fields.String(allow_none=True)
    user_agent = fields.String(allow_none=True)
    service = fields.String(allow_none=True)
    request_id = fields.String(allow_none=True)
    changes = fields.List(fields.Nested(Change), allow_none=True)
    # Values are scalars, null included (SPEC §2).
    metadata = fields.Dict(
        keys=fields.String(), values=fields.Raw(allow_none=True), allow_none=True
    )
    ingested_at = fields.String(allow_none=True, metadata={"format": "date-time"})


class LogDetail(Log):
    details = fields.Nested(LogDetails, required=True)


#: The CSV export's columns, in order: (column, path of the value in a LOG with details).
CSV_COLUMNS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("id", ("id",)),
    ("timestamp", ("timestamp",)),
    ("partner_id", ("partner_id",)),
    ("organization_id", ("organization", "id")),
    ("organization_name", ("organization", "name")),
    ("category", ("category", "label")),
    ("activity_code", ("activity", "code")),
    ("activity", ("activity", "label")),
    ("actor_type", ("actor", "type")),
    ("actor_id", ("actor", "id")),
    ("actor_name", ("actor", "name")),
    ("actor_email", ("actor", "email")),
    ("actor_role", ("actor", "role")),
    ("source", ("source",)),
    ("object_type", ("object", "type")),
    ("object_id", ("object", "id")),
    ("object_name", ("object", "name")),
    ("status", ("status",)),
    ("status_reason", ("status_reason",)),
    ("description", ("description",)),
    ("ip", ("details", "ip")),
    ("user_agent", ("details", "user_agent")),
    ("service", ("details", "service")),
    ("request_id", ("details", "request_id")),
    ("changes", ("details", "changes")),
    ("metadata", ("details", "metadata")),
    ("ingested_at", ("details", "ingested_at")),
)
