// The browser in the fleet test (tests/tests/own_stacks/fleet.rs): LaunchDarkly's browser SDK
// (served beside this page from npm's package, unchanged) evaluates `checkout-flow` once and
// tracks `purchase` `events` times with data `{client: name, n: i}`, flushing every ten, while
// the server SDKs post beside it. Flags come from this page's origin (the test's stand-in for
// LaunchDarkly), events go to `eventsUri` (another origin: CORS). What happened is written to
// #result for the test to read.
import { createClient } from './js-client-sdk.js';

const params = new URLSearchParams(location.search);
const result = document.getElementById('result');
const name = params.get('name');
const events = Number(params.get('events'));

async function run() {
  const client = createClient(
    params.get('clientSideId'),
    { kind: 'user', key: name },
    {
      baseUri: location.origin,
      streamUri: location.origin,
      eventsUri: params.get('eventsUri'),
      streaming: false,
      capacity: 100000,
      // Only the explicit flushes below send events.
      flushInterval: 3600,
    },
  );
  await client.start();
  const value = client.variation('checkout-flow', false);
  const flushes = [];
  for (let i = 0; i < events; i += 1) {
    client.track('purchase', { client: name, n: i }, i);
    if (i % 10 === 9) {
      flushes.push((await client.flush()).result);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  // The page-view goal fires once the goals are fetched and the client has started.
  await new Promise((resolve) => setTimeout(resolve, 500));
  flushes.push((await client.flush()).result);
  return { value, flushes };
}

run()
  .then((outcome) => { result.textContent = JSON.stringify(outcome); })
  .catch((e) => { result.textContent = JSON.stringify({ error: String(e) }); });
