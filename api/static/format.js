/*
 * How values are shown: times in the browser's zone, names, labels from the API's
 * configuration (GET /api/v1/config), outcome badges. Pure but for the elements it builds.
 */
import { h } from "./dom.js";

const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  year: "numeric", month: "short", day: "numeric",
  hour: "2-digit", minute: "2-digit", second: "2-digit"
});
const dayFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
export const numberFormat = new Intl.NumberFormat();

export function formatTime(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  return isNaN(date.getTime()) ? iso : dateTimeFormat.format(date);
}

export function timeElement(iso) {
  return h("time", { datetime: iso, title: iso, text: formatTime(iso) });
}

/** Date over time, so the column stays narrow enough to leave room for the details. */
export function stackedTime(iso) {
  const date = new Date(iso);
  if (!iso || isNaN(date.getTime())) return timeElement(iso);
  return h("time", { datetime: iso, title: iso },
    h("span", { class: "al-primary", text: dayFormat.format(date) }),
    h("span", { class: "al-secondary", text: clockFormat.format(date) }));
}

/** The label of `code` among the API's {code, label} choices, else the code itself. */
export function labelOf(choices, code) {
  const found = (choices || []).find((c) => c.code === code);
  return found ? found.label : code || "";
}

export function actorName(actor) {
  if (!actor) return "";
  return actor.name || actor.email || actor.id || "";
}

export function objectName(obj) {
  if (!obj) return "";
  return obj.name || obj.id || obj.type || "";
}

export function scalarText(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

export function statusBadge(statuses, status, reason) {
  const failed = status === "failure";
  return h("span", { class: "al-outcome" },
    h("span", { class: "al-badge " + (failed ? "al-badge-failure" : "al-badge-success"),
      text: labelOf(statuses, status) }),
    failed && reason ? h("span", { class: "al-reason", text: " " + reason }) : null);
}
