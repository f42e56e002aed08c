// Drives LaunchDarkly's browser SDK (served beside this page from npm's package, unchanged):
// flags come from this page's origin (the test's stand-in for LaunchDarkly's polling and
// goals endpoints), events go to `eventsUri` (ingest, another origin: CORS). What happened
// is written to #result for the test to read.
import { createClient } from './js-client-sdk.js';

const params = new URLSearchParams(location.search);
const result = document.getElementById('result');

async function run() {
  const client = createClient(
    params.get('clientSideId'),
    { kind: 'user', key: 'browser-user-1', name: 'Bea' },
    {
      baseUri: location.origin,
      streamUri: location.origin,
      eventsUri: params.get('eventsUri'),
      streaming: false,
      // Only the explicit flush below sends events.
      flushInterval: 3600,
    },
  );
  await client.start();
  const value = client.variation('checkout-flow', false);
  client.track('purchase', { sku: 'sku-42' }, 12.5);
  // The page-view goal fires once the goals are fetched and the client has started.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const flushed = await client.flush();
  return { value, flushed };
}

run()
  .then((outcome) => { result.textContent = JSON.stringify(outcome); })
  .catch((e) => { result.textContent = JSON.stringify({ error: String(e) }); });
