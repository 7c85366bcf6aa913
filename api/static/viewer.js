/*
 * Partner Audit Log viewer: the Audit Log page of the partner portal.
 *
 * Native ES modules, no build step, nothing loaded from elsewhere. It renders into
 * #audit-log (or any element with data-audit-log) and talks to the read API (SPEC section
 * 4) with "Authorization: Bearer <token>" (token.js says where the token comes from).
 * Enumerations, their labels and the limits come from the API (GET /api/v1/config), the
 * activity catalogue from GET /api/v1/activities: nothing of the contract is copied here.
 *
 * API data is only ever inserted with textContent / createTextNode, never as HTML.
 */
import { ApiError, createApi } from "./api.js";
import { integrityUnavailable, renderDetails, renderIntegrity } from "./details.js";
import { append, clear, field, fillSelect, h, option } from "./dom.js";
import { DEFAULT_RANGE, RANGES, activeFilterCount, buildParams, rangeLabel } from "./filters.js";
import { actorName, labelOf, numberFormat, objectName, stackedTime, statusBadge } from "./format.js";
import { askHostForToken, initialToken, listenForTokens, remember, tokenFromFragment } from "./token.js";

const SEARCH_DEBOUNCE_MS = 250;
const COLUMNS = ["Time", "Activity", "Category", "Actor", "Object", "Source", "Status", "Description"];

const root = document.getElementById("audit-log") || document.querySelector("[data-audit-log]");

const state = {
  token: null,
  config: null,             // GET /api/v1/config: enumerations with labels, limits
  catalogue: null,          // {categories: [{code, label, activities: [...]}]}
  params: null,             // URLSearchParams of the result set on screen
  items: [],
  nextCursor: null,
  total: null,
  listController: null,     // AbortController of the list request in flight
  detailController: null,
  searchTimer: null,
  selectedId: null,
  lastRow: null             // the row to give focus back to when details close
};
const ui = {};

// The API lives next to the page (".../api/v1/..." relative to it), so the viewer works
// behind a reverse proxy under any path prefix; a host page may point elsewhere.
const apiFetch = root && createApi(
  new URL(root.getAttribute("data-api-base") || "./", document.baseURI),
  () => state.token,
  () => askHostForToken(root, "audit-log:token-expired")
);

// ---------------------------------------------------------------------------------
// Layout (built once)

