// The environment's Data Export settings: which flags' evaluations go to Segment.
import { $, h, showMessage, status } from './dom.js';
import { api, applyAccess, busy, pointer, settingsPath } from './api.js';
import { session } from './session.js';

export function renderSettings(s) {
  $('all-flags').checked = !!s.allFlags;
  const keys = Object.keys(s.flags || {}).filter((k) => s.flags[k]).sort();
  $('flags').replaceChildren(...keys.map((key) => {
    const remove = h('button', { type: 'button', 'data-testid': 'remove', 'data-write': true,
      'aria-label': 'Remove ' + key, text: 'Remove' });
    remove.addEventListener('click', () =>
      patchSettings([{ op: 'remove', path: '/flags/' + pointer(key) }], remove, 'Stopped exporting ' + key + '.'));
    return h('li', { 'data-testid': 'flag', 'data-key': key }, h('code', { text: key }), ' ', remove);
  }));
  $('flags-empty').hidden = keys.length > 0;
  applyAccess();
}

async function patchSettings(ops, control, done) {
  showMessage($('settings-error'), '');
  try {
    renderSettings(await busy(control, () => api('PATCH', settingsPath(session.env), ops)));
    status(done);
    return true;
  } catch (e) {
    showMessage($('settings-error'), e.message);
    return false;
  }
}

export async function setAllFlags() {
  const box = $('all-flags');
  const want = box.checked;
  const ok = await patchSettings([{ op: 'replace', path: '/allFlags', value: want }], box,
    want ? 'Exporting every flag of this environment.' : 'Exporting only the flags listed.');
  // A refused change leaves the box as the server has it.
  if (!ok) box.checked = !want;
}

export async function addFlag(ev) {
  ev.preventDefault();
  const key = $('flag-key').value.trim();
  if (!key) { showMessage($('settings-error'), 'Enter a flag key.'); return; }
  if (await patchSettings([{ op: 'add', path: '/flags/' + pointer(key), value: true }], $('add-flag'), 'Exporting flag ' + key + '.')) {
    $('flag-key').value = '';
  }
}
