// LaunchDarkly's server-side Node.js SDK (npm `@launchdarkly/node-server-sdk`), unchanged,
// sending its analytics events to this service's events URL: it evaluates three flags from a
// file data source (no connection to LaunchDarkly) for a named user, an anonymous user and a
// multi-kind context, tracks three custom events, then flushes and closes, so that everything
// is posted to {eventsUri}/bulk (and diagnostics to {eventsUri}/diagnostic) before it exits.
//
// Usage: node sdk_events.js EVENTS_URI SDK_KEY FLAGS_FILE [--gzip]
//
// FLAGS_FILE is written by this script (LaunchDarkly's flag file format) and then read by the
// SDK's file data source. --gzip turns on the SDK's optional event compression.
// Prints one JSON line to stdout describing the evaluations and custom events (the SDK logs to
// stderr); exits non-zero if the SDK did not initialize.
"use strict";
const fs = require("node:fs");
const ld = require("@launchdarkly/node-server-sdk");

const NOWHERE = "http://127.0.0.1:9";

function flag(key, version, variations, fallthrough, trackEvents = false) {
  return {
    key,
    version,
    on: true,
    salt: `${key}-salt`,
    variations,
    offVariation: 0,
    fallthrough,
    targets: [],
    contextTargets: [],
    rules: [],
    prerequisites: [],
    trackEvents,
    trackEventsFallthrough: false,
    clientSide: false,
    deleted: false,
  };
}

const FLAGS = {
  flags: {
    "checkout-flow": flag("checkout-flow", 7, [false, true], { variation: 1 }, true),
    "experiment-flag": flag("experiment-flag", 3, ["control", "treatment"], {
      rollout: {
        kind: "experiment",
        seed: 61,
        variations: [
          { variation: 0, weight: 50000 },
          { variation: 1, weight: 50000 },
        ],
      },
    }),
    "quiet-flag": flag("quiet-flag", 2, [false, true], { variation: 1 }),
  },
  segments: {},
};

const USER = { kind: "user", key: "user-1", name: "Ann" };
const ANON = { kind: "user", key: "anon-1", anonymous: true };
const MULTI = { kind: "multi", user: { key: "user-2" }, organization: { key: "org-1", name: "Acme" } };

// [flag, context, with detail]: a detail evaluation asks for the reason, which the SDK then
// puts in the feature event too (an experiment always carries its reason).
const EVALUATIONS = [
  ["checkout-flow", USER, true],
  ["checkout-flow", ANON, false],
  ["checkout-flow", MULTI, false],
  ["experiment-flag", USER, true],
  ["experiment-flag", MULTI, true],
  ["quiet-flag", USER, true],
];
const CUSTOM = [
  ["purchase", USER, { sku: "sku-42", price: 12.5 }, 12.5],
  ["signup", MULTI, { plan: "pro" }, null],
  ["page-view", ANON, null, null],
];

async function main() {
  const gzip = process.argv.includes("--gzip");
  const args = process.argv.slice(2).filter((a) => a !== "--gzip");
  if (args.length !== 3) {
    console.error("usage: node sdk_events.js EVENTS_URI SDK_KEY FLAGS_FILE [--gzip]");
    return 2;
  }
  const [eventsUri, sdkKey, flagsFile] = args;
  fs.writeFileSync(flagsFile, JSON.stringify(FLAGS, null, 2));

  const client = ld.init(sdkKey, {
    baseUri: NOWHERE,
    streamUri: NOWHERE,
    eventsUri,
    sendEvents: true,
    enableEventCompression: gzip,
    // A loaded CI machine may take seconds to answer: a time-out would make the SDK
    // retry a post that ingest is still taking, which the test does not expect.
    timeout: 60,
    updateProcessor: new ld.integrations.FileDataSourceFactory({ paths: [flagsFile] }).getFactory(),
    logger: ld.basicLogger({ level: "info", destination: (line) => console.error(line) }),
  });
  try {
    await client.waitForInitialization({ timeout: 5 });
  } catch (e) {
    console.error(`the LaunchDarkly SDK did not initialize from ${flagsFile}: ${e}`);
  }
  if (!client.initialized()) {
    client.close();
    return 1;
  }

  const done = { sdk: "node", evaluations: [], custom: [] };
  for (const [key, context, detail] of EVALUATIONS) {
    const variations = FLAGS.flags[key].variations;
    let value;
    let variation;
    let reason;
    if (detail) {
      const d = await client.variationDetail(key, context, null);
      value = d.value;
      variation = d.variationIndex ?? null;
      reason = d.reason ?? null;
    } else {
      value = await client.variation(key, context, null);
      variation = variations.indexOf(value);
      reason = null;
    }
    done.evaluations.push({ flag: key, context, detail, value, variation, reason });
  }
  for (const [key, context, data, metricValue] of CUSTOM) {
    client.track(key, context, data ?? undefined, metricValue ?? undefined);
    done.custom.push({ key, context, data, metricValue });
  }

  await client.flush();
  client.close();
  console.log(JSON.stringify(done));
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (e) => {
    console.error(e && e.stack ? e.stack : e);
    process.exit(1);
  },
);
