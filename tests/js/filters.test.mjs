// The viewer's filter rules, without a browser: node --test tests/js/
import assert from "node:assert/strict";
import { test } from "node:test";

import { activeFilterCount, buildParams, ids, localToIso, rangeLabel } from "../../api/static/filters.js";

const NOW = Date.parse("2026-11-26T12:00:00Z");
const DEFAULTS = { q: "", range: "24h", from: "", to: "", category: "", activity: "", actorId: "",
  organizationId: "", status: "", source: "", actorType: "" };

test("a preset range becomes an explicit start, fixed now", () => {
  const { params } = buildParams({ ...DEFAULTS, range: "7d" }, NOW);
  assert.equal(params.get("from"), "2026-11-19T12:00:00.000Z");
  assert.equal(params.get("to"), null);
});

test("every filter becomes its parameter; several ids repeat it", () => {
  const { params } = buildParams({ ...DEFAULTS, q: "  ompli ", category: "login_accessibility",
    activity: "password.reset", actorId: "u-1, u-2,,", organizationId: "org-7", status: "failure",
    source: "api", actorType: "system" }, NOW);
  assert.equal(params.get("q"), "ompli");
  assert.deepEqual(params.getAll("actor_id"), ["u-1", "u-2"]);
  assert.deepEqual([params.get("category"), params.get("activity"), params.get("organization_id")],
    ["login_accessibility", "password.reset", "org-7"]);
  assert.deepEqual([params.get("status"), params.get("source"), params.get("actor_type")],
    ["failure", "api", "system"]);
});

test("a custom range is checked before anything is asked", () => {
  assert.deepEqual(buildParams({ ...DEFAULTS, range: "custom", from: "not a date" }, NOW),
    { problem: "The start of the range is not a valid date.", field: "from" });
  const backwards = buildParams({ ...DEFAULTS, range: "custom", from: "2026-11-02T00:00", to: "2026-11-01T00:00" }, NOW);
  assert.equal(backwards.field, "from");
  const open = buildParams({ ...DEFAULTS, range: "custom", to: "2026-11-01T00:00" }, NOW);
  assert.equal(open.params.get("from"), null);
  assert.ok(open.params.get("to"));
});

test("ids, local times, filter counts and range labels", () => {
  assert.deepEqual(ids(" a ,b, "), ["a", "b"]);
  assert.equal(localToIso(""), "");
  assert.equal(localToIso("garbage"), null);
  assert.deepEqual(activeFilterCount(DEFAULTS), { panel: 0, all: 0 });
  assert.deepEqual(activeFilterCount({ ...DEFAULTS, status: "success", range: "7d", activity: "x.y" }),
    { panel: 1, all: 3 });
  assert.equal(rangeLabel("30d"), "last 30 days");
  assert.equal(rangeLabel("custom"), "the chosen date range");
});
