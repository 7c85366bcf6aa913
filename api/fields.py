"""Names of the audit-document fields the API filters and sorts on.

The document itself is defined by `schemas/document.py`; these names must match its
output (the integration tests index documents built by `schemas.build_document`, so a
drift fails there, not in production).
"""

from __future__ import annotations

TIMESTAMP = "@timestamp"
LOG_ID = "event.id"
PARTNER_ID = "audit.partner_id"
ORGANIZATION_ID = "organization.id"
CATEGORY = "audit.category.code"
ACTIVITY = "event.action"
ACTOR_ID = "user.id"
ACTOR_TYPE = "audit.actor.type"
STATUS = "event.outcome"
SOURCE = "audit.source.channel"
