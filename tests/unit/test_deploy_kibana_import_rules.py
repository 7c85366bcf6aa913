"""deploy/kibana/partner-audit-log.ndjson against the rules Kibana 8.19's saved-objects import
applies, transcribed from Kibana's own source (github.com/elastic/kibana; each rule names the
file and the commit it was read at). No Kibana runs here, so these rules stand in for
`POST /api/saved_objects/_import`; every check is also shown to refuse a broken object.

Where the commit read is newer than 8.19 (a type gained model versions since), the bound used
is the one 8.19 certainly has, so a check may refuse what 8.19 would take, never the reverse.
"""

from __future__ import annotations

import copy
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

NDJSON = Path(__file__).resolve().parents[2] / "deploy" / "kibana" / "partner-audit-log.ndjson"
KIBANA_VERSION = "8.19.0"
# The import itself (src/core/packages/saved-objects/...):
#   import-export-server-internal/src/import/lib/collect_saved_objects.ts
#     @ b9f02a2169c1571d263a0c01ae9398475556b4d5  (unsupported_type, type:id collected)
#   import-export-server-internal/src/import/lib/get_non_unique_entries.ts
#     @ b4099342f24d7dc24456d8e935c01ba1e4a75872  (a type:id twice refuses the file)
#   import-export-server-internal/src/import/lib/validate_references.ts
#     @ 7d915d1e2e5db711714399e076605c6cda0d1646  (missing_references)
#   migration-server-internal/src/document_migrator/pipelines/upgrade_pipeline.ts
#     @ a2dd304306195de5416992cd8f752c1e6e2a483a  (versions newer than Kibana knows)

# collect_saved_objects.ts: an object whose type is not importable fails as `unsupported_type`.
# Each of these registers `importableAndExportable: true`:
#   index-pattern  src/platform/plugins/shared/data_views/server/saved_objects/data_views.ts
#                  @ b4099342f24d7dc24456d8e935c01ba1e4a75872
#   search         src/platform/plugins/shared/saved_search/server/saved_objects/search.ts
#                  @ 9b250a830556de86a86e1a5deaba00cb9dddd572
#   lens           x-pack/platform/plugins/shared/lens/server/saved_objects.ts
#                  @ e88eb04259220ee7d6344628e8a002c2b30e8cec
#   dashboard      src/platform/plugins/shared/dashboard/server/dashboard_saved_object/
#                  dashboard_saved_object.ts @ 04698d03a6525795ce34443b20a85a3dda762d17
IMPORTABLE = {"index-pattern", "search", "lens", "dashboard"}

# document_migrator/pipelines/upgrade_pipeline.ts (assertCompatibility): a typeMigrationVersion
# above max(latest migration, convertToMultiNamespaceTypeVersion) of its type is refused:
# "belongs to a more recent version of Kibana". A model version N counts as "10.N.0".
LATEST_KNOWN = {
    # migrations up to 7.11.0 (data_views/server/saved_objects/index_pattern_migrations.ts
    # @ b9c5cc397a61a5d2e73a19ad518e3eb9442d4f39), multi-namespace at 8.0.0 (data_views.ts).
    "index-pattern": "8.0.0",
    # model version 1 and later (search.ts above; 8.19 has at least the first).
    "search": "10.1.0",
    # lensMigrations end at 8.9.0 (server/migrations/saved_object_migrations.ts
    # @ d5471f131b1432c6e11599eadb33b8794d8b5357); no model versions (saved_objects.ts above).
    "lens": "8.9.0",
    # model version 1 and later (dashboard_saved_object.ts above).
    "dashboard": "10.1.0",
}
# saved_object_migrations.ts' 8.6.0 migration (migrateIndexPatternDatasource) moves Lens'
# `datasourceStates.indexpattern` to `formBased`: an object already shaped `formBased` must
# say it is at 8.6.0 or later, or that migration runs on a shape it does not expect.
LENS_FORM_BASED_SINCE = "8.6.0"

# validate_references.ts: references to these types must exist in the file or in Kibana,
# else `missing_references`; we assume an empty Kibana.
REF_TYPES_TO_VALIDATE = {"index-pattern", "search"}

# lensAttributesSchema, unknowns forbidden:
# x-pack/platform/plugins/shared/lens/server/content_management/v1/cm_services.ts
# @ 37afc16f162245af9e982d31034dca0dd8a5f48e (its referenceSchema forbids unknowns too).
LENS_ATTRIBUTES: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "description": (str, type(None)),
    "visualizationType": (str,),
    "state": (object,),
    "uiStateJSON": (str,),
    "visState": (str,),
    "savedSearchRefName": (str,),
}
REFERENCE_KEYS = {"name", "type", "id"}

