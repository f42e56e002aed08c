import { h, timeEl } from './dom.js';

// Delivery status from _delivery (absent from answers that do not carry it: the list of
// every environment, a create or a patch).
export function deliveryStatus(delivery) {
  const state = (delivery && delivery.state) || 'idle';
  const el = h('div', { class: 'delivery ' + state, 'data-testid': 'delivery-status', 'data-state': state });
  const hours = (delivery && Array.isArray(delivery.hours)) ? delivery.hours : [];
  const line = h('p', {});
  el.append(line);
  if (state === 'idle' || !delivery) {
    line.append('Delivery: no events yet.');
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
