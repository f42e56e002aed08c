// The destinations of the environment shown: the list and the actions on one destination.
import { $, h, showMessage, status } from './dom.js';
import { api, applyAccess, busy, destPath, envOf, envPath, listAll, TEST_API } from './api.js';
import { session } from './session.js';
import { deliveryStatus } from './delivery.js';
import { openEdit } from './edit.js';
import { askDelete } from './delete.js';
import { openReplay } from './replay.js';

// [destination id, data-testid] of the button to focus once the list is rebuilt: the
// button that started the action, since a disabled (busy) button may have lost focus.
let focusAfterRender = null;

export async function fetchDestinations(env) {
  try {
    return await listAll(envPath(env));
  } catch (e) {
    // A server without GET on the environment path: filter the full list instead.
    if (e.status !== 405) throw e;
    const all = await listAll('/api/v2/destinations');
    return all.filter((d) => {
      const de = envOf(d);
      return de && de.project === env.project && de.environment === env.environment;
    });
  }
}

export async function reloadDestinations() {
  showMessage($('destinations-error'), '');
  try {
    renderDestinations(await busy($('refresh'), () => fetchDestinations(session.env)));
  } catch (e) {
    showMessage($('destinations-error'), e.message);
  }
}

export function renderDestinations(items) {
  // Re-rendering replaces every button: remember which one had focus to put it back.
  const active = document.activeElement;
  const activeItem = active && active.closest && active.closest('[data-testid="destination"]');
  const focusKey = focusAfterRender || (activeItem && [activeItem.dataset.id, active.dataset.testid]);
  focusAfterRender = null;
  items.sort((a, b) => (a.name || '').localeCompare(b.name || '') || a._id.localeCompare(b._id));
  $('destinations').replaceChildren(...items.map(destinationItem));
  $('destinations-empty').hidden = items.length > 0;
  applyAccess();
  if (focusKey) {
    const item = [...document.querySelectorAll('[data-testid="destination"]')].find((li) => li.dataset.id === focusKey[0]);
    const again = item && item.querySelector('[data-testid="' + focusKey[1] + '"]');
    if (again && !again.hidden) again.focus();
  }
}

function contextKindsText(config) {
  const user = config.userIDContextKind || 'user';
  const anon = config.anonymousIDContextKind;
  return 'userId ← ' + user + (anon ? ', anonymousId ← ' + anon : '');
}

// What Segment said of the write key, in words (CONTRACT §4.1).
function keyStatus(check) {
  const c = check || { status: 'unchecked', reason: 'not checked yet' };
  const text = c.status === 'verified' ? 'verified by Segment'
    : c.status === 'rejected' ? 'Segment does not know this key'
      : 'not checked' + (c.reason ? ' (' + c.reason + ')' : '');
  return h('span', { class: 'key-status ' + c.status, 'data-testid': 'key-status', 'data-status': c.status, text });
}

function destinationItem(d) {
  const cfg = d.config || {};
  const headingId = 'dest-' + d._id;
  const fact = (term, value) => [h('dt', { text: term }), h('dd', {}, value)];
  const error = h('p', { class: 'error', role: 'alert', hidden: true });
  const result = h('div', { class: 'test-result', 'data-testid': 'test-result', 'aria-live': 'polite', hidden: true });
  const button = (testid, text, onClick, extra) => {
    const b = h('button', Object.assign({ type: 'button', 'data-testid': testid, 'data-write': true,
      'aria-describedby': headingId, text }, extra));
    b.addEventListener('click', () => onClick(b));
    return b;
  };
  const li = h('li', { class: 'destination', 'data-testid': 'destination', 'data-id': d._id, 'data-name': d.name || '' },
    h('div', { class: 'dest-head' },
      h('h3', { id: headingId, text: d.name || '(unnamed destination)' }),
      h('span', { class: 'badge ' + (d.on ? 'on' : 'off'), text: d.on ? 'On' : 'Off' })),
    h('dl', { class: 'facts' },
      fact('Kind', d.kind),
      fact('Region', cfg.region === 'eu' ? 'EU' : 'US'),
      fact('Context kinds', contextKindsText(cfg)),
      fact('Write key', [h('code', { text: cfg.writeKey || '' }), ' ', keyStatus(d._writeKey)]),
      fact('Custom event data', cfg.includeCustomData ? 'included' : 'not sent'),
      fact('Experiment Viewed', cfg.experimentViewed ? 'sent for experiment evaluations' : 'not sent'),
      fact('Sent to', cfg.endpoint ? h('code', { 'data-testid': 'endpoint', text: cfg.endpoint }) : 'Segment')),
    deliveryStatus(d._delivery));
  // Saving an edit rebuilds the list: put focus back on this Edit button.
  const saved = () => { focusAfterRender = [d._id, 'edit']; return reloadDestinations(); };
  const actions = h('div', { class: 'actions' },
    button('toggle', d.on ? 'Turn off' : 'Turn on', (b) => toggle(d, b, error)),
    button('edit', 'Edit', (b) => openEdit(li, d, b, error, saved), { 'aria-expanded': 'false' }),
    button('test', 'Send test event', (b) => sendTest(d, b, result, error)),
    button('replay', 'Replay\u2026', (b) => openReplay(li, d, b, error), { 'aria-expanded': 'false' }),
    button('delete', 'Delete', (b) => askDelete(d, b), { class: 'danger' }));
  li.append(actions, result, error);
  return li;
}

async function toggle(d, b, error) {
  showMessage(error, '');
  try {
    await busy(b, () => api('PATCH', destPath(d), [{ op: 'replace', path: '/on', value: !d.on }]));
    focusAfterRender = [d._id, 'toggle'];
    status('Turned ' + (d.on ? 'off' : 'on') + ' ' + (d.name || d._id) + '.');
    await reloadDestinations();
  } catch (e) {
    showMessage(error, e.message);
  }
}

async function sendTest(d, b, result, error) {
  showMessage(error, '');
  result.hidden = true;
  result.replaceChildren();
  try {
    const r = await busy(b, () => api('POST', destPath(d) + '/test', undefined, TEST_API));
    result.append(h('p', { class: 'ok', text: 'Segment answered HTTP ' + r.status + ' (message id ' + r.messageId + ').' }),
      h('p', { text: r.message }));
    result.hidden = false;
  } catch (e) {
    // 502: Segment refused the event or could not be reached; the body says what it answered.
    if (e.code === 'segment_error') {
      const s = e.body.segmentStatus;
      result.append(h('p', { text: (s ? 'Segment answered HTTP ' + s : 'Segment did not answer') +
        (e.body.messageId ? ' (message id ' + e.body.messageId + ').' : '.') }));
      result.hidden = false;
    }
    showMessage(error, e.message);
  }
}