# dashboardAttributesSchema v1 (unknowns forbidden), extended by v2 and v3:
# src/platform/plugins/shared/dashboard/server/dashboard_saved_object/schema/v1/v1.ts
#   @ 3c37204bef8a077edf1758caa45474499c2941c7
# .../schema/v2/v2.ts @ 6bd9e248b21897617f25cd0ef3f6c191329bec24 (gridDataSchema, below)
# .../schema/v3/v3.ts @ 1b722a55d94f32116be2e4a15137ade5a918ecbd (sections)
NUMBER = (int, float)
DASHBOARD_ATTRIBUTES: dict[str, tuple[type, ...]] = {
    "title": (str,),
    "description": (str,),
    "kibanaSavedObjectMeta": (dict,),
    "timeRestore": (bool,),
    "timeFrom": (str,),
    "timeTo": (str,),
    "refreshInterval": (dict,),
    "controlGroupInput": (dict,),
    "panelsJSON": (str,),
    "optionsJSON": (str,),
    "hits": NUMBER,
    "version": NUMBER,
    "sections": (list,),
}
REFRESH_INTERVAL = {"pause": (bool,), "value": NUMBER, "display": (str,), "section": NUMBER}
GRID_DATA = {"x": NUMBER, "y": NUMBER, "w": NUMBER, "h": NUMBER, "i": (str,)}


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in NDJSON.read_text(encoding="utf-8").splitlines()]


def typed(value: Any, types: tuple[type, ...]) -> bool:
    # bool is an int in Python, never a number in config-schema.
    if isinstance(value, bool) and bool not in types:
        return False
    return isinstance(value, types)


def check_fields(
    where: str, found: dict[str, Any], allowed: dict[str, tuple[type, ...]]
) -> list[str]:
    problems = [f"{where}: unknown key {key!r}" for key in sorted(set(found) - set(allowed))]
    problems += [
        f"{where}.{key}: {type(value).__name__}"
        for key, value in found.items()
        if key in allowed and not typed(value, allowed[key])
    ]
    return problems


# --------------------------------------------------------------------------- the rules


def import_errors(objects: list[dict[str, Any]]) -> list[str]:
    """Every rule below, on the whole file; [] when Kibana 8.19 would import it."""
    problems = whole_file_errors(objects)
    for obj in objects:
        problems += object_errors(obj, objects)
    return problems


def whole_file_errors(objects: list[dict[str, Any]]) -> list[str]:
    # collect_saved_objects.ts + get_non_unique_entries.ts: a type:id seen twice refuses the
    # whole import (nonUniqueImportObjects).
    keys = Counter(f"{obj['type']}:{obj['id']}" for obj in objects)
    return [f"{key} appears {count} times" for key, count in keys.items() if count > 1]