function build() {
  ui.search = h("input", {
    id: "al-q", type: "search", class: "al-search",
    autocomplete: "off", spellcheck: "false",
    placeholder: "Search by Log ID, actor, object or description",
    "aria-label": "Search audit logs"
  });
  ui.exportButton = h("button", { type: "button", class: "al-button", id: "al-export", text: "Export CSV" });
  ui.refreshButton = h("button", {
    type: "button", class: "al-button al-button-quiet", id: "al-refresh", text: "Refresh",
    "aria-label": "Refresh the list"
  });

  ui.range = h("select", { id: "al-range" }, RANGES.map((r) => option(r.value, r.label, r.value === DEFAULT_RANGE)));
  ui.activity = h("select", { id: "al-activity" }, option("", "All activities"));
  ui.filtersToggle = h("button", {
    type: "button", class: "al-button al-button-quiet", id: "al-filters-toggle",
    "aria-expanded": "false", "aria-controls": "al-filters"
  }, "More filters", ui.filterCount = h("span", { class: "al-count", hidden: true }));
  ui.clearFilters = h("button", { type: "button", class: "al-link", id: "al-clear", text: "Clear filters", hidden: true });

  ui.from = h("input", { id: "al-from", type: "datetime-local", step: 1 });
  ui.to = h("input", { id: "al-to", type: "datetime-local", step: 1 });
  ui.rangeError = h("p", { class: "al-field-error", id: "al-range-error", role: "alert", hidden: true });
  ui.custom = h("fieldset", { class: "al-custom", hidden: true },
    h("legend", { text: "Custom date range (your local time)" }),
    field("From", ui.from), field("To", ui.to), ui.rangeError);

  ui.category = h("select", { id: "al-category" }, option("", "All categories"));
  ui.actorId = h("input", { id: "al-actor-id", type: "text", autocomplete: "off", spellcheck: "false" });
  ui.organizationId = h("input", { id: "al-organization-id", type: "text", autocomplete: "off", spellcheck: "false" });
  ui.status = h("select", { id: "al-status-filter" }, option("", "Any status"));
  ui.source = h("select", { id: "al-source" }, option("", "Any source"));
  ui.actorType = h("select", { id: "al-actor-type" }, option("", "Any actor type"));
  ui.filters = h("form", { id: "al-filters", class: "al-filters", hidden: true, "aria-label": "More filters", novalidate: true },
    field("Category", ui.category),
    field("Actor ID", ui.actorId, "Several: separate with commas"),
    field("Organization ID", ui.organizationId, "Several: separate with commas"),
    field("Status", ui.status),
    field("Source", ui.source),
    field("Actor type", ui.actorType),
    h("div", { class: "al-filters-actions" },
      h("button", { type: "submit", class: "al-button", text: "Apply" }),
      h("button", { type: "reset", class: "al-button al-button-quiet", text: "Reset filters" })));

  ui.status_ = h("p", { class: "al-status", id: "al-status", role: "status", "aria-live": "polite" });
  ui.error = h("div", { class: "al-error", id: "al-error", role: "alert", hidden: true });
  ui.tbody = h("tbody");
  ui.table = h("table", { class: "al-table", id: "al-table", "aria-label": "Audit logs", "aria-describedby": "al-status" },
    h("thead", null, h("tr", null, COLUMNS.map((c) => h("th", { scope: "col", text: c })))),
    ui.tbody);
  ui.empty = h("div", { class: "al-empty", id: "al-empty", hidden: true });
  ui.moreButton = h("button", { type: "button", class: "al-button", id: "al-more", text: "Load more" });
  ui.more = h("div", { class: "al-more", hidden: true }, ui.moreButton);

  ui.detailsTitle = h("h2", { id: "al-details-title", tabindex: "-1", text: "Log details" });
  ui.detailsBody = h("div", { class: "al-details-body", id: "al-details-body" });
  ui.closeDetails = h("button", {
    type: "button", class: "al-icon-button", id: "al-details-close",
    "aria-label": "Close details", title: "Close (Esc)", text: "×"
  });
  ui.details = h("aside", { class: "al-details", id: "al-details", hidden: true, "aria-labelledby": "al-details-title" },
    h("div", { class: "al-details-header" }, ui.detailsTitle, ui.closeDetails), ui.detailsBody);

  clear(root);
  append(root, [
    h("header", { class: "al-header" },
      h("h1", { text: "Audit Log" }),
      h("p", { class: "al-subtitle", text: "Who did what in the Partner Portal, and when." })),
    h("div", { class: "al-toolbar", role: "search" }, ui.search, ui.refreshButton, ui.exportButton),
    h("div", { class: "al-filterbar" },
      field("Date range", ui.range), field("Activity", ui.activity),
      ui.filtersToggle, ui.clearFilters),
    ui.custom,
    ui.filters,
    h("div", { class: "al-layout" },
      h("section", { class: "al-results", "aria-label": "Results" },
        ui.status_, ui.error,
        h("div", { class: "al-table-wrap" }, ui.table),
        ui.empty, ui.more),
      ui.details)
  ]);
}

// ---------------------------------------------------------------------------------
// Filters

function filterValues() {
  return {
    q: ui.search.value, range: ui.range.value, from: ui.from.value, to: ui.to.value,
    category: ui.category.value, activity: ui.activity.value,
    actorId: ui.actorId.value, organizationId: ui.organizationId.value,
    status: ui.status.value, source: ui.source.value, actorType: ui.actorType.value
  };
}

/** The list parameters of the current filters, or null (and a message) if invalid. */
function currentParams() {
  ui.rangeError.hidden = true;
  ui.from.removeAttribute("aria-invalid");
  ui.to.removeAttribute("aria-invalid");
  const result = buildParams(filterValues(), Date.now());
  if (result.problem) {
    ui.rangeError.textContent = result.problem;
    ui.rangeError.hidden = false;
    ui[result.field].setAttribute("aria-invalid", "true");
    return null;
  }
  return result.params;
}

function updateFilterIndicators() {
  const count = activeFilterCount(filterValues());
  ui.filterCount.hidden = count.panel === 0;
  ui.filterCount.textContent = count.panel ? String(count.panel) : "";
  ui.filtersToggle.setAttribute("aria-label", count.panel ? "More filters, " + count.panel + " active" : "More filters");
  ui.clearFilters.hidden = count.all === 0;
  ui.custom.hidden = ui.range.value !== "custom";
}

