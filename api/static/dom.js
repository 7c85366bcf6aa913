/*
 * DOM helpers of the viewer. Text is only ever inserted with textContent or text nodes,
 * never parsed as HTML: API data cannot become markup.
 */

/** h("tag", {attr: value, class: "...", text: "...", onclick: fn}, child, ...) */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key.slice(0, 2) === "on") el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  children.forEach((child) => append(el, child));
  return el;
}

export function append(parent, child) {
  if (child === null || child === undefined || child === false) return;
  if (Array.isArray(child)) {
    child.forEach((c) => append(parent, c));
  } else if (typeof child === "string" || typeof child === "number") {
    parent.appendChild(document.createTextNode(String(child)));
  } else {
    parent.appendChild(child);
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function option(value, label, selected) {
  return h("option", { value, selected: !!selected, text: label });
}

/** Fill a <select> with a first "any" choice and the API's {code, label} choices. */
export function fillSelect(select, anyLabel, choices) {
  const keep = select.value;
  clear(select);
  append(select, option("", anyLabel));
  (choices || []).forEach((c) => append(select, option(c.code, c.label, c.code === keep)));
}

export function field(labelText, control, hint) {
  const hintEl = hint ? h("span", { class: "al-hint", id: control.id + "-hint", text: hint }) : null;
  if (hintEl) control.setAttribute("aria-describedby", hintEl.id);
  return h("div", { class: "al-field" }, h("label", { for: control.id, text: labelText }), control, hintEl);
}
