// LaunchDarkly's generated TypeScript API client (npm `launchdarkly-api-typescript`),
// unchanged, against this service: post, get, list, patch and delete a Segment destination,
// a 400 and a 401 in the API's error shape. Run by tests/tests/end_to_end/api_lambda.rs.
//
// Usage: node ld_client_check.js BASE_URL API_TOKEN PROJECT ENVIRONMENT WRITE_KEY
// Prints one JSON line describing what it saw; exits non-zero on the first failed check.
"use strict";
const assert = require("node:assert/strict");
const { Configuration, DataExportDestinationsApi } = require("launchdarkly-api-typescript");
// The axios the client itself sends with.
const globalAxios = require("axios");

async function main() {
  const [base, token, project, environment, writeKey] = process.argv.slice(2);
  const masked = "*".repeat(writeKey.length - 4) + writeKey.slice(-4);
  const api = new DataExportDestinationsApi(new Configuration({ basePath: base, apiKey: token }));
  const seen = {};

  const created = (await api.postDestination(project, environment, {
    name: "Segment via the LaunchDarkly TypeScript client",
    kind: "segment",
    config: { writeKey },
    on: true,
  })).data;
  assert.ok(created._id);
  assert.equal(created.kind, "segment");
  assert.equal(created.on, true);
  assert.equal(created.version, 1);
  assert.equal(created.config.writeKey, masked);
  assert.ok(created._links.self.href.endsWith(created._id));
  seen.created = created._id;

  const got = (await api.getDestination(project, environment, created._id)).data;
  assert.equal(got._id, created._id);
  assert.equal(got.name, created.name);

  // The first page as the client asks for it; then the pages after it, following
  // _links.next with the client's own axios (README, "Pages").
  const listed = (await api.getDestinations()).data;
  assert.ok(listed.items.length > 0 && listed.items.length <= 20, String(listed.items.length));
  const ids = listed.items.map((d) => d._id);
  for (let page = listed; page._links.next; ) {
    page = (await globalAxios.get(base + page._links.next.href, { headers: { Authorization: token } })).data;
    ids.push(...page.items.map((d) => d._id));
  }
  assert.ok(ids.includes(created._id), "created destination missing from the list");
  assert.equal(new Set(ids).size, ids.length, "a destination listed twice");
  seen.listed = ids.length;

  const patched = (await api.patchDestination(project, environment, created._id, [
    { op: "replace", path: "/on", value: false },
    { op: "replace", path: "/name", value: "renamed by the TypeScript client" },
  ])).data;
  assert.equal(patched.on, false);
  assert.equal(patched.version, 2);
  assert.equal(patched.config.writeKey, masked);
  seen.patchedVersion = patched.version;

  await assert.rejects(api.postDestination(project, environment, { kind: "segment", config: {} }), (e) => {
    assert.equal(e.response.status, 400);
    assert.equal(e.response.data.code, "invalid_request");
    seen.badRequest = e.response.data.message;
    return true;
  });

  const deleted = await api.deleteDestination(project, environment, created._id);
  assert.equal(deleted.status, 204);
  await assert.rejects(api.getDestination(project, environment, created._id), (e) => {
    assert.equal(e.response.status, 404);
    assert.equal(e.response.data.code, "not_found");
    seen.deleted = true;
    return true;
  });

  const stranger = new DataExportDestinationsApi(new Configuration({ basePath: base, apiKey: "not-a-token" }));
  await assert.rejects(stranger.getDestinations(), (e) => {
    assert.equal(e.response.status, 401);
    seen.unauthorized = true;
    return true;
  });
  console.log(JSON.stringify(seen));
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
