import { h, timeEl } from './dom.js';

// Delivery status from _delivery (absent from answers that do not carry it: the list of
// every environment, a create or a patch).
export function deliveryStatus(delivery) {
  const state = (delivery && delivery.state) || 'idle';
  const el = h('div', { class: 'delivery ' + state, 'data-testid': 'delivery-status', 'data-state': state });
  const hours = (delivery && Array.isArray(delivery.hours)) ? delivery.hours : [];
  const line = h('p', {});
  el.append(line);
  if (!delivery || (state === 'idle' && !hours.length)) {
    line.append('Delivery: no events yet.');
    return el;
  }
  if (state === 'idle') {
    line.append('Delivery: nothing sent yet.');
    el.append(skipReasons(hours));
    return el;
  }
  if (state === 'unknown') {
    line.append('Delivery: the status could not be read just now; Refresh to try again.');
    return el;
  }
  if (state === 'failing') {
    line.append('Delivery: failing since ', delivery.failingSince ? timeEl(delivery.failingSince) : 'recently', '.');
    if (delivery.lastFailure) el.append(h('p', {}, 'Last failure: ', h('span', { class: 'reason', text: delivery.lastFailure })));
    if (delivery.lastDeliveredAt) el.append(h('p', {}, 'Last delivery: ', timeEl(delivery.lastDeliveredAt), '.'));
  } else {
    line.append('Delivery: ' + state);
    if (delivery.lastDeliveredAt) line.append(', last delivery ', timeEl(delivery.lastDeliveredAt));
    line.append('.');
  }
  el.append(skipReasons(hours));
  if (hours.length) {
    const delivered = hours.reduce((n, x) => n + (x.delivered || 0), 0);
    const failed = hours.reduce((n, x) => n + (x.failed || 0), 0);
    const oldest = Math.min(...hours.map((x) => x.hour));
    el.append(h('p', {}, 'Since ', timeEl(oldest), ': ' + delivered + ' delivered, ' + failed + ' failed.'));
    el.append(h('details', {}, h('summary', { text: 'Events per hour' }),
      h('table', { class: 'hours' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Hour starting' }),
          h('th', { scope: 'col', text: 'Delivered' }), h('th', { scope: 'col', text: 'Failed' }))),
        h('tbody', {}, hours.map((x) => h('tr', {}, h('td', {}, timeEl(x.hour)),
          h('td', { text: String(x.delivered || 0) }), h('td', { text: String(x.failed || 0) })))))));
  }
  return el;
}

const count = (n) => Number(n).toLocaleString('en-US');

// Why events were not exported to this destination over the hours shown, in plain words
// (README, "Why an event was not exported").
function skipReasons(hours) {
  const list = h('ul', { class: 'skips', 'data-testid': 'skip-reasons' });
  const sum = (f) => hours.reduce((n, x) => n + ((x.skipped && x.skipped[f]) || 0), 0);
  const flags = new Map();
  for (const x of hours) {
    for (const f of (x.skipped && x.skipped.topFlags) || []) flags.set(f.key, (flags.get(f.key) || 0) + f.count);
  }
  let named = 0;
  for (const [key, n] of [...flags.entries()].sort((a, b) => b[1] - a[1]).slice(0, 5)) {
    named += n;
    list.append(h('li', {}, count(n) + (n === 1 ? ' evaluation of ' : ' evaluations of '), h('code', { text: key }),
      ' skipped: the flag is not enabled for Data Export here.'));
  }
  const otherFlags = sum('flagNotEnabled') - named;
  if (otherFlags > 0) {
    list.append(h('li', { text: count(otherFlags) + ' evaluations of other flags skipped: those flags are not enabled for Data Export here.' }));
  }
  const kinds = sum('kindNotExported');
  if (kinds > 0) {
    list.append(h('li', { text: count(kinds) + ' events of kinds never exported (summary, index, identify…): Segment does not get those.' }));
  }
  const off = sum('destinationOff');
  if (off > 0) {
    list.append(h('li', { text: count(off) + ' events skipped: this destination is off.' }));
  }
  return list.childElementCount ? list : '';
}
