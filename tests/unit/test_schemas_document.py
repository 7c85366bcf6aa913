"""Event -> ECS document -> LOG, the index template, and the no-loss property."""

from __future__ import annotations

import ipaddress
import json
import string
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.catalogue import all_activities, get_activity
from schemas.document import (
    build_document,
    document_to_log,
    document_to_log_detail,
    generate_description,
    index_name,
    iso_ms,
    serialized_log,
    stored_log,
)
from schemas.event import validate_event
from schemas.index_template import index_template, read_alias, template_name
from schemas.integrity import leaf_hash, stored_source
from tests.unit.test_schemas_event import NOW, valid_event

INGESTED = datetime(2026, 11, 26, 9, 0, 0, 500000, tzinfo=UTC)

SPEC_LOG = {
    "id": "3f0c9a52-6a5e-4f8e-9d7e-1c2b3a4d5e6f",
    "timestamp": "2026-11-26T08:59:58.120Z",
    "partner_id": "p-100",
    "organization": {"id": "org-7", "name": "Acme Ltd"},
    "category": {"code": "organization_management", "label": "Organization Management"},
    "activity": {"code": "compliance.enable", "label": "Enable compliance"},
    "actor": {
        "type": "partner_user",
        "id": "u-42",
        "name": "Jane Doe",
        "email": "jane@partner.example",
        "role": "admin",
    },
    "source": "ui",
    "object": {"type": "organization", "id": "org-7", "name": "Acme Ltd"},
    "status": "success",
    "status_reason": None,
    "description": "Enabled compliance for Acme Ltd",
}


def stored(document: dict[str, Any]) -> dict[str, Any]:
    """What Elasticsearch returns as _source: JSON round trip, minus the excluded search data."""
    source = json.loads(json.dumps(document))
    source["audit"].pop("search")
    return source


def test_spec_example_becomes_spec_log() -> None:
    doc = build_document(validate_event(valid_event(), now=NOW), INGESTED)
    assert document_to_log(stored(doc)) == SPEC_LOG


def test_ecs_field_names() -> None:
    event = valid_event()
    event.update(status="failure", status_reason="not_found")
    event["source"].update(service="identity", request_id="req-9")
    doc = build_document(validate_event(event, now=NOW), INGESTED)
    assert doc["@timestamp"] == "2026-11-26T08:59:58.120Z"
    assert doc["event"] == {
        "id": event["event_id"],
        "kind": "event",
        "action": "compliance.enable",
        "outcome": "failure",
        "reason": "not_found",
        "ingested": "2026-11-26T09:00:00.500Z",
        "dataset": "partner_audit",
    }
    assert doc["user"] == {
        "id": "u-42",
        "name": "Jane Doe",
        "email": "jane@partner.example",
        "roles": ["admin"],
    }
    assert doc["organization"] == {"id": "org-7", "name": "Acme Ltd"}
    assert doc["source"] == {"ip": "203.0.113.9"}
    assert doc["user_agent"] == {"original": "Mozilla/5.0"}
    assert doc["service"] == {"name": "identity"}
    assert doc["http"] == {"request": {"id": "req-9"}}
    assert doc["message"] == "Enabled compliance for Acme Ltd"
    assert doc["audit"]["category"]["code"] == "organization_management"
    assert doc["audit"]["source"] == {"channel": "ui"}
    assert doc["audit"]["partner_id"] == "p-100"


def test_unknown_action_is_category_other() -> None:
    event = valid_event()
    event["action"] = "widget.frobnicate"
    log = document_to_log(stored(build_document(validate_event(event, now=NOW), INGESTED)))
    assert log["category"] == {"code": "other", "label": "Other"}
    assert log["activity"] == {"code": "widget.frobnicate", "label": "Frobnicate widget"}


