"""deploy/kibana: the saved objects are well-formed NDJSON, every reference resolves to an
object of the file, every field they use exists in the index template's mapping, and
import.py prepares what Kibana's import API expects."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from schemas.index_template import mappings

KIBANA = Path(__file__).resolve().parents[2] / "deploy" / "kibana"
NDJSON = KIBANA / "partner-audit-log.ndjson"
RECORDS = "___records___"  # Lens' pseudo-field of a count


def load_import_module() -> ModuleType:
    # deploy/kibana/import.py is a script (and `import` is a keyword): load it by path.
    spec = importlib.util.spec_from_file_location("kibana_import", KIBANA / "import.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    lines = NDJSON.read_text(encoding="utf-8").splitlines()
    assert lines and all(line.strip() for line in lines), "no blank lines in NDJSON"
    return [json.loads(line) for line in lines]


def by_type(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [obj for obj in objects if obj["type"] == kind]


def mapped_fields() -> set[str]:
    """Every field path of the mapping, multi-fields (`user.name.text`) included."""
    found: set[str] = set()

    def walk(properties: dict[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            path = prefix + name
            if "properties" in spec:
                walk(spec["properties"], path + ".")
                continue
            found.add(path)
            for sub in spec.get("fields", {}):
                found.add(f"{path}.{sub}")

    walk(mappings()["properties"], "")
    return found


def test_every_line_is_a_saved_object_with_a_unique_id(objects: list[dict[str, Any]]) -> None:
    for obj in objects:
        assert {"id", "type", "attributes", "references"} <= set(obj), obj.get("id")
        assert obj["attributes"].get("title"), obj["id"]
    keys = [(obj["type"], obj["id"]) for obj in objects]
    assert len(keys) == len(set(keys))
    assert {"index-pattern", "search", "lens", "dashboard"} == {obj["type"] for obj in objects}


def test_every_reference_resolves_to_an_object_of_the_file(
    objects: list[dict[str, Any]],
) -> None:
    present = {(obj["type"], obj["id"]) for obj in objects}
    for obj in objects:
        names = [ref["name"] for ref in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in present, f"{obj['id']} -> {ref}"


def test_the_data_view_covers_the_audit_indices(objects: list[dict[str, Any]]) -> None:
    (data_view,) = by_type(objects, "index-pattern")
    attributes = data_view["attributes"]
    assert attributes["title"] == "audit-logs"  # the read alias, never a pattern
    assert attributes["timeFieldName"] == "@timestamp"
    labelled = set(json.loads(attributes["fieldAttrs"]))
    assert labelled <= mapped_fields(), labelled - mapped_fields()


def test_embedded_json_parses_and_names_its_references(objects: list[dict[str, Any]]) -> None:
    for obj in by_type(objects, "search") + by_type(objects, "dashboard"):
        source = json.loads(obj["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        ref_name = source.get("indexRefName")
        if ref_name:
            assert ref_name in {ref["name"] for ref in obj["references"]}


def test_the_saved_search_shows_mapped_columns(objects: list[dict[str, Any]]) -> None:
    (search,) = by_type(objects, "search")
    columns = search["attributes"]["columns"]
    assert {"user.name", "event.outcome", "message"} <= set(columns)
    assert set(columns) <= mapped_fields(), set(columns) - mapped_fields()
    assert search["attributes"]["sort"] == [["@timestamp", "desc"]]


def test_lens_layers_use_mapped_fields_and_reference_the_data_view(
    objects: list[dict[str, Any]],
) -> None:
    fields = mapped_fields()
    lenses = by_type(objects, "lens")
    assert len(lenses) == 3
    for lens in lenses:
        state = lens["attributes"]["state"]
        layers = state["datasourceStates"]["formBased"]["layers"]
        refs = {ref["name"] for ref in lens["references"]}
        for layer_id, layer in layers.items():
            assert f"indexpattern-datasource-layer-{layer_id}" in refs
            assert set(layer["columnOrder"]) == set(layer["columns"])
            for column in layer["columns"].values():
                assert column["sourceField"] in fields | {RECORDS}, column["sourceField"]
        for vis_layer in state["visualization"]["layers"]:
            assert vis_layer["layerId"] in layers
            columns = layers[vis_layer["layerId"]]["columns"]
            for accessor in [vis_layer["xAccessor"], *vis_layer["accessors"]]:
                assert accessor in columns
            if "splitAccessor" in vis_layer:
                assert vis_layer["splitAccessor"] in columns


def test_the_dashboard_panels_resolve_and_cover_the_questions(
    objects: list[dict[str, Any]],
) -> None:
    (dashboard,) = by_type(objects, "dashboard")
    panels = json.loads(dashboard["attributes"]["panelsJSON"])
    json.loads(dashboard["attributes"]["optionsJSON"])
    references = {ref["name"]: ref for ref in dashboard["references"]}
    titles = {(obj["type"], obj["id"]): obj["attributes"]["title"] for obj in objects}
    shown = set()
    for panel in panels:
        assert panel["gridData"]["i"] == panel["panelIndex"]
        ref = references[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"]
        shown.add(titles[(ref["type"], ref["id"])])
    assert {
        "Audit events over time by category",
        "Top actors",
        "Failures by activity",
        "Audit logs",
    } == shown
    failures = next(o for o in objects if o["attributes"]["title"] == "Failures by activity")
    assert "event.outcome" in failures["attributes"]["state"]["query"]["query"]


def test_import_rewrites_the_pattern_for_another_prefix(objects: list[dict[str, Any]]) -> None:
    module = load_import_module()
    rewritten = module.with_index_prefix(module.load_objects(), "acme-audit")
    (data_view,) = by_type(rewritten, "index-pattern")
    assert data_view["attributes"]["title"] == "acme-audit"
    assert by_type(objects, "index-pattern")[0]["attributes"]["title"] == "audit-logs"
    assert [o["id"] for o in rewritten] == [o["id"] for o in objects]


def test_import_builds_a_multipart_ndjson_upload() -> None:
    module = load_import_module()
    payload = module.to_ndjson(module.load_objects())
    body, boundary = module.multipart("file", "objects.ndjson", payload)
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert body.endswith(f"\r\n--{boundary}--\r\n".encode())
    assert b'name="file"; filename="objects.ndjson"' in body
    assert payload in body
    assert len(payload.decode().splitlines()) == len(module.load_objects())


def test_import_authentication_and_space_come_from_the_environment() -> None:
    module = load_import_module()
    assert module.auth_headers({}) == {}
    assert module.auth_headers({"KIBANA_API_KEY": "abc"}) == {"Authorization": "ApiKey abc"}
    basic = module.auth_headers({"KIBANA_USERNAME": "elastic", "KIBANA_PASSWORD": "pw"})
    assert basic == {"Authorization": "Basic ZWxhc3RpYzpwdw=="}
    assert module.space_path({}) == ""
    assert module.space_path({"KIBANA_SPACE": "default"}) == ""
    assert module.space_path({"KIBANA_SPACE": "security"}) == "/s/security"


def test_import_refuses_a_non_http_kibana_url(capsys: pytest.CaptureFixture[str]) -> None:
    module = load_import_module()
    assert module.main({"KIBANA_URL": "file:///etc/passwd"}) == 1
    assert "http(s)" in capsys.readouterr().err


def test_every_object_declares_the_version_kibana_migrates_it_from(
    objects: list[dict[str, Any]],
) -> None:
    def version(text: str) -> tuple[int, ...]:
        return tuple(int(part) for part in text.split("."))

    for obj in objects:
        assert obj["coreMigrationVersion"] == "8.8.0", obj["id"]
        # Nothing newer than the Kibana these objects are for (8.19): it would be refused.
        assert version(obj["typeMigrationVersion"]) <= (8, 19, 0), obj["id"]
    for lens in by_type(objects, "lens"):
        # "formBased" exists from 8.6.0; declared older, Kibana's 8.6.0 migration would
        # replace it with the (absent) pre-8.6 "indexpattern" state.
        assert version(lens["typeMigrationVersion"]) >= (8, 6, 0)
