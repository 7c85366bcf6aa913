/*
 * The details panel of one log: every field, its changes and metadata, and whether a
 * signed digest covers it as stored (docs/integrity.md).
 */
import { append, clear, h } from "./dom.js";
import { formatTime, labelOf, scalarText, statusBadge, timeElement } from "./format.js";

function dl(pairs) {
  const list = h("dl", { class: "al-dl" });
  pairs.forEach(([label, value]) => {
    const empty = value === null || value === undefined || value === "";
    append(list, [
      h("dt", { text: label }),
      h("dd", { class: empty ? "al-muted" : null }, empty ? "—" : value)
    ]);
  });
  return list;
}

function section(title, content) {
  return h("section", { class: "al-details-section" }, h("h3", { text: title }), content);
}

function kvTable(caption, headers, rowsData, emptyText) {
  if (!rowsData.length) return h("p", { class: "al-muted", text: emptyText });
  return h("table", { class: "al-kv" },
    h("caption", { class: "al-visually-hidden", text: caption }),
    h("thead", null, h("tr", null, headers.map((x) => h("th", { scope: "col", text: x })))),
    h("tbody", null, rowsData.map((r) => h("tr", null, r.map((v, i) => (i === 0
      ? h("th", { scope: "row", text: v })
      : h("td", { class: "al-value", text: v })))))));
}

/** Fill `body` with `log` (SPEC section 4 detail shape); `config` gives the labels. */
export function renderDetails(body, log, config) {
  const actor = log.actor || {};
  const org = log.organization || {};
  const obj = log.object || {};
  const d = log.details || {};
  const changes = (d.changes || []).map((c) => [c.field, scalarText(c.old), scalarText(c.new)]);
  const metadata = Object.keys(d.metadata || {}).sort().map((k) => [k, scalarText(d.metadata[k])]);
  clear(body);
  append(body, [
    h("p", { class: "al-details-lead" }, statusBadge(config.statuses, log.status, log.status_reason), " ", timeElement(log.timestamp)),
    log.description ? h("p", { class: "al-details-description", text: log.description }) : null,
    section("Activity", dl([
      ["Log ID", h("code", { class: "al-log-id", text: log.id })],
      ["Time (UTC)", log.timestamp],
      ["Activity", log.activity ? [
        h("span", { class: "al-primary", text: log.activity.label }),
        h("code", { class: "al-secondary al-log-id", text: log.activity.code })
      ] : ""],
      ["Category", log.category && log.category.label],
      ["Status", labelOf(config.statuses, log.status)],
      ["Reason", log.status_reason],
      ["Source", labelOf(config.sources, log.source)],
      ["Description", log.description]
    ])),
    section("Integrity", h("p", { class: "al-integrity al-muted", "data-integrity": "loading",
      text: "Checking the signed digest…" })),
    section("Actor", dl([
      ["Name", actor.name], ["ID", actor.id], ["Email", actor.email],
      ["Type", labelOf(config.actor_types, actor.type)], ["Role", labelOf(config.roles, actor.role)]
    ])),
    section("Object", dl([["Name", obj.name], ["ID", obj.id], ["Type", obj.type]])),
    section("Organization", dl([["Name", org.name], ["ID", org.id], ["Partner ID", log.partner_id]])),
    section("Changes", kvTable("Changes", ["Field", "Before", "After"], changes, "No changes recorded.")),
    section("Request", dl([
      ["IP address", d.ip], ["User agent", d.user_agent], ["Service", d.service],
      ["Request ID", d.request_id], ["Ingested", d.ingested_at ? formatTime(d.ingested_at) + " (" + d.ingested_at + ")" : null]
    ])),
    section("Metadata", kvTable("Metadata", ["Key", "Value"], metadata, "No metadata."))
  ]);
}

/** What the API's proof (GET /api/v1/integrity/logs/{id}) says of the log, in words. */
export const INTEGRITY_TEXT = {
  verified: "Covered by signed digest #{seq} ({time}): this log is exactly as it was recorded.",
  not_covered: "Not covered by a signed digest yet (digests are written every few seconds).",
  changed: "Does not match its signed digest: this log was altered after it was recorded.",
  bad_signature: "Its digest does not carry a valid signature: it cannot be trusted."
};

export function integrityText(proof) {
  const digest = proof.digest || {};
  return (INTEGRITY_TEXT[proof.status] || "Unknown integrity status.")
    .replace("{seq}", String(digest.seq)).replace("{time}", digest.created_at ? formatTime(digest.created_at) : "");
}

export function renderIntegrity(body, proof) {
  const target = body.querySelector(".al-integrity");
  if (!target) return;
  target.setAttribute("data-integrity", proof.status);
  const tone = proof.verified ? " al-integrity-ok" : proof.status === "not_covered" ? " al-muted" : " al-integrity-bad";
  target.className = "al-integrity" + tone;
  target.textContent = integrityText(proof);
}

export function integrityUnavailable(body, error) {
  const target = body.querySelector(".al-integrity");
  if (!target) return;
  target.setAttribute("data-integrity", "unavailable");
  target.textContent = error.status === 503
    ? "Integrity checks are not configured on this service."
    : "The integrity proof could not be loaded.";
}
