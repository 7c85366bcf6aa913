/*
 * Talking to the read API (SPEC section 4): bearer token, JSON errors in words.
 */

export class ApiError extends Error {
  constructor(status, message, details) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.details = details || [];
  }
}

/** "param: message" lines from flask-smorest's {errors: {location: {param: ...}}}. */
export function errorDetails(errors) {
  const messages = (value) => {
    if (typeof value === "string") return [value];
    if (Array.isArray(value)) return value.flatMap(messages);
    if (value && typeof value === "object") return Object.values(value).flatMap(messages);
    return [];
  };
  const lines = [];
  for (const byParam of Object.values(errors || {})) {
    if (!byParam || typeof byParam !== "object" || Array.isArray(byParam)) continue;
    for (const [param, value] of Object.entries(byParam)) {
      lines.push(param + ": " + messages(value).join(" "));
    }
  }
  return lines;
}

/** What a user reads for an error status. */
export function messageFor(status, serverMessage) {
  if (status === 401) return "Your session has expired or the access token is not valid. Sign in again to see the audit log.";
  if (status === 403) return "Your role does not give access to the audit log.";
  if (status === 404) return "This log does not exist, or it is outside the organizations you manage.";
  if (status === 400 || status === 422) return "Some search criteria are not valid.";
  if (status === 503) return serverMessage || "The audit log is temporarily unavailable. Try again shortly.";
  return "The audit-log service answered with an error (" + status + ").";
}

async function toApiError(response) {
  const body = await response.json().catch(() => null);
  const serverMessage = body && typeof body.message === "string" ? body.message : "";
  return new ApiError(response.status, messageFor(response.status, serverMessage),
    body && body.errors ? errorDetails(body.errors) : []);
}

/**
 * fetch(path) against the API at `base` with the token `getToken()` gives; `onExpired` is
 * called on a 401 (so the host page can hand over a new token).
 */
export function createApi(base, getToken, onExpired) {
  return async function apiFetch(path, params, options = {}) {
    const url = new URL(path, base);
    if (params) url.search = params.toString();
    let response;
    try {
      response = await fetch(url.toString(), {
        headers: { Authorization: "Bearer " + getToken(), Accept: options.accept || "application/json" },
        signal: options.signal,
        credentials: "omit",
        cache: "no-store"
      });
    } catch (error) {
      if (error && error.name === "AbortError") throw error;
      throw new ApiError(0, "Cannot reach the audit-log service. Check your connection and try again.");
    }
    if (!response.ok) {
      const error = await toApiError(response);
      if (error.status === 401) onExpired();
      throw error;
    }
    return response;
  };
}