function resetFilters() {
  ui.range.value = DEFAULT_RANGE;
  ui.from.value = "";
  ui.to.value = "";
  [ui.category, ui.activity, ui.actorId, ui.organizationId, ui.status, ui.source, ui.actorType]
    .forEach((el) => { el.value = ""; });
  fillActivities();
}

// ---------------------------------------------------------------------------------
// Configuration and activity catalogue (from the API)

async function loadConfig() {
  const config = await (await apiFetch("api/v1/config")).json();
  state.config = config;
  ui.search.setAttribute("maxlength", String(config.max_q_chars));
  fillSelect(ui.status, "Any status", config.statuses);
  fillSelect(ui.source, "Any source", config.sources);
  fillSelect(ui.actorType, "Any actor type", config.actor_types);
}

async function loadCatalogue() {
  try {
    const data = await (await apiFetch("api/v1/activities")).json();
    state.catalogue = data;
    fillSelect(ui.category, "All categories", data.categories);
    fillActivities();
  } catch (error) {
    if (error && error.name === "AbortError") return;
    // The list still works without the catalogue; only the two pickers are empty.
    ui.activity.setAttribute("title", "Activities could not be loaded");
  }
}

/** Activity choices, grouped by category and narrowed to the chosen category. */
function fillActivities() {
  const keep = ui.activity.value;
  let kept = false;
  clear(ui.activity);
  append(ui.activity, option("", "All activities"));
  const categories = (state.catalogue && state.catalogue.categories) || [];
  categories.forEach((c) => {
    if (ui.category.value && ui.category.value !== c.code) return;
    const group = h("optgroup", { label: c.label });
    (c.activities || []).forEach((a) => {
      if (a.code === keep) kept = true;
      append(group, option(a.code, a.label, a.code === keep));
    });
    append(ui.activity, group);
  });
  ui.activity.value = kept ? keep : "";
}

// ---------------------------------------------------------------------------------
// The list

function setStatus(text) {
  ui.status_.textContent = text;
}

function showError(error, retry) {
  clear(ui.error);
  append(ui.error, [
    h("p", { class: "al-error-message", text: error.message || "Something went wrong." }),
    error.details && error.details.length
      ? h("ul", { class: "al-error-details" }, error.details.map((d) => h("li", { text: d })))
      : null,
    retry && error.status !== 401 && error.status !== 403
      ? h("button", { type: "button", class: "al-button", id: "al-retry", text: "Try again", onclick: () => retry() })
      : null
  ]);
  ui.error.hidden = false;
}

function hideError() {
  ui.error.hidden = true;
  clear(ui.error);
}

/** Start a new result set from the current filters (typing, Enter, a filter change). */
function search() {
  window.clearTimeout(state.searchTimer);
  state.searchTimer = null;
  updateFilterIndicators();
  const params = currentParams();
  if (!params || !state.token || !state.config) return;
  if (state.listController) state.listController.abort();
  state.params = params;
  state.nextCursor = null;
  loadPage(false);
}

function scheduleSearch() {
  window.clearTimeout(state.searchTimer);
  state.searchTimer = window.setTimeout(search, SEARCH_DEBOUNCE_MS);
}

async function loadPage(append_) {
  const controller = new AbortController();
  if (state.listController) state.listController.abort();
  state.listController = controller;
  const params = new URLSearchParams(state.params);
  params.set("limit", String(state.config.page_size));
  if (append_ && state.nextCursor) params.set("cursor", state.nextCursor);

  hideError();
  root.setAttribute("data-state", "loading");
  ui.table.setAttribute("aria-busy", "true");
  if (append_) {
    ui.moreButton.disabled = true;
    ui.moreButton.textContent = "Loading…";
  } else {
    // Old rows stay, dimmed, until the answer replaces them: no flicker while typing.
    ui.tbody.classList.add("al-stale");
    setStatus("Loading audit logs…");
  }
  try {
    const data = await (await apiFetch("api/v1/audit-logs", params, { signal: controller.signal })).json();
    if (state.listController !== controller) return; // a newer request superseded it
    state.items = append_ ? state.items.concat(data.items || []) : (data.items || []);
    state.nextCursor = data.next_cursor || null;
    state.total = data.total || null;
    renderRows(data.items || [], append_);
    finishList();
  } catch (error) {
    if ((error && error.name === "AbortError") || state.listController !== controller) return;
    if (!append_) {
      state.items = [];
      state.nextCursor = null;
      clear(ui.tbody);
    }
    showError(error, () => loadPage(append_));
    finishList(error);
  } finally {
    if (state.listController === controller) state.listController = null;
  }
}

