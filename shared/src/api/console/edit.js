// The forms that write a destination: add, and edit in place in the list. Neither knows the
// list: the caller reloads it once they report a write, which keeps the modules acyclic.
import { $, h, showMessage, status } from './dom.js';
import { api, ApiError, busy, destPath, envPath } from './api.js';
import { session } from './session.js';

// "user, device" → ['user', 'device']; the first is userIDContextKind, the second anonymousIDContextKind.
// Positional, so ", device" sets only the anonymousId kind.
function parseKinds(text) {
  const parts = text.split(',').map((s) => s.trim());
  if (parts.length > 2) throw new ApiError(0, null, 'Context kinds: give at most two, the userId kind then the anonymousId kind.');
  return [parts[0] || undefined, parts[1] || undefined];
}

// Fields shared by the add and edit forms, in the edit form (ids suffixed by the destination id).
export function openEdit(li, d, b, error, saved) {
  const open = li.querySelector('form.edit');
  if (open) { open.remove(); b.setAttribute('aria-expanded', 'false'); return; }
  const cfg = d.config || {};
  const sfx = '-' + d._id;
  const field = (id, label, input, hint) => h('div', { class: 'field' }, h('label', { for: id + sfx, text: label }), input, hint);
  const name = h('input', { id: 'edit-name' + sfx, 'data-testid': 'edit-name', type: 'text', maxlength: '256', value: d.name || '' });
  const key = h('input', { id: 'edit-write-key' + sfx, 'data-testid': 'edit-write-key', type: 'password', autocomplete: 'off',
    spellcheck: 'false', placeholder: 'leave empty to keep ' + (cfg.writeKey || 'the current key') });
  const region = h('select', { id: 'edit-region' + sfx, 'data-testid': 'edit-region' },
    h('option', { value: 'us', text: 'US (api.segment.io)' }), h('option', { value: 'eu', text: 'EU (events.eu1.segmentapis.com)' }));
  region.value = cfg.region === 'eu' ? 'eu' : 'us';
  const kinds = h('input', { id: 'edit-context-kinds' + sfx, 'data-testid': 'edit-context-kinds', type: 'text', spellcheck: 'false',
    placeholder: 'user', value: [cfg.userIDContextKind || '', cfg.anonymousIDContextKind || ''].filter(Boolean).join(', ') });
  if (!cfg.userIDContextKind && cfg.anonymousIDContextKind) kinds.value = 'user, ' + cfg.anonymousIDContextKind;
  const custom = h('input', { id: 'edit-include-custom-data' + sfx, 'data-testid': 'edit-include-custom-data', type: 'checkbox', checked: !!cfg.includeCustomData });
  const endpoint = h('input', { id: 'edit-endpoint' + sfx, 'data-testid': 'edit-endpoint', type: 'url', spellcheck: 'false',
    placeholder: 'empty: Segment itself', value: cfg.endpoint || '' });
  const viewed = h('input', { id: 'edit-experiment-viewed' + sfx, 'data-testid': 'edit-experiment-viewed', type: 'checkbox', checked: !!cfg.experimentViewed });
  const on = h('input', { id: 'edit-on' + sfx, 'data-testid': 'edit-on', type: 'checkbox', checked: !!d.on });
  const save = h('button', { type: 'submit', 'data-testid': 'save', text: 'Save changes' });
  const cancel = h('button', { type: 'button', 'data-testid': 'cancel-edit', text: 'Cancel' });
  const form = h('form', { class: 'edit', novalidate: true, 'data-write': true, 'aria-label': 'Edit ' + (d.name || d._id) },
    field('edit-name', 'Name', name),
    field('edit-write-key', 'New write key (optional)', key),
    field('edit-region', 'Segment region', region),
    field('edit-context-kinds', 'Context kinds (userId kind, anonymousId kind)', kinds),
    field('edit-endpoint', 'Segment-compatible endpoint (optional)', endpoint),
    h('div', { class: 'check' }, custom, h('label', { for: custom.id, text: "Include custom events' data" })),
    h('div', { class: 'check' }, viewed, h('label', { for: viewed.id, text: 'Also send "Experiment Viewed" for experiment evaluations' })),
    h('div', { class: 'check' }, on, h('label', { for: on.id, text: 'On' })),
    h('div', { class: 'actions' }, save, cancel));
  cancel.addEventListener('click', () => { form.remove(); b.setAttribute('aria-expanded', 'false'); b.focus(); });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    showMessage(error, '');
    try {
      // The test on /version makes the edit fail (409) rather than overwrite someone else's change.
      const ops = [{ op: 'test', path: '/version', value: d.version }];
      const set = (path, value) => ops.push({ op: 'replace', path, value });
      if (name.value.trim() !== (d.name || '')) set('/name', name.value.trim());
      if (key.value.trim()) set('/config/writeKey', key.value.trim());
      if (region.value !== (cfg.region || 'us')) set('/config/region', region.value);
      if (custom.checked !== !!cfg.includeCustomData) set('/config/includeCustomData', custom.checked);
      if (viewed.checked !== !!cfg.experimentViewed) set('/config/experimentViewed', viewed.checked);
      const url = endpoint.value.trim();
      if (url !== (cfg.endpoint || '')) {
        ops.push(url ? { op: 'add', path: '/config/endpoint', value: url } : { op: 'remove', path: '/config/endpoint' });
      }
      if (on.checked !== !!d.on) set('/on', on.checked);
      const [user, anon] = parseKinds(kinds.value);
      for (const [field, value] of [['userIDContextKind', user], ['anonymousIDContextKind', anon]]) {
        if (value === (cfg[field] || undefined)) continue;
        if (field === 'userIDContextKind' && !cfg[field] && value === 'user') continue; // the default, unchanged
        ops.push(value ? { op: 'add', path: '/config/' + field, value } : { op: 'remove', path: '/config/' + field });
      }
      if (ops.length === 1) { status('Nothing to change.'); cancel.click(); return; }
      await busy(save, () => api('PATCH', destPath(d), ops));
      status('Saved ' + (name.value.trim() || d._id) + '.');
      await saved();
    } catch (e) {
      showMessage(error, e.message);
    }
  });
  // Placed before the error so a failed save shows its message right below the form.
  li.insertBefore(form, error);
  b.setAttribute('aria-expanded', 'true');
  name.focus();
}

// Resolves to whether it was created.
export async function createDestination(ev) {
  ev.preventDefault();
  const error = $('add-error');
  showMessage(error, '');
  try {
    const [user, anon] = parseKinds($('new-context-kinds').value);
    const config = {
      writeKey: $('new-write-key').value.trim(), // pasted keys often carry a stray space or newline
      region: $('new-region').value,
      includeCustomData: $('new-include-custom-data').checked,
      experimentViewed: $('new-experiment-viewed').checked,
    };
    const endpoint = $('new-endpoint').value.trim();
    if (endpoint) config.endpoint = endpoint;
    if (user) config.userIDContextKind = user;
    if (anon) config.anonymousIDContextKind = anon;
    const body = { kind: 'segment', on: $('new-on').checked, config };
    const name = $('new-name').value.trim();
    if (name) body.name = name;
    const d = await busy($('create'), () => api('POST', envPath(session.env), body));
    $('add-destination').reset();
    status('Saved destination ' + (d.name || d._id) + '. Send a test event to check it in Segment’s debugger.');
    return true;
  } catch (e) {
    showMessage(error, e.message);
    return false;
  }
}