def test_minimal_event_has_nulls_in_log_and_empty_details() -> None:
    event = valid_event()
    for key in ("organization", "object", "description"):
        del event[key]
    event["actor"] = {"type": "system", "id": "svc-billing"}
    event["source"] = {"channel": "system"}
    doc = build_document(validate_event(event, now=NOW), INGESTED)
    detail = document_to_log_detail(stored(doc))
    assert detail["organization"] is None and detail["object"] is None
    assert detail["actor"] == {
        "type": "system",
        "id": "svc-billing",
        "name": None,
        "email": None,
        "role": None,
    }
    assert detail["details"] == {
        "ip": None,
        "user_agent": None,
        "service": None,
        "request_id": None,
        "changes": [],
        "metadata": {},
        "ingested_at": "2026-11-26T09:00:00.500Z",
    }
    assert detail["description"] == "Enable compliance by svc-billing"
    assert doc["audit"]["description_generated"] is True


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({}, "Enable compliance — Acme Ltd by Jane Doe"),
        (
            {"object": {"type": "ad_group", "id": "g-1", "name": "Sales"}},
            "Enable compliance — Sales (Acme Ltd) by Jane Doe",
        ),
        ({"object": None}, "Enable compliance — Acme Ltd by Jane Doe"),
        (
            {"status": "failure", "status_reason": "not_found"},
            "Enable compliance — Acme Ltd by Jane Doe (failed: not_found)",
        ),
        ({"status": "failure"}, "Enable compliance — Acme Ltd by Jane Doe (failed)"),
        (
            {"actor": {"type": "partner_user", "id": "u-1", "email": "a@b.example"}},
            "Enable compliance — Acme Ltd by a@b.example",
        ),
    ],
)
def test_generated_description(patch: dict[str, Any], expected: str) -> None:
    event = {**valid_event(), **patch}
    event.pop("description")
    event = {key: value for key, value in event.items() if value is not None}
    assert generate_description(event, get_activity(event["action"])) == expected


def test_index_name_is_monthly_utc() -> None:
    assert (
        index_name("audit-logs", datetime(2026, 11, 30, 23, 30, tzinfo=UTC)) == "audit-logs-2026.11"
    )
    # 00:30 on Dec 1st at +01:00 is still November in UTC.
    assert index_name("audit-logs", "2026-12-01T00:30:00+01:00") == "audit-logs-2026.11"


def test_iso_ms_truncates_to_milliseconds() -> None:
    assert iso_ms(datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC)) == "2026-01-02T03:04:05.678Z"


def test_template_shape() -> None:
    body = index_template("audit-logs")
    assert body["index_patterns"] == ["audit-logs-*"]
    assert body["template"]["aliases"] == {"audit-logs": {}}
    settings_ = body["template"]["settings"]
    assert (settings_["number_of_shards"], settings_["number_of_replicas"]) == (1, 0)
    assert settings_["refresh_interval"] == "1s"
    assert body["template"]["mappings"]["dynamic"] == "strict"
    assert read_alias("x") == template_name("x") == "x"


FORBIDDEN_TYPES = {"wildcard", "search_as_you_type", "match_only_text", "constant_keyword"}


def walk_mapping(properties: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        out[path] = spec
        out.update(walk_mapping(spec.get("properties", {}), f"{path}."))
    return out


def test_mapping_uses_core_types_and_standard_analyzer_only() -> None:
    fields = walk_mapping(index_template("p")["template"]["mappings"]["properties"])
    for path, spec in fields.items():
        assert spec.get("type") not in FORBIDDEN_TYPES, path
        assert spec.get("analyzer", "standard") == "standard", path


def document_paths(value: Any, prefix: str = "") -> set[str]:
    """Leaf paths of a document, the way a mapping names them (arrays are transparent)."""
    if isinstance(value, list):
        return set().union(*(document_paths(v, prefix) for v in value)) if value else set()
    if isinstance(value, dict):
        return set().union(*(document_paths(v, f"{prefix}{k}.") for k, v in value.items()))
    return {prefix.rstrip(".")}


def assert_fits_strict_mapping(doc: dict[str, Any]) -> None:
    """Every leaf is mapped, or lies inside a mapping that takes free-form data."""
    fields = walk_mapping(index_template("p")["template"]["mappings"]["properties"])
    free = [
        path
        for path, spec in fields.items()
        if spec.get("type") == "flattened" or spec.get("dynamic") is False
    ]
    for path in document_paths(doc):
        assert path in fields or any(path.startswith(f"{f}.") for f in free), path


# Hypothesis: any valid event validates, becomes a document that fits the mapping, and a LOG
# that carries every field of the event.

text = st.text(min_size=1, max_size=20)
optional_text = st.none() | text
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | text
    | st.floats(allow_nan=False, allow_infinity=False)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=5,
)