function totalText() {
  const shown = state.items.length;
  if (!state.total) return numberFormat.format(shown) + " logs";
  const total = state.total.relation === "gte"
    ? "more than " + numberFormat.format(state.total.value)
    : numberFormat.format(state.total.value);
  if (state.total.relation !== "gte" && state.total.value === shown) {
    return shown === 1 ? "1 log" : numberFormat.format(shown) + " logs"; // all of them
  }
  return "Showing " + numberFormat.format(shown) + " of " + total + " logs";
}

function finishList(error) {
  ui.tbody.classList.remove("al-stale");
  ui.table.setAttribute("aria-busy", "false");
  ui.moreButton.disabled = false;
  ui.moreButton.textContent = "Load more";
  ui.more.hidden = !state.nextCursor;
  clear(ui.empty);
  if (error) {
    root.setAttribute("data-state", "error");
    ui.empty.hidden = true;
    setStatus("");
    return;
  }
  if (state.items.length === 0) {
    root.setAttribute("data-state", "empty");
    const filtered = ui.search.value.trim() !== "" || activeFilterCount(filterValues()).all > 0;
    append(ui.empty, [
      h("p", { class: "al-empty-title", text: filtered
        ? "No audit logs match your search and filters."
        : "No activity was recorded in the last 24 hours." }),
      h("p", { text: filtered
        ? "Try fewer words, a longer date range, or clear the filters."
        : "Choose a longer date range to see older activity." }),
      filtered ? h("button", { type: "button", class: "al-button", text: "Clear search and filters",
        onclick: () => { ui.search.value = ""; resetFilters(); search(); ui.search.focus(); } }) : null
    ]);
    ui.empty.hidden = false;
    setStatus("No logs found in " + rangeLabel(ui.range.value) + ".");
  } else {
    root.setAttribute("data-state", "ready");
    ui.empty.hidden = true;
    setStatus(totalText() + " — " + rangeLabel(ui.range.value) + ".");
  }
}

function cell(content, className) {
  return h("td", { class: className || null }, content);
}

function renderRows(items, append_) {
  if (!append_) clear(ui.tbody);
  const config = state.config;
  items.forEach((log) => {
    const actor = log.actor || {};
    const obj = log.object;
    const row = h("tr", {
      class: "al-row",
      tabindex: "-1",
      "data-id": log.id,
      "aria-current": log.id === state.selectedId ? "true" : null
    },
      cell(stackedTime(log.timestamp), "al-col-time"),
      cell((log.activity && log.activity.label) || (log.activity && log.activity.code) || "", "al-col-activity"),
      cell((log.category && log.category.label) || "", "al-col-category"),
      cell([
        h("span", { class: "al-primary", text: actorName(actor) }),
        h("span", { class: "al-secondary", text: [actor.name ? actor.email : null, labelOf(config.actor_types, actor.type)]
          .filter(Boolean).join(" · ") })
      ], "al-col-actor"),
      cell(obj ? [
        h("span", { class: "al-primary", text: objectName(obj) }),
        obj.type ? h("span", { class: "al-secondary", text: obj.type }) : null
      ] : h("span", { class: "al-muted", text: "—" }), "al-col-object"),
      cell(labelOf(config.sources, log.source), "al-col-source"),
      cell(statusBadge(config.statuses, log.status, log.status_reason), "al-col-status"),
      cell(log.description || "", "al-col-description")
    );
    row.addEventListener("click", () => openDetails(log, row));
    ui.tbody.appendChild(row);
  });
  updateRovingTabIndex();
}

function rows() {
  return Array.from(ui.tbody.querySelectorAll("tr.al-row"));
}

/** One row is in the tab order (the selected one, else the first); arrows move. */
function updateRovingTabIndex(focusRow) {
  const all = rows();
  const target = focusRow || all.find((r) => r.getAttribute("data-id") === state.selectedId) ||
    all.find((r) => r.tabIndex === 0) || all[0];
  all.forEach((r) => { r.tabIndex = r === target ? 0 : -1; });
  return target;
}

