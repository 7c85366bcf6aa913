/*
 * Partner Audit Log viewer: the Audit Log page of the partner portal.
 *
 * Vanilla JavaScript, no build step, nothing loaded from elsewhere. It renders into
 * #audit-log (or any element with data-audit-log) and talks to the read API
 * (SPEC section 4) with "Authorization: Bearer <token>".
 *
 * Where the token comes from, first match wins (docs/viewer.md):
 *   1. the URL fragment "#token=..." (what `make run` prints; removed from the address bar);
 *   2. window.AUDIT_LOG_TOKEN, or data-token on the root element (set by the host page);
 *   3. this tab's sessionStorage (so a reload keeps working in development);
 *   4. a postMessage {type: "audit-log:token", token} from the embedding window, when its
 *      origin is one the API allows (data-embed-origins, from AUDIT_VIEWER_EMBED_ORIGINS),
 *      or window.AuditLogViewer.setToken(token) from a host page that loads this script.
 *
 * API data is only ever inserted with textContent / createTextNode, never as HTML.
 */
(function () {
  "use strict";

  var root = document.getElementById("audit-log") || document.querySelector("[data-audit-log]");
  if (!root) {
    return;
  }

  var PAGE_SIZE = 50;
  var SEARCH_DEBOUNCE_MS = 250;
  var MAX_Q_CHARS = 256;
  var STORAGE_KEY = "audit-log-token";
  var HOUR_MS = 3600 * 1000;
  var RANGES = [
    { value: "24h", label: "Last 24 hours", ms: 24 * HOUR_MS },
    { value: "7d", label: "Last 7 days", ms: 7 * 24 * HOUR_MS },
    { value: "30d", label: "Last 30 days", ms: 30 * 24 * HOUR_MS },
    { value: "90d", label: "Last 90 days", ms: 90 * 24 * HOUR_MS },
    { value: "custom", label: "Custom range" }
  ];
  var STATUSES = [["success", "Success"], ["failure", "Failed"]];
  var SOURCES = [["ui", "UI"], ["api", "API"], ["system", "System"]];
  var ACTOR_TYPES = [
    ["partner_user", "Partner user"],
    ["organization_user", "Organization user"],
    ["internal_support", "Internal support"],
    ["system", "System"]
  ];
  var ROLES = { owner: "Owner", super_admin: "Super Admin", admin: "Admin", support: "Support" };
  var COLUMNS = ["Time", "Activity", "Category", "Actor", "Object", "Source", "Status", "Description"];

  // The API lives next to the page (".../api/v1/..." relative to it), so the viewer works
  // behind a reverse proxy under any path prefix; a host page may point elsewhere.
  var apiBase = new URL(root.getAttribute("data-api-base") || "./", document.baseURI);

  var dateTimeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", second: "2-digit"
  });
  var dayFormat = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
  var clockFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  var numberFormat = new Intl.NumberFormat();

  var state = {
    token: null,
    catalogue: null,          // {categories: [{code, label, activities: [...]}]}
    params: null,             // URLSearchParams of the result set on screen
    items: [],
    nextCursor: null,
    total: null,
    listController: null,     // AbortController of the list request in flight
    detailController: null,
    searchTimer: null,
    selectedId: null,
    lastRow: null,            // the row to give focus back to when details close
    retry: null
  };

  // ---------------------------------------------------------------------------------
  // DOM helpers

  /** h("tag", {attr: value, class: "...", text: "...", onclick: fn}, child, ...) */
  function h(tag, attrs) {
    var el = document.createElement(tag);
    var key;
    for (key in attrs || {}) {
      if (!Object.prototype.hasOwnProperty.call(attrs, key)) continue;
      var value = attrs[key];
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") el.className = value;
      else if (key === "text") el.textContent = value;
      else if (key.slice(0, 2) === "on") el.addEventListener(key.slice(2), value);
      else if (value === true) el.setAttribute(key, "");
      else el.setAttribute(key, String(value));
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(parent, child) {
    if (child === null || child === undefined || child === false) return;
    if (Array.isArray(child)) {
      child.forEach(function (c) { append(parent, c); });
    } else if (typeof child === "string" || typeof child === "number") {
      parent.appendChild(document.createTextNode(String(child)));
    } else {
      parent.appendChild(child);
    }
  }

  function clear(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
  }

  function option(value, label, selected) {
    return h("option", { value: value, selected: !!selected, text: label });
  }

  function field(labelText, control, hint) {
    var hintEl = hint ? h("span", { class: "al-hint", id: control.id + "-hint", text: hint }) : null;
    if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
    return h("div", { class: "al-field" }, h("label", { for: control.id, text: labelText }), control, hintEl);
  }

  // ---------------------------------------------------------------------------------
  // Formatting

  function formatTime(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    return isNaN(date.getTime()) ? iso : dateTimeFormat.format(date);
  }

  function timeElement(iso) {
    return h("time", { datetime: iso, title: iso, text: formatTime(iso) });
  }

  /** Date over time, so the column stays narrow enough to leave room for the details. */
  function stackedTime(iso) {
    var date = new Date(iso);
    if (!iso || isNaN(date.getTime())) return timeElement(iso);
    return h("time", { datetime: iso, title: iso },
      h("span", { class: "al-primary", text: dayFormat.format(date) }),
      h("span", { class: "al-secondary", text: clockFormat.format(date) }));
  }

  function labelOf(pairs, value) {
    for (var i = 0; i < pairs.length; i++) if (pairs[i][0] === value) return pairs[i][1];
    return value || "";
  }

  function actorName(actor) {
    if (!actor) return "";
    return actor.name || actor.email || actor.id || "";
  }

  function objectName(obj) {
    if (!obj) return "";
    return obj.name || obj.id || obj.type || "";
  }

  function scalarText(value) {
    if (value === null || value === undefined) return "—";
    if (typeof value === "string") return value;
    return JSON.stringify(value);
  }

  function statusBadge(status, reason) {
    var failed = status === "failure";
    return h("span", { class: "al-outcome" },
      h("span", { class: "al-badge " + (failed ? "al-badge-failure" : "al-badge-success"), text: failed ? "Failed" : "Success" }),
      failed && reason ? h("span", { class: "al-reason", text: " " + reason }) : null);
  }

  // ---------------------------------------------------------------------------------
  // Layout (built once)

  var ui = {};

  function build() {
    ui.search = h("input", {
      id: "al-q", type: "search", class: "al-search", maxlength: MAX_Q_CHARS,
      autocomplete: "off", spellcheck: "false",
      placeholder: "Search by Log ID, actor, object or description",
      "aria-label": "Search audit logs"
    });
    ui.exportButton = h("button", { type: "button", class: "al-button", id: "al-export", text: "Export CSV" });
    ui.refreshButton = h("button", {
      type: "button", class: "al-button al-button-quiet", id: "al-refresh", text: "Refresh",
      "aria-label": "Refresh the list"
    });

    ui.range = h("select", { id: "al-range" },
      RANGES.map(function (r) { return option(r.value, r.label, r.value === "24h"); }));
    ui.activity = h("select", { id: "al-activity" }, option("", "All activities"));
    ui.filtersToggle = h("button", {
      type: "button", class: "al-button al-button-quiet", id: "al-filters-toggle",
      "aria-expanded": "false", "aria-controls": "al-filters"
    }, "More filters", ui.filterCount = h("span", { class: "al-count", hidden: true }));
    ui.clearFilters = h("button", {
      type: "button", class: "al-link", id: "al-clear", text: "Clear filters", hidden: true
    });

    ui.from = h("input", { id: "al-from", type: "datetime-local", step: 1 });
    ui.to = h("input", { id: "al-to", type: "datetime-local", step: 1 });
    ui.rangeError = h("p", { class: "al-field-error", id: "al-range-error", role: "alert", hidden: true });
    ui.custom = h("fieldset", { class: "al-custom", hidden: true },
      h("legend", { text: "Custom date range (your local time)" }),
      field("From", ui.from), field("To", ui.to), ui.rangeError);

    ui.category = h("select", { id: "al-category" }, option("", "All categories"));
    ui.actorId = h("input", { id: "al-actor-id", type: "text", autocomplete: "off", spellcheck: "false" });
    ui.organizationId = h("input", { id: "al-organization-id", type: "text", autocomplete: "off", spellcheck: "false" });
    ui.status = h("select", { id: "al-status-filter" }, option("", "Any status"),
      STATUSES.map(function (s) { return option(s[0], s[1]); }));
    ui.source = h("select", { id: "al-source" }, option("", "Any source"),
      SOURCES.map(function (s) { return option(s[0], s[1]); }));
    ui.actorType = h("select", { id: "al-actor-type" }, option("", "Any actor type"),
      ACTOR_TYPES.map(function (s) { return option(s[0], s[1]); }));
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
      h("thead", null, h("tr", null, COLUMNS.map(function (c) { return h("th", { scope: "col", text: c }); }))),
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
    ui.details = h("aside", {
      class: "al-details", id: "al-details", hidden: true, "aria-labelledby": "al-details-title"
    }, h("div", { class: "al-details-header" }, ui.detailsTitle, ui.closeDetails), ui.detailsBody);

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
  // Filters -> query parameters

  function ids(text) {
    return text.split(",").map(function (s) { return s.trim(); }).filter(Boolean);
  }

  /** Local "YYYY-MM-DDTHH:MM[:SS]" (datetime-local) -> RFC 3339 UTC, or "" / null if bad. */
  function localToIso(value) {
    if (!value) return "";
    var date = new Date(value);
    return isNaN(date.getTime()) ? null : date.toISOString();
  }

  /** The list parameters of the current filters, or null (and a message) if invalid. */
  function currentParams() {
    var params = new URLSearchParams();
    var q = ui.search.value.trim();
    if (q) params.set("q", q);
    var range = ui.range.value;
    ui.rangeError.hidden = true;
    ui.from.removeAttribute("aria-invalid");
    ui.to.removeAttribute("aria-invalid");
    if (range === "custom") {
      var from = localToIso(ui.from.value);
      var to = localToIso(ui.to.value);
      var problem = null;
      if (from === null) problem = "The start of the range is not a valid date.";
      else if (to === null) problem = "The end of the range is not a valid date.";
      else if (from && to && from > to) problem = "The start of the range must be before its end.";
      if (problem) {
        ui.rangeError.textContent = problem;
        ui.rangeError.hidden = false;
        (from === null || (from && to && from > to) ? ui.from : ui.to).setAttribute("aria-invalid", "true");
        return null;
      }
      if (from) params.set("from", from);
      if (to) params.set("to", to);
    } else {
      // An explicit start, fixed now: "Load more" and the export then cover the very
      // window the first page was drawn from (the cursor is bound to these parameters).
      var preset = RANGES.filter(function (r) { return r.value === range; })[0] || RANGES[0];
      params.set("from", new Date(Date.now() - preset.ms).toISOString());
    }
    if (ui.category.value) params.append("category", ui.category.value);
    if (ui.activity.value) params.append("activity", ui.activity.value);
    ids(ui.actorId.value).forEach(function (v) { params.append("actor_id", v); });
    ids(ui.organizationId.value).forEach(function (v) { params.append("organization_id", v); });
    if (ui.status.value) params.set("status", ui.status.value);
    if (ui.source.value) params.set("source", ui.source.value);
    if (ui.actorType.value) params.set("actor_type", ui.actorType.value);
    return params;
  }

  /** How many filters beyond the defaults are set (search text not counted). */
  function activeFilterCount() {
    var panel = [ui.category, ui.actorId, ui.organizationId, ui.status, ui.source, ui.actorType]
      .filter(function (el) { return el.value.trim() !== ""; }).length;
    return {
      panel: panel,
      all: panel + (ui.activity.value ? 1 : 0) + (ui.range.value !== "24h" ? 1 : 0)
    };
  }

  function updateFilterIndicators() {
    var count = activeFilterCount();
    ui.filterCount.hidden = count.panel === 0;
    ui.filterCount.textContent = count.panel ? String(count.panel) : "";
    ui.filtersToggle.setAttribute("aria-label",
      count.panel ? "More filters, " + count.panel + " active" : "More filters");
    ui.clearFilters.hidden = count.all === 0;
    ui.custom.hidden = ui.range.value !== "custom";
  }

  function resetFilters() {
    ui.range.value = "24h";
    ui.from.value = "";
    ui.to.value = "";
    [ui.category, ui.activity, ui.actorId, ui.organizationId, ui.status, ui.source, ui.actorType]
      .forEach(function (el) { el.value = ""; });
    fillActivities();
  }

  // ---------------------------------------------------------------------------------
  // API

  function ApiError(status, message, details) {
    this.name = "ApiError";
    this.status = status;
    this.message = message;
    this.details = details || [];
  }
  ApiError.prototype = Object.create(Error.prototype);

  /** "param: message" lines from flask-smorest's {errors: {location: {param: ...}}}. */
  function errorDetails(errors) {
    var lines = [];
    function messages(value) {
      if (typeof value === "string") return [value];
      if (Array.isArray(value)) return value.reduce(function (all, v) { return all.concat(messages(v)); }, []);
      if (value && typeof value === "object") {
        return Object.keys(value).reduce(function (all, k) { return all.concat(messages(value[k])); }, []);
      }
      return [];
    }
    Object.keys(errors || {}).forEach(function (location) {
      var byParam = errors[location];
      if (!byParam || typeof byParam !== "object" || Array.isArray(byParam)) return;
      Object.keys(byParam).forEach(function (param) {
        lines.push(param + ": " + messages(byParam[param]).join(" "));
      });
    });
    return lines;
  }

  function toApiError(response) {
    return response.json().catch(function () { return null; }).then(function (body) {
      var status = response.status;
      var serverMessage = body && typeof body.message === "string" ? body.message : "";
      var message;
      if (status === 401) message = "Your session has expired or the access token is not valid. Sign in again to see the audit log.";
      else if (status === 403) message = "Your role does not give access to the audit log.";
      else if (status === 404) message = "This log does not exist, or it is outside the organizations you manage.";
      else if (status === 400 || status === 422) message = "Some search criteria are not valid.";
      else if (status === 503) message = serverMessage || "The audit log is temporarily unavailable. Try again shortly.";
      else message = "The audit-log service answered with an error (" + status + ").";
      return new ApiError(status, message, body && body.errors ? errorDetails(body.errors) : []);
    });
  }

  function apiFetch(path, params, options) {
    options = options || {};
    var url = new URL(path, apiBase);
    if (params) url.search = params.toString();
    return fetch(url.toString(), {
      headers: { Authorization: "Bearer " + state.token, Accept: options.accept || "application/json" },
      signal: options.signal,
      credentials: "omit",
      cache: "no-store"
    }).then(function (response) {
      if (!response.ok) {
        return toApiError(response).then(function (error) {
          if (error.status === 401) askHostForToken("audit-log:token-expired");
          throw error;
        });
      }
      return response;
    }, function (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(0, "Cannot reach the audit-log service. Check your connection and try again.");
    });
  }

  // ---------------------------------------------------------------------------------
  // Activity catalogue

  function loadCatalogue() {
    return apiFetch("api/v1/activities").then(function (r) { return r.json(); }).then(function (data) {
      state.catalogue = data;
      clear(ui.category);
      append(ui.category, option("", "All categories"));
      (data.categories || []).forEach(function (c) { append(ui.category, option(c.code, c.label)); });
      fillActivities();
    }, function (error) {
      if (error && error.name === "AbortError") return;
      // The list still works without the catalogue; only the two pickers are empty.
      ui.activity.setAttribute("title", "Activities could not be loaded");
    });
  }

  /** Activity choices, grouped by category and narrowed to the chosen category. */
  function fillActivities() {
    var keep = ui.activity.value;
    var kept = false;
    clear(ui.activity);
    append(ui.activity, option("", "All activities"));
    var categories = (state.catalogue && state.catalogue.categories) || [];
    categories.forEach(function (c) {
      if (ui.category.value && ui.category.value !== c.code) return;
      var group = h("optgroup", { label: c.label });
      (c.activities || []).forEach(function (a) {
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
    state.retry = retry || null;
    append(ui.error, [
      h("p", { class: "al-error-message", text: error.message || "Something went wrong." }),
      error.details && error.details.length
        ? h("ul", { class: "al-error-details" }, error.details.map(function (d) { return h("li", { text: d }); }))
        : null,
      retry && error.status !== 401 && error.status !== 403
        ? h("button", { type: "button", class: "al-button", id: "al-retry", text: "Try again", onclick: function () { retry(); } })
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
    var params = currentParams();
    if (!params) return;
    if (!state.token) return;
    if (state.listController) state.listController.abort();
    state.params = params;
    state.nextCursor = null;
    loadPage(false);
  }

  function scheduleSearch() {
    window.clearTimeout(state.searchTimer);
    state.searchTimer = window.setTimeout(search, SEARCH_DEBOUNCE_MS);
  }

  function loadPage(append_) {
    var controller = new AbortController();
    if (state.listController) state.listController.abort();
    state.listController = controller;
    var params = new URLSearchParams(state.params);
    params.set("limit", String(PAGE_SIZE));
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

    apiFetch("api/v1/audit-logs", params, { signal: controller.signal })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (state.listController !== controller) return; // a newer request superseded it
        state.items = append_ ? state.items.concat(data.items || []) : (data.items || []);
        state.nextCursor = data.next_cursor || null;
        state.total = data.total || null;
        renderRows(data.items || [], append_);
        finishList();
      })
      .catch(function (error) {
        if (error && error.name === "AbortError") return;
        if (state.listController !== controller) return;
        if (!append_) {
          state.items = [];
          state.nextCursor = null;
          clear(ui.tbody);
        }
        showError(error, function () { loadPage(append_); });
        finishList(error);
      })
      .then(function () {
        if (state.listController === controller) state.listController = null;
      });
  }

  function totalText() {
    var shown = state.items.length;
    if (!state.total) return numberFormat.format(shown) + " logs";
    var total = state.total.relation === "gte"
      ? "more than " + numberFormat.format(state.total.value)
      : numberFormat.format(state.total.value);
    if (state.total.relation !== "gte" && state.total.value === shown) {
      return shown === 1 ? "1 log" : numberFormat.format(shown) + " logs"; // all of them
    }
    return "Showing " + numberFormat.format(shown) + " of " + total + " logs";
  }

  function rangeText() {
    var range = ui.range.value;
    if (range !== "custom") {
      return RANGES.filter(function (r) { return r.value === range; })[0].label.toLowerCase();
    }
    return "the chosen date range";
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
      var filtered = ui.search.value.trim() !== "" || activeFilterCount().all > 0;
      append(ui.empty, [
        h("p", { class: "al-empty-title", text: filtered
          ? "No audit logs match your search and filters."
          : "No activity was recorded in the last 24 hours." }),
        h("p", { text: filtered
          ? "Try fewer words, a longer date range, or clear the filters."
          : "Choose a longer date range to see older activity." }),
        filtered ? h("button", { type: "button", class: "al-button", text: "Clear search and filters",
          onclick: function () { ui.search.value = ""; resetFilters(); search(); ui.search.focus(); } }) : null
      ]);
      ui.empty.hidden = false;
      setStatus("No logs found in " + rangeText() + ".");
    } else {
      root.setAttribute("data-state", "ready");
      ui.empty.hidden = true;
      setStatus(totalText() + " — " + rangeText() + ".");
    }
  }

  function cell(content, className) {
    return h("td", { class: className || null }, content);
  }

  function renderRows(items, append_) {
    if (!append_) clear(ui.tbody);
    var first = null;
    items.forEach(function (log) {
      var actor = log.actor || {};
      var obj = log.object;
      var row = h("tr", {
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
          h("span", { class: "al-secondary", text: [actor.name ? actor.email : null, labelOf(ACTOR_TYPES, actor.type)]
            .filter(Boolean).join(" · ") })
        ], "al-col-actor"),
        cell(obj ? [
          h("span", { class: "al-primary", text: objectName(obj) }),
          obj.type ? h("span", { class: "al-secondary", text: obj.type }) : null
        ] : h("span", { class: "al-muted", text: "—" }), "al-col-object"),
        cell(labelOf(SOURCES, log.source), "al-col-source"),
        cell(statusBadge(log.status, log.status_reason), "al-col-status"),
        cell(log.description || "", "al-col-description")
      );
      row.addEventListener("click", function () { openDetails(log, row); });
      ui.tbody.appendChild(row);
      if (!first) first = row;
    });
    updateRovingTabIndex();
    return first;
  }

  function rows() {
    return Array.prototype.slice.call(ui.tbody.querySelectorAll("tr.al-row"));
  }

  /** One row is in the tab order (the selected one, else the first); arrows move. */
  function updateRovingTabIndex(focusRow) {
    var all = rows();
    var target = focusRow || all.filter(function (r) { return r.getAttribute("data-id") === state.selectedId; })[0] ||
      all.filter(function (r) { return r.tabIndex === 0; })[0] || all[0];
    all.forEach(function (r) { r.tabIndex = r === target ? 0 : -1; });
    return target;
  }

  function onTableKey(event) {
    var row = event.target.closest && event.target.closest("tr.al-row");
    if (!row) return;
    var all = rows();
    var index = all.indexOf(row);
    var next = null;
    if (event.key === "ArrowDown") next = all[Math.min(index + 1, all.length - 1)];
    else if (event.key === "ArrowUp") next = all[Math.max(index - 1, 0)];
    else if (event.key === "Home") next = all[0];
    else if (event.key === "End") next = all[all.length - 1];
    else if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      var log = state.items.filter(function (l) { return l.id === row.getAttribute("data-id"); })[0];
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

  // ---------------------------------------------------------------------------------
  // Details panel

  function dl(pairs) {
    var list = h("dl", { class: "al-dl" });
    pairs.forEach(function (pair) {
      var value = pair[1];
      var empty = value === null || value === undefined || value === "";
      append(list, [
        h("dt", { text: pair[0] }),
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
      h("thead", null, h("tr", null, headers.map(function (x) { return h("th", { scope: "col", text: x }); }))),
      h("tbody", null, rowsData.map(function (r) {
        return h("tr", null, r.map(function (v, i) {
          return i === 0 ? h("th", { scope: "row", text: v }) : h("td", { class: "al-value", text: v });
        }));
      })));
  }

  function renderDetails(log) {
    var actor = log.actor || {};
    var org = log.organization || {};
    var obj = log.object || {};
    var d = log.details || {};
    var changes = (d.changes || []).map(function (c) { return [c.field, scalarText(c.old), scalarText(c["new"])]; });
    var metadata = Object.keys(d.metadata || {}).sort().map(function (k) { return [k, scalarText(d.metadata[k])]; });
    ui.detailsTitle.textContent = (log.activity && log.activity.label) || "Log details";
    clear(ui.detailsBody);
    append(ui.detailsBody, [
      h("p", { class: "al-details-lead" }, statusBadge(log.status, log.status_reason), " ", timeElement(log.timestamp)),
      log.description ? h("p", { class: "al-details-description", text: log.description }) : null,
      section("Activity", dl([
        ["Log ID", h("code", { class: "al-log-id", text: log.id })],
        ["Time (UTC)", log.timestamp],
        ["Activity", log.activity ? [
          h("span", { class: "al-primary", text: log.activity.label }),
          h("code", { class: "al-secondary al-log-id", text: log.activity.code })
        ] : ""],
        ["Category", log.category && log.category.label],
        ["Status", log.status === "failure" ? "Failed" : "Success"],
        ["Reason", log.status_reason],
        ["Source", labelOf(SOURCES, log.source)],
        ["Description", log.description]
      ])),
      section("Integrity", h("p", { class: "al-integrity al-muted", "data-integrity": "loading",
        text: "Checking the signed digest…" })),
      section("Actor", dl([
        ["Name", actor.name], ["ID", actor.id], ["Email", actor.email],
        ["Type", labelOf(ACTOR_TYPES, actor.type)], ["Role", ROLES[actor.role] || actor.role]
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

  /** What the API's proof says of the log, in words (docs/integrity.md). */
  var INTEGRITY_TEXT = {
    verified: "Covered by signed digest #{seq} ({time}): this log is exactly as it was recorded.",
    not_covered: "Not covered by a signed digest yet (digests are written every few seconds).",
    changed: "Does not match its signed digest: this log was altered after it was recorded.",
    bad_signature: "Its digest does not carry a valid signature: it cannot be trusted."
  };

  function renderIntegrity(proof) {
    var target = ui.detailsBody.querySelector(".al-integrity");
    if (!target) return;
    var digest = proof.digest || {};
    var text = (INTEGRITY_TEXT[proof.status] || "Unknown integrity status.")
      .replace("{seq}", String(digest.seq)).replace("{time}", digest.created_at ? formatTime(digest.created_at) : "");
    target.setAttribute("data-integrity", proof.status);
    target.className = "al-integrity" + (proof.verified ? " al-integrity-ok" : proof.status === "not_covered" ? " al-muted" : " al-integrity-bad");
    target.textContent = text;
  }

  function loadIntegrity(logId, controller) {
    apiFetch("api/v1/integrity/logs/" + encodeURIComponent(logId), null, { signal: controller.signal })
      .then(function (r) { return r.json(); })
      .then(function (proof) { if (state.detailController === controller) renderIntegrity(proof); })
      .catch(function (error) {
        if ((error && error.name === "AbortError") || state.detailController !== controller) return;
        var target = ui.detailsBody.querySelector(".al-integrity");
        if (!target) return;
        target.setAttribute("data-integrity", "unavailable");
        target.textContent = error.status === 503
          ? "Integrity checks are not configured on this service."
          : "The integrity proof could not be loaded.";
      });
  }

  function openDetails(log, row) {
    state.selectedId = log.id;
    state.lastRow = row;
    rows().forEach(function (r) {
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
    var controller = new AbortController();
    state.detailController = controller;
    apiFetch("api/v1/audit-logs/" + encodeURIComponent(log.id), null, { signal: controller.signal })
      .then(function (r) { return r.json(); })
      .then(function (detail) {
        if (state.detailController !== controller) return;
        renderDetails(detail);
        ui.details.setAttribute("aria-busy", "false");
        loadIntegrity(log.id, controller);
      })
      .catch(function (error) {
        if ((error && error.name === "AbortError") || state.detailController !== controller) return;
        ui.details.setAttribute("aria-busy", "false");
        clear(ui.detailsBody);
        append(ui.detailsBody, h("div", { class: "al-error", role: "alert" },
          h("p", { text: error.message || "The details could not be loaded." }),
          h("button", { type: "button", class: "al-button", text: "Try again",
            onclick: function () { openDetails(log, row); } })));
      });
  }

  function closeDetails() {
    if (ui.details.hidden) return;
    if (state.detailController) state.detailController.abort();
    state.detailController = null;
    ui.details.hidden = true;
    root.classList.remove("al-has-details");
    var id = state.selectedId;
    state.selectedId = null;
    // Back to where the user was: that row, or the same log redrawn by a newer search.
    var row = state.lastRow && state.lastRow.isConnected ? state.lastRow
      : rows().filter(function (r) { return r.getAttribute("data-id") === id; })[0];
    rows().forEach(function (r) { r.removeAttribute("aria-current"); });
    if (row) {
      updateRovingTabIndex(row);
      row.focus();
    }
  }

  // ---------------------------------------------------------------------------------
  // Export

  function filenameFrom(disposition) {
    var match = /filename="?([^";]+)"?/i.exec(disposition || "");
    return match ? match[1] : null;
  }

  function exportCsv() {
    var params = currentParams();
    if (!params || !state.token) return;
    params.set("format", "csv");
    ui.exportButton.disabled = true;
    ui.exportButton.textContent = "Exporting…";
    ui.exportButton.setAttribute("aria-busy", "true");
    hideError();
    apiFetch("api/v1/audit-logs/export", params, { accept: "text/csv" })
      .then(function (response) {
        var name = filenameFrom(response.headers.get("Content-Disposition")) ||
          "audit-logs-" + new Date().toISOString().replace(/[:.]/g, "") + ".csv";
        return response.blob().then(function (blob) {
          // Fetched with the Authorization header (a plain link could not send it), then
          // handed to the browser as a download.
          var url = URL.createObjectURL(blob);
          var link = h("a", { href: url, download: name, hidden: true });
          document.body.appendChild(link);
          link.click();
          link.remove();
          window.setTimeout(function () { URL.revokeObjectURL(url); }, 30000);
          setStatus("Exported " + name + ". " + totalText() + ".");
        });
      })
      .catch(function (error) {
        showError(error.status === 503 ? error : new ApiError(error.status, "The export failed: " + error.message, error.details),
          exportCsv);
      })
      .then(function () {
        ui.exportButton.disabled = false;
        ui.exportButton.textContent = "Export CSV";
        ui.exportButton.removeAttribute("aria-busy");
      });
  }

  // ---------------------------------------------------------------------------------
  // Token

  function tokenFromFragment() {
    var hash = window.location.hash.replace(/^#/, "");
    if (!hash) return null;
    var params = new URLSearchParams(hash);
    var token = params.get("token");
    if (!token) return null;
    params.delete("token");
    var rest = params.toString();
    // Out of the address bar (and so out of screenshots, copied links and history).
    window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
    return token;
  }

  function initialToken() {
    var token = tokenFromFragment();
    if (token) {
      remember(token);
      return token;
    }
    if (typeof window.AUDIT_LOG_TOKEN === "string" && window.AUDIT_LOG_TOKEN) return window.AUDIT_LOG_TOKEN;
    if (root.getAttribute("data-token")) return root.getAttribute("data-token");
    try {
      return window.sessionStorage.getItem(STORAGE_KEY);
    } catch (e) {
      return null; // storage disabled: the host page has to provide the token
    }
  }

  function remember(token) {
    try {
      window.sessionStorage.setItem(STORAGE_KEY, token);
    } catch (e) {
      /* storage disabled: the token lives for this page only */
    }
  }

  /** The origins allowed to embed this page and hand it a token (none unless configured). */
  function embedOrigins() {
    return (root.getAttribute("data-embed-origins") || "").split(" ").filter(Boolean);
  }

  function askHostForToken(type) {
    if (window.parent && window.parent !== window) {
      // Only to the allowed origins: a frame elsewhere gets nothing, not even the request.
      embedOrigins().forEach(function (origin) {
        window.parent.postMessage({ type: type }, origin);
      });
    }
  }

  function setToken(token) {
    if (typeof token !== "string" || !token) return;
    var first = !state.token;
    state.token = token;
    root.removeAttribute("data-token"); // not left in the DOM for other scripts to find
    if (first || !state.catalogue) loadCatalogue();
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
    askHostForToken("audit-log:token-request");
  }

  // ---------------------------------------------------------------------------------
  // Events

  function wire() {
    ui.search.addEventListener("input", scheduleSearch);
    ui.search.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        search();
      }
    });
    ui.range.addEventListener("change", function () {
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
    ui.category.addEventListener("change", function () { fillActivities(); search(); });
    [ui.status, ui.source, ui.actorType].forEach(function (el) { el.addEventListener("change", search); });
    [ui.actorId, ui.organizationId].forEach(function (el) { el.addEventListener("input", scheduleSearch); });
    ui.filters.addEventListener("submit", function (event) { event.preventDefault(); search(); });
    ui.filters.addEventListener("reset", function () {
      // After the browser has reset the form controls.
      window.setTimeout(function () { fillActivities(); search(); }, 0);
    });
    ui.filtersToggle.addEventListener("click", function () {
      var open = ui.filters.hidden;
      ui.filters.hidden = !open;
      ui.filtersToggle.setAttribute("aria-expanded", String(open));
      if (open) ui.category.focus();
    });
    ui.clearFilters.addEventListener("click", function () { resetFilters(); search(); ui.range.focus(); });
    ui.refreshButton.addEventListener("click", search);
    ui.exportButton.addEventListener("click", exportCsv);
    ui.moreButton.addEventListener("click", function () {
      var before = state.items.length;
      loadPageThenFocus(before);
    });
    ui.closeDetails.addEventListener("click", closeDetails);
    ui.tbody.addEventListener("keydown", onTableKey);
    ui.tbody.addEventListener("focusin", function (event) {
      var row = event.target.closest && event.target.closest("tr.al-row");
      if (row) updateRovingTabIndex(row);
    });
    document.addEventListener("keydown", function (event) {
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
    window.addEventListener("hashchange", function () {
      // A new "#token=..." link pasted into the same tab (development).
      var token = tokenFromFragment();
      if (token) {
        remember(token);
        setToken(token);
      }
    });
    window.addEventListener("message", function (event) {
      // Only the window embedding this page, from an allowed origin, may hand it a token.
      if (event.source !== window.parent || window.parent === window) return;
      if (embedOrigins().indexOf(event.origin) < 0) return;
      var data = event.data;
      if (data && data.type === "audit-log:token" && typeof data.token === "string") setToken(data.token);
    });
  }

  /** "Load more", then move focus to the first new row so keyboard users continue there. */
  function loadPageThenFocus(before) {
    var focusedMore = document.activeElement === ui.moreButton;
    loadPage(true);
    if (!focusedMore) return;
    var observer = new MutationObserver(function () {
      var all = rows();
      if (all.length > before) {
        observer.disconnect();
        updateRovingTabIndex(all[before]);
        all[before].focus();
      }
    });
    observer.observe(ui.tbody, { childList: true });
    window.setTimeout(function () { observer.disconnect(); }, 30000);
  }

  // ---------------------------------------------------------------------------------

  build();
  wire();
  updateFilterIndicators();
  window.AuditLogViewer = { setToken: setToken, refresh: search };
  var token = initialToken();
  if (token) setToken(token);
  else showNoToken();
})();