def drop_none(mapping: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in mapping.items() if value is not None}


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    # Latest local time 2026-11-26T00:00 at any real offset (<= 14h) is before NOW + 24h.
    occurred = draw(
        st.datetimes(
            min_value=datetime(1990, 1, 1),
            max_value=datetime(2026, 11, 26),
            timezones=st.sampled_from([UTC, None]) | st.timezones(),
        )
    )
    if occurred.tzinfo is None:
        occurred = occurred.replace(tzinfo=UTC)
    ip = draw(st.none() | st.ip_addresses().map(str))
    event = {
        "event_id": draw(
            st.text(
                alphabet=string.ascii_letters + string.digits + "._:-", min_size=1, max_size=128
            )
        ),
        "schema_version": 1,
        "occurred_at": occurred.isoformat(),
        "action": draw(
            st.sampled_from([a.code for a in all_activities()])
            | st.from_regex(r"[a-z0-9_]{1,8}(\.[a-z0-9_]{1,8}){1,2}", fullmatch=True)
        ),
        "partner_id": draw(st.text(min_size=1, max_size=64)),
        "organization": draw(
            st.none() | st.builds(lambda i, n: drop_none({"id": i, "name": n}), text, optional_text)
        ),
        "actor": drop_none(
            {
                "type": draw(
                    st.sampled_from(
                        ["partner_user", "organization_user", "internal_support", "system"]
                    )
                ),
                "id": draw(text),
                "name": draw(optional_text),
                "email": draw(optional_text),
                "role": draw(
                    st.none() | st.sampled_from(["owner", "super_admin", "admin", "support"])
                ),
            }
        ),
        "source": drop_none(
            {
                "channel": draw(st.sampled_from(["ui", "api", "system"])),
                "ip": ip,
                "user_agent": draw(optional_text),
                "service": draw(optional_text),
                "request_id": draw(optional_text),
            }
        ),
        "object": draw(
            st.none()
            | st.builds(
                lambda t, i, n: drop_none({"type": t, "id": i, "name": n}),
                text,
                optional_text,
                optional_text,
            )
        ),
        "status": draw(st.sampled_from(["success", "failure"])),
        "status_reason": draw(optional_text),
        "description": draw(st.none() | st.text(min_size=1, max_size=200)),
        "changes": draw(
            st.none()
            | st.lists(
                st.builds(
                    lambda f, o, n: {"field": f, "old": o, "new": n}, text, json_values, json_values
                ),
                max_size=5,
            )
        ),
        # U+0000 is the one character a metadata key may not hold (see schemas.event).
        "metadata": draw(
            st.none() | st.dictionaries(text.filter(lambda k: "\x00" not in k), scalars, max_size=5)
        ),
    }
    return drop_none(event)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_valid_events_convert_without_loss(event: dict[str, Any]) -> None:
    validated = validate_event(json.loads(json.dumps(event)), now=NOW)
    doc = build_document(validated, INGESTED)
    assert_fits_strict_mapping(doc)
    detail = document_to_log_detail(stored(doc))

    occurred = datetime.fromisoformat(event["occurred_at"]).astimezone(UTC)
    assert detail["timestamp"] == iso_ms(occurred)
    assert detail["id"] == event["event_id"]
    assert detail["partner_id"] == event["partner_id"]
    assert detail["activity"]["code"] == event["action"]
    assert detail["status"] == event["status"]
    assert detail["status_reason"] == event.get("status_reason")
    assert detail["source"] == event["source"]["channel"]
    actor = event["actor"]
    assert detail["actor"] == {k: actor.get(k) for k in ("type", "id", "name", "email", "role")}
    for key, fields in (("organization", ("id", "name")), ("object", ("type", "id", "name"))):
        expected = event.get(key)
        assert detail[key] == ({k: expected.get(k) for k in fields} if expected else None)
    if "description" in event:
        assert detail["description"] == event["description"]
    else:
        assert detail["description"].startswith(detail["activity"]["label"])
    source = event["source"]
    details = detail["details"]
    assert details["ip"] == (str(ipaddress.ip_address(source["ip"])) if "ip" in source else None)
    assert details["user_agent"] == source.get("user_agent")
    assert details["service"] == source.get("service")
    assert details["request_id"] == source.get("request_id")
    assert details["changes"] == json.loads(json.dumps(event.get("changes", [])))
    assert details["metadata"] == event.get("metadata", {})
    assert details["ingested_at"] == iso_ms(INGESTED)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=events())
def test_the_worker_serialization_is_the_document_and_its_leaf(event: dict[str, Any]) -> None:
    """`serialized_log` (one serialization in the worker) sends exactly `build_document`'s
    document and hashes exactly `leaf_hash` of what Elasticsearch keeps of it."""
    validated = validate_event(json.loads(json.dumps(event)), now=NOW)
    log = serialized_log("audit-test", validated, INGESTED)

    document = build_document(validated, INGESTED)
    assert log.document == document
    assert orjson.loads(log.source) == document
    assert log.leaf == leaf_hash(stored_source(document))
    assert (log.index_name, log.doc_id) == stored_log("audit-test", validated, INGESTED)[:2]