def object_errors(obj: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    where = f"{obj.get('type')}:{obj.get('id')}"
    if obj.get("type") not in IMPORTABLE:
        return [f"{where}: unsupported_type"]
    problems = version_errors(where, obj)
    problems += reference_errors(where, obj, objects)
    checker = {"lens": lens_errors, "dashboard": dashboard_errors}.get(obj["type"])
    if checker is not None:
        problems += checker(where, obj["attributes"])
    return problems


def version_errors(where: str, obj: dict[str, Any]) -> list[str]:
    problems = []
    declared = obj.get("typeMigrationVersion")
    if declared is None:
        problems.append(f"{where}: no typeMigrationVersion (every migration would run)")
    elif version(declared) > version(LATEST_KNOWN[obj["type"]]):
        problems.append(f"{where}: typeMigrationVersion {declared} is newer than Kibana knows")
    core = obj.get("coreMigrationVersion")
    # upgrade_pipeline.ts' assertValidCoreVersion: no core version above Kibana's own.
    if core is not None and version(core) > version(KIBANA_VERSION):
        problems.append(f"{where}: coreMigrationVersion {core} is newer than {KIBANA_VERSION}")
    return problems


def reference_errors(where: str, obj: dict[str, Any], objects: list[dict[str, Any]]) -> list[str]:
    present = {(other["type"], other["id"]) for other in objects}
    problems = []
    for ref in obj.get("references", []):
        if set(ref) - REFERENCE_KEYS or not {"type", "id"} <= set(ref):
            problems.append(f"{where}: malformed reference {ref}")
        elif ref["type"] in REF_TYPES_TO_VALIDATE and (ref["type"], ref["id"]) not in present:
            problems.append(f"{where}: missing_references {ref['type']}:{ref['id']}")
    return problems


def lens_errors(where: str, attributes: dict[str, Any]) -> list[str]:
    problems = check_fields(f"{where}.attributes", attributes, LENS_ATTRIBUTES)
    if not isinstance(attributes.get("title"), str):
        problems.append(f"{where}: title is required")
    return problems


def dashboard_errors(where: str, attributes: dict[str, Any]) -> list[str]:
    problems = check_fields(f"{where}.attributes", attributes, DASHBOARD_ATTRIBUTES)
    if not isinstance(attributes.get("title"), str):
        problems.append(f"{where}: title is required")
    meta = attributes.get("kibanaSavedObjectMeta", {})
    problems += check_fields(f"{where}.kibanaSavedObjectMeta", meta, {"searchSourceJSON": (str,)})
    refresh = attributes.get("refreshInterval")
    if refresh is not None:
        problems += check_fields(f"{where}.refreshInterval", refresh, REFRESH_INTERVAL)
        problems += [
            f"{where}.refreshInterval.{k} missing" for k in ("pause", "value") if k not in refresh
        ]
    for index, panel in enumerate(json.loads(attributes.get("panelsJSON", "[]"))):
        grid = panel.get("gridData", {})
        problems += check_fields(f"{where}.panels[{index}].gridData", grid, GRID_DATA)
        problems += [
            f"{where}.panels[{index}].gridData.{k} missing" for k in GRID_DATA if k not in grid
        ]
    return problems


# --------------------------------------------------------------------------- the tests


def test_kibana_8_19_would_import_the_file() -> None:
    assert import_errors(load()) == []


def test_lens_objects_are_declared_at_the_form_based_shape() -> None:
    for obj in load():
        if obj["type"] == "lens" and "formBased" in obj["attributes"]["state"]["datasourceStates"]:
            assert version(obj["typeMigrationVersion"]) >= version(LENS_FORM_BASED_SINCE), obj["id"]


def first(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next(obj for obj in objects if obj["type"] == kind)


def duplicate(objects: list[dict[str, Any]]) -> None:
    objects.append(copy.deepcopy(objects[0]))


def unknown_type(objects: list[dict[str, Any]]) -> None:
    objects[0]["type"] = "visualisation"


def too_new(objects: list[dict[str, Any]]) -> None:
    first(objects, "lens")["typeMigrationVersion"] = "8.19.0"  # Lens' last migration: 8.9.0


def core_too_new(objects: list[dict[str, Any]]) -> None:
    objects[0]["coreMigrationVersion"] = "9.0.0"


def missing_data_view(objects: list[dict[str, Any]]) -> None:
    objects[:] = [obj for obj in objects if obj["type"] != "index-pattern"]


def lens_unknown_attribute(objects: list[dict[str, Any]]) -> None:
    first(objects, "lens")["attributes"]["visualisationType"] = "lnsXY"


def dashboard_unknown_attribute(objects: list[dict[str, Any]]) -> None:
    first(objects, "dashboard")["attributes"]["timeRange"] = "now-24h"


def dashboard_bad_refresh(objects: list[dict[str, Any]]) -> None:
    first(objects, "dashboard")["attributes"]["refreshInterval"] = {"pause": "yes", "value": 0}


def dashboard_panel_without_height(objects: list[dict[str, Any]]) -> None:
    dashboard = first(objects, "dashboard")["attributes"]
    panels = json.loads(dashboard["panelsJSON"])
    del panels[0]["gridData"]["h"]
    dashboard["panelsJSON"] = json.dumps(panels)


@pytest.mark.parametrize(
    "breakage",
    [
        duplicate,
        unknown_type,
        too_new,
        core_too_new,
        missing_data_view,
        lens_unknown_attribute,
        dashboard_unknown_attribute,
        dashboard_bad_refresh,
        dashboard_panel_without_height,
    ],
    ids=lambda f: f.__name__,
)
def test_each_rule_refuses_what_kibana_refuses(
    breakage: Callable[[list[dict[str, Any]]], None],
) -> None:
    objects = load()
    breakage(objects)
    assert import_errors(objects), f"{breakage.__name__} went through"