function onTableKey(event) {
  const row = event.target.closest && event.target.closest("tr.al-row");
  if (!row) return;
  const all = rows();
  const index = all.indexOf(row);
  let next = null;
  if (event.key === "ArrowDown") next = all[Math.min(index + 1, all.length - 1)];
  else if (event.key === "ArrowUp") next = all[Math.max(index - 1, 0)];
  else if (event.key === "Home") next = all[0];
  else if (event.key === "End") next = all[all.length - 1];
  else if (event.key === "Enter" || event.key === " ") {
    event.preventDefault();
    const log = state.items.find((l) => l.id === row.getAttribute("data-id"));
    if (log) openDetails(log, row);
    return;
  } else {
    return;
  }
  event.preventDefault();
  if (next) {
    updateRovingTabIndex(next);
    next.focus();
  }
}

/** "Load more", then move focus to the first new row so keyboard users continue there. */
function loadPageThenFocus(before) {
  const focusedMore = document.activeElement === ui.moreButton;
  loadPage(true);
  if (!focusedMore) return;
  const observer = new MutationObserver(() => {
    const all = rows();
    if (all.length > before) {
      observer.disconnect();
      updateRovingTabIndex(all[before]);
      all[before].focus();
    }
  });
  observer.observe(ui.tbody, { childList: true });
  window.setTimeout(() => observer.disconnect(), 30000);
}

// ---------------------------------------------------------------------------------
// Details panel

async function openDetails(log, row) {
  state.selectedId = log.id;
  state.lastRow = row;
  rows().forEach((r) => {
    if (r === row) r.setAttribute("aria-current", "true");
    else r.removeAttribute("aria-current");
  });
  updateRovingTabIndex(row);
  root.classList.add("al-has-details");
  ui.details.hidden = false;
  ui.details.setAttribute("aria-busy", "true");
  ui.detailsTitle.textContent = (log.activity && log.activity.label) || "Log details";
  clear(ui.detailsBody);
  append(ui.detailsBody, h("p", { class: "al-loading", role: "status", text: "Loading details…" }));
  ui.detailsTitle.focus();

  if (state.detailController) state.detailController.abort();
  const controller = new AbortController();
  state.detailController = controller;
  const current = () => state.detailController === controller;
  try {
    const path = "api/v1/audit-logs/" + encodeURIComponent(log.id);
    const detail = await (await apiFetch(path, null, { signal: controller.signal })).json();
    if (!current()) return;
    ui.detailsTitle.textContent = (detail.activity && detail.activity.label) || "Log details";
    renderDetails(ui.detailsBody, detail, state.config);
    ui.details.setAttribute("aria-busy", "false");
  } catch (error) {
    if ((error && error.name === "AbortError") || !current()) return;
    ui.details.setAttribute("aria-busy", "false");
    clear(ui.detailsBody);
    append(ui.detailsBody, h("div", { class: "al-error", role: "alert" },
      h("p", { text: error.message || "The details could not be loaded." }),
      h("button", { type: "button", class: "al-button", text: "Try again", onclick: () => openDetails(log, row) })));
    return;
  }
  loadIntegrity(log.id, controller, current);
}

async function loadIntegrity(logId, controller, current) {
  try {
    const path = "api/v1/integrity/logs/" + encodeURIComponent(logId);
    const proof = await (await apiFetch(path, null, { signal: controller.signal })).json();
    if (current()) renderIntegrity(ui.detailsBody, proof);
  } catch (error) {
    if ((error && error.name === "AbortError") || !current()) return;
    integrityUnavailable(ui.detailsBody, error);
  }
}

function closeDetails() {
  if (ui.details.hidden) return;
  if (state.detailController) state.detailController.abort();
  state.detailController = null;
  ui.details.hidden = true;
  root.classList.remove("al-has-details");
  const id = state.selectedId;
  state.selectedId = null;
  // Back to where the user was: that row, or the same log redrawn by a newer search.
  const row = state.lastRow && state.lastRow.isConnected ? state.lastRow
    : rows().find((r) => r.getAttribute("data-id") === id);
  rows().forEach((r) => r.removeAttribute("aria-current"));
  if (row) {
    updateRovingTabIndex(row);
    row.focus();
  }
}

// ---------------------------------------------------------------------------------
// Export

function filenameFrom(disposition) {
  const match = /filename="?([^";]+)"?/i.exec(disposition || "");
  return match ? match[1] : null;
}

