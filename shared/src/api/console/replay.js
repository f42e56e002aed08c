// Replays (README, "Replays"): a time range sent again to one destination from the event
// archive, and a progress line that follows the replay until it is done.
import { h, showMessage, status } from './dom.js';
import { api, busy, destPath } from './api.js';

const POLL_MS = 2000;

// A datetime-local input's value (local time, to the minute) for epoch ms.
function localValue(ms) {
  const d = new Date(ms);
  const pad = (n) => String(n).padStart(2, '0');
  return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + 'T' + pad(d.getHours()) + ':' + pad(d.getMinutes());
}

// The line that says where a replay is, in words.
export function progressText(r) {
  const e = r.events || {};
  const counts = (e.read || 0) + ' read, ' + (e.queued || 0) + ' queued, ' + (e.delivered || 0) + ' delivered, ' +
    (e.skipped || 0) + ' skipped (today\u2019s settings do not export them), ' + (e.failed || 0) + ' failed';
  if (r.state === 'done') return 'Replay done: ' + counts + '.';
  if (r.state === 'failed') return 'Replay failed: ' + counts + (r.error ? ' \u2014 ' + r.error : '') + '.';
  return 'Replay running: ' + counts + '\u2026';
}

// Follows a replay until it is no longer running, updating `line`.
async function follow(href, line) {
  const path = href.replace(/^.*(\/api\/v2\/)/, '$1');
  for (;;) {
    const r = await api('GET', path);
    line.textContent = progressText(r);
    line.dataset.state = r.state;
    if (r.state !== 'running') return r;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

// Opens (or closes) the replay form inside the destination's item.
export function openReplay(li, d, b, error) {
  const open = li.querySelector('form.replay');
  if (open) { open.remove(); b.setAttribute('aria-expanded', 'false'); return; }
  const sfx = '-' + d._id;
  const minute = 60000;
  const now = Date.now();
  // The last day, up to the next minute (the inputs count minutes), so that what was
  // sent a moment ago is in the range.
  const from = h('input', { id: 'replay-from' + sfx, 'data-testid': 'replay-from', type: 'datetime-local', value: localValue(now - 24 * 60 * minute) });
  const to = h('input', { id: 'replay-to' + sfx, 'data-testid': 'replay-to', type: 'datetime-local', value: localValue(Math.ceil(now / minute) * minute) });
  const field = (input, label) => h('div', { class: 'field' }, h('label', { for: input.id, text: label }), input);
  const start = h('button', { type: 'submit', 'data-testid': 'start-replay', text: 'Start replay' });
  const line = h('p', { class: 'replay-progress', 'data-testid': 'replay-progress', role: 'status', 'aria-live': 'polite' });
  const form = h('form', { class: 'replay', novalidate: true, 'data-write': true, 'aria-label': 'Replay to ' + (d.name || d._id) },
    h('p', { text: 'Sends the archived events of this time range to this destination only, under today\u2019s Data Export settings, with the message ids they had live.' }),
    field(from, 'From (your local time)'), field(to, 'To'), start, line);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showMessage(error, '');
    const range = { from: new Date(from.value).getTime(), to: new Date(to.value).getTime() };
    if (!isFinite(range.from) || !isFinite(range.to)) { showMessage(error, 'Give both times of the range.'); return; }
    try {
      const r = await busy(start, () => api('POST', destPath(d) + '/replays', range));
      line.textContent = progressText(r);
      status('Replay started for ' + (d.name || d._id) + '.');
      const done = await follow(r._links.self.href, line);
      status('Replay ' + done.state + ' for ' + (d.name || d._id) + '.');
    } catch (e) {
      showMessage(error, e.message);
    }
  });
  li.querySelector('.actions').after(form);
  b.setAttribute('aria-expanded', 'true');
  from.focus();
}
