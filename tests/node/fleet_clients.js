// Several clients of LaunchDarkly's server-side Node.js SDK (npm `@launchdarkly/node-server-sdk`),
// unchanged, in one process, each with the SDK key it is given, sending analytics events to
// this service's events URL: for each of EVENTS contexts of its own (`${name}-${i}`) a client
// evaluates `checkout-flow` (a flag with `trackEvents`: one feature event) and tracks
// `purchase` with data `{client: name, n: i}` and metric value i. A short flush interval and a
// pause between contexts make each client post many payloads while the others do; each client
// waits for its posts, flushes and closes before the process exits. The fleet test
// (tests/tests/own_stacks/fleet.rs) runs several of these beside the Python ones and the browser.
//
// Usage: node fleet_clients.js EVENTS_URI FLAGS_FILE EVENTS NAME=SDK_KEY...
//
// Prints one JSON line to stdout: {"clients": [{name, sdk, contexts, values}]} (the SDK logs to
// stderr); exits non-zero if a client did not initialize.
"use strict";
const fs = require("node:fs");
const ld = require("@launchdarkly/node-server-sdk");

const NOWHERE = "http://127.0.0.1:9";
// Between two contexts: with the flush interval, a client posts every few contexts.
const PACE_MS = 100;
const FLUSH_MS = 200;

const FLAGS = {
  flags: {
    "checkout-flow": {
      key: "checkout-flow",
      version: 7,
      on: true,
      salt: "checkout-flow-salt",
      variations: [false, true],
      offVariation: 0,
      fallthrough: { variation: 1 },
      targets: [],
      contextTargets: [],
      rules: [],
      prerequisites: [],
      trackEvents: true,
      trackEventsFallthrough: false,
      clientSide: false,
      deleted: false,
    },
  },
  segments: {},
};

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function runClient(name, sdkKey, eventsUri, flagsFile, events) {
  const client = ld.init(sdkKey, {
    baseUri: NOWHERE,
    streamUri: NOWHERE,
    eventsUri,
    sendEvents: true,
    // The script flushes every FLUSH_MS itself, as the SDK would, to wait for every post
    // before it closes: the SDK's flush() waits for its own post only.
    flushInterval: 3600,
    diagnosticOptOut: true,
    // A loaded machine may take seconds to answer: a time-out would make the SDK retry a
    // post that ingest is still taking.
    timeout: 60,
    updateProcessor: new ld.integrations.FileDataSourceFactory({ paths: [flagsFile] }).getFactory(),
    logger: ld.basicLogger({ level: "warn", destination: (line) => console.error(`${name}: ${line}`) }),
  });
  await client.waitForInitialization({ timeout: 30 });
  const posts = [];
  const flusher = setInterval(() => posts.push(client.flush()), FLUSH_MS);
  const report = { name, sdk: "node", contexts: [], values: [] };
  for (let i = 0; i < events; i += 1) {
    const key = `${name}-${i}`;
    const context = { kind: "user", key };
    report.values.push(await client.variation("checkout-flow", context, null));
    client.track("purchase", context, { client: name, n: i }, i);
    report.contexts.push(key);
    await sleep(PACE_MS);
  }
  clearInterval(flusher);
  await Promise.all(posts);
  await client.flush();
  client.close();
  return report;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 4) {
    console.error("usage: node fleet_clients.js EVENTS_URI FLAGS_FILE EVENTS NAME=SDK_KEY...");
    return 2;
  }
  const [eventsUri, flagsFile, events] = args;
  fs.writeFileSync(flagsFile, JSON.stringify(FLAGS, null, 2));
  const clients = args.slice(3).map((a) => {
    const at = a.indexOf("=");
    return [a.slice(0, at), a.slice(at + 1)];
  });
  const reports = await Promise.all(
    clients.map(([name, key]) => runClient(name, key, eventsUri, flagsFile, Number(events))),
  );
  console.log(JSON.stringify({ clients: reports }));
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