async function exportCsv() {
  const params = currentParams();
  if (!params || !state.token) return;
  params.set("format", "csv");
  ui.exportButton.disabled = true;
  ui.exportButton.textContent = "Exporting…";
  ui.exportButton.setAttribute("aria-busy", "true");
  hideError();
  try {
    const response = await apiFetch("api/v1/audit-logs/export", params, { accept: "text/csv" });
    const name = filenameFrom(response.headers.get("Content-Disposition")) ||
      "audit-logs-" + new Date().toISOString().replace(/[:.]/g, "") + ".csv";
    const blob = await response.blob();
    // Fetched with the Authorization header (a plain link could not send it), then handed
    // to the browser as a download.
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: name, hidden: true });
    document.body.appendChild(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 30000);
    setStatus("Exported " + name + ". " + totalText() + ".");
  } catch (error) {
    showError(error.status === 503 ? error : new ApiError(error.status, "The export failed: " + error.message, error.details),
      exportCsv);
  } finally {
    ui.exportButton.disabled = false;
    ui.exportButton.textContent = "Export CSV";
    ui.exportButton.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------------------------
// Token

async function setToken(token) {
  if (typeof token !== "string" || !token) return;
  const first = !state.token;
  state.token = token;
  root.removeAttribute("data-token"); // not left in the DOM for other scripts to find
  if (first || !state.catalogue) loadCatalogue();
  if (!state.config) {
    try {
      await loadConfig();
    } catch (error) {
      if (!(error && error.name === "AbortError")) showError(error, () => setToken(state.token));
      return;
    }
  }
  search();
}

function showNoToken() {
  root.setAttribute("data-state", "no-token");
  setStatus("");
  clear(ui.empty);
  append(ui.empty, [
    h("p", { class: "al-empty-title", text: "Sign in to see the audit log." }),
    h("p", { text: "This page needs an access token. In development, open the Viewer link that `make run` prints; in the partner portal, the portal provides it." })
  ]);
  ui.empty.hidden = false;
  askHostForToken(root, "audit-log:token-request");
}

// ---------------------------------------------------------------------------------
// Events

function wire() {
  ui.search.addEventListener("input", scheduleSearch);
  ui.search.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      search();
    }
  });
  ui.range.addEventListener("change", () => {
    updateFilterIndicators();
    if (ui.range.value === "custom") {
      ui.from.focus();
      if (!ui.from.value && !ui.to.value) return; // wait for a date before searching
    }
    search();
  });
  ui.from.addEventListener("change", search);
  ui.to.addEventListener("change", search);
  ui.activity.addEventListener("change", search);
  ui.category.addEventListener("change", () => { fillActivities(); search(); });
  [ui.status, ui.source, ui.actorType].forEach((el) => el.addEventListener("change", search));
  [ui.actorId, ui.organizationId].forEach((el) => el.addEventListener("input", scheduleSearch));
  ui.filters.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  ui.filters.addEventListener("reset", () => {
    // After the browser has reset the form controls.
    window.setTimeout(() => { fillActivities(); search(); }, 0);
  });
  ui.filtersToggle.addEventListener("click", () => {
    const open = ui.filters.hidden;
    ui.filters.hidden = !open;
    ui.filtersToggle.setAttribute("aria-expanded", String(open));
    if (open) ui.category.focus();
  });
  ui.clearFilters.addEventListener("click", () => { resetFilters(); search(); ui.range.focus(); });
  ui.refreshButton.addEventListener("click", search);
  ui.exportButton.addEventListener("click", exportCsv);
  ui.moreButton.addEventListener("click", () => loadPageThenFocus(state.items.length));
  ui.closeDetails.addEventListener("click", closeDetails);
  ui.tbody.addEventListener("keydown", onTableKey);
  ui.tbody.addEventListener("focusin", (event) => {
    const row = event.target.closest && event.target.closest("tr.al-row");
    if (row) updateRovingTabIndex(row);
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    if (!ui.details.hidden) {
      event.preventDefault();
      closeDetails();
    } else if (!ui.filters.hidden && ui.filters.contains(document.activeElement)) {
      ui.filters.hidden = true;
      ui.filtersToggle.setAttribute("aria-expanded", "false");
      ui.filtersToggle.focus();
    }
  });
  window.addEventListener("hashchange", () => {
    // A new "#token=..." link pasted into the same tab (development).
    const token = tokenFromFragment();
    if (token) {
      remember(token);
      setToken(token);
    }
  });
  listenForTokens(root, setToken);
}

// ---------------------------------------------------------------------------------

if (root) {
  build();
  wire();
  updateFilterIndicators();
  window.AuditLogViewer = { setToken, refresh: search };
  const token = initialToken(root);
  if (token) setToken(token);
  else showNoToken();
}
