/*
 * Where the bearer token comes from, first match wins (docs/viewer.md):
 *   1. the URL fragment "#token=..." (what `make run` prints; removed from the address bar);
 *   2. window.AUDIT_LOG_TOKEN, or data-token on the root element (set by the host page);
 *   3. this tab's sessionStorage (so a reload keeps working in development);
 *   4. a postMessage {type: "audit-log:token", token} from the embedding window, when its
 *      origin is one the API allows (data-embed-origins, from AUDIT_VIEWER_EMBED_ORIGINS),
 *      or window.AuditLogViewer.setToken(token) from a host page that loads the viewer.
 */

const STORAGE_KEY = "audit-log-token";

export function tokenFromFragment() {
  const hash = window.location.hash.replace(/^#/, "");
  if (!hash) return null;
  const params = new URLSearchParams(hash);
  const token = params.get("token");
  if (!token) return null;
  params.delete("token");
  const rest = params.toString();
  // Out of the address bar (and so out of screenshots, copied links and history).
  window.history.replaceState(null, "", window.location.pathname + window.location.search + (rest ? "#" + rest : ""));
  return token;
}

export function initialToken(root) {
  const token = tokenFromFragment();
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

export function remember(token) {
  try {
    window.sessionStorage.setItem(STORAGE_KEY, token);
  } catch (e) {
    /* storage disabled: the token lives for this page only */
  }
}

/** The origins allowed to embed this page and hand it a token (none unless configured). */
export function embedOrigins(root) {
  return (root.getAttribute("data-embed-origins") || "").split(" ").filter(Boolean);
}

export function askHostForToken(root, type) {
  if (window.parent && window.parent !== window) {
    // Only to the allowed origins: a frame elsewhere gets nothing, not even the request.
    embedOrigins(root).forEach((origin) => window.parent.postMessage({ type }, origin));
  }
}

/** Calls `use(token)` for each token the embedding window (from an allowed origin) sends. */
export function listenForTokens(root, use) {
  window.addEventListener("message", (event) => {
    // Only the window embedding this page, from an allowed origin, may hand it a token.
    if (event.source !== window.parent || window.parent === window) return;
    if (embedOrigins(root).indexOf(event.origin) < 0) return;
    const data = event.data;
    if (data && data.type === "audit-log:token" && typeof data.token === "string") use(data.token);
  });
}
