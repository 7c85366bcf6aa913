/*
 * Filters -> list parameters (SPEC section 4), without the DOM: `values` is a plain object
 * of the controls' values, so the rules are testable on their own.
 */

const HOUR_MS = 3600 * 1000;
export const RANGES = [
  { value: "24h", label: "Last 24 hours", ms: 24 * HOUR_MS },
  { value: "7d", label: "Last 7 days", ms: 7 * 24 * HOUR_MS },
  { value: "30d", label: "Last 30 days", ms: 30 * 24 * HOUR_MS },
  { value: "90d", label: "Last 90 days", ms: 90 * 24 * HOUR_MS },
  { value: "custom", label: "Custom range" }
];
export const DEFAULT_RANGE = "24h";

/** "a, b,,c" -> ["a", "b", "c"]: several ids in one field. */
export function ids(text) {
  return (text || "").split(",").map((s) => s.trim()).filter(Boolean);
}

/** Local "YYYY-MM-DDTHH:MM[:SS]" (datetime-local) -> RFC 3339 UTC, "" if empty, null if bad. */
export function localToIso(value) {
  if (!value) return "";
  const date = new Date(value);
  return isNaN(date.getTime()) ? null : date.toISOString();
}

/**
 * {params} for the controls' `values`, or {problem, field} when the custom range is wrong
 * (field: "from" or "to", the control to mark).
 */
export function buildParams(values, nowMs) {
  const params = new URLSearchParams();
  const q = (values.q || "").trim();
  if (q) params.set("q", q);
  if (values.range === "custom") {
    const from = localToIso(values.from);
    const to = localToIso(values.to);
    if (from === null) return { problem: "The start of the range is not a valid date.", field: "from" };
    if (to === null) return { problem: "The end of the range is not a valid date.", field: "to" };
    if (from && to && from > to) return { problem: "The start of the range must be before its end.", field: "from" };
    if (from) params.set("from", from);
    if (to) params.set("to", to);
  } else {
    // An explicit start, fixed now: "Load more" and the export then cover the very window
    // the first page was drawn from (the cursor is bound to these parameters).
    const preset = RANGES.find((r) => r.value === values.range) || RANGES[0];
    params.set("from", new Date(nowMs - preset.ms).toISOString());
  }
  if (values.category) params.append("category", values.category);
  if (values.activity) params.append("activity", values.activity);
  ids(values.actorId).forEach((v) => params.append("actor_id", v));
  ids(values.organizationId).forEach((v) => params.append("organization_id", v));
  if (values.status) params.set("status", values.status);
  if (values.source) params.set("source", values.source);
  if (values.actorType) params.set("actor_type", values.actorType);
  return { params };
}

/** How many filters beyond the defaults are set (search text not counted). */
export function activeFilterCount(values) {
  const panel = ["category", "actorId", "organizationId", "status", "source", "actorType"]
    .filter((name) => (values[name] || "").trim() !== "").length;
  return {
    panel,
    all: panel + (values.activity ? 1 : 0) + (values.range !== DEFAULT_RANGE ? 1 : 0)
  };
}

export function rangeLabel(range) {
  if (range === "custom") return "the chosen date range";
  return (RANGES.find((r) => r.value === range) || RANGES[0]).label.toLowerCase();
}
