// The viewer's API errors in words, without a browser: node --test tests/js/
import assert from "node:assert/strict";
import { test } from "node:test";

import { ApiError, createApi, errorDetails, messageFor } from "../../api/static/api.js";

test("flask-smorest's errors name each parameter", () => {
  const errors = { query: { limit: ["Must be between 1 and 500."], q: { 0: ["Too long."] } } };
  assert.deepEqual(errorDetails(errors), ["limit: Must be between 1 and 500.", "q: Too long."]);
  assert.deepEqual(errorDetails(null), []);
});

test("each status reads as words, the server's own for a 503", () => {
  assert.match(messageFor(401, ""), /session has expired/);
  assert.match(messageFor(404, ""), /does not exist/);
  assert.equal(messageFor(503, "the export could not be recorded"), "the export could not be recorded");
  assert.match(messageFor(500, ""), /\(500\)/);
});

test("a refusal is an ApiError, and a 401 asks the host for a new token", async () => {
  let expired = 0;
  globalThis.fetch = async () => new Response(JSON.stringify({ message: "token expired" }), { status: 401 });
  const apiFetch = createApi(new URL("http://example.test/"), () => "t", () => { expired += 1; });
  await assert.rejects(apiFetch("api/v1/audit-logs"), (error) => error instanceof ApiError && error.status === 401);
  assert.equal(expired, 1);
  globalThis.fetch = async () => { throw new TypeError("network down"); };
  await assert.rejects(apiFetch("api/v1/audit-logs"), (error) => error.status === 0);
});
