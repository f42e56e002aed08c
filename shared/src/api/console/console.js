// Console for the Data Export to Segment management API (LaunchDarkly's v2 paths).
// Plain DOM code, no build step: the server embeds this file and serves it under a strict
// Content-Security-Policy, so nothing here uses inline styles, innerHTML or eval.
'use strict';

(function () {
  // The page is served at <base>/console; the API lives under <base>/api/v2.
  const API = location.pathname.replace(/\/console\/?$/, '');
  // Deployed, one API base serves every path. Under `cargo lambda watch` each function has its
  // own prefix, and test events are answered by the test-event function, not destinations.
  const TEST_API = API.replace(/\/lambda-url\/destinations$/, '/lambda-url/test-event');
  const TOKEN_KEY = 'data-export-console.token';
  const ENV_KEY = 'data-export-console.env';
  const HOUR = 3600 * 1000;

  const $ = (id) => document.getElementById(id);
  let token = null;
  let readOnly = false;
  let current = null; // {project, environment} being shown
  let pendingDelete = null; // destination awaiting confirmation
  // [destination id, data-testid] of the button to focus once the list is rebuilt: the
  // button that started the action, since a disabled (busy) button may have lost focus.
  let focusAfterRender = null;

  // ---- small helpers -------------------------------------------------------------------

  // Builds an element; attrs with value null/false are skipped, children may be strings.
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') el.textContent = v;
      else if (k === 'checked' || k === 'value' || k === 'hidden' || k === 'disabled') el[k] = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of children.flat()) {
      if (c !== null && c !== undefined && c !== false) el.append(c);
    }
    return el;
  }

  function showMessage(el, text) {
    el.textContent = text || '';
    el.hidden = !text;
  }

  function status(text) {
    $('status').textContent = text;
  }

  function timeEl(ms) {
    if (typeof ms !== 'number' || !isFinite(ms)) return 'an unknown time';
    const d = new Date(ms);
    return h('time', { datetime: d.toISOString(), text: d.toLocaleString() });
  }

  const enc = encodeURIComponent;
  // JSON Pointer escaping (RFC 6901) for a flag key used as a path segment.
  const pointer = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

  class ApiError extends Error {
    constructor(status, body, fallback) {
      const message = body && typeof body.message === 'string' ? body.message : fallback;
      super(message);
      this.status = status;
      this.code = body && body.code;
      this.body = body || {};
    }
  }

  // One API call. The token goes in Authorization as is (the API also accepts "Bearer").
  // Every answer may say what the token may do (X-Access), which drives read-only mode.
  async function api(method, path, body, base) {
    const headers = { Authorization: token, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let res;
    try {
      res = await fetch((base === undefined ? API : base) + path, {
        method, headers, cache: 'no-store', credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, null, 'Could not reach the API (' + e.message + '). Check your connection and retry.');
    }
    const access = res.headers.get('X-Access');
    if (access) setAccess(access === 'read-only');
    const text = await res.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
    // Only a read-only token gets the API's own 403 (code "forbidden"), even without X-Access.
    if (res.status === 403 && data && data.code === 'forbidden') setAccess(true);
    if (!res.ok) throw new ApiError(res.status, data, 'The API answered HTTP ' + res.status + '.');
    return data;
  }

  // Runs a write, with its submit button disabled so a double click does not send it twice.
  async function busy(button, fn) {
    if (button) button.disabled = true;
    try { return await fn(); } finally { if (button) button.disabled = false; applyAccess(); }
  }

  // ---- access: sign-in, sign-out, read-only --------------------------------------------

  function setAccess(ro) {
    readOnly = ro;
    const el = $('access');
    el.textContent = ro ? 'read-only token: changes are disabled' : 'read-write token';
    el.classList.toggle('read-only', ro);
    el.hidden = false;
    applyAccess();
  }

  // Hides write controls (data-write) and disables state-showing ones (data-write-disable).
  function applyAccess() {
    document.querySelectorAll('[data-write]').forEach((el) => { el.hidden = readOnly; });
    document.querySelectorAll('[data-write-disable]').forEach((el) => { el.disabled = readOnly; });
  }

  function showSignedIn(signedIn) {
    $('sign-in-section').hidden = signedIn;
    $('app').hidden = !signedIn;
    $('sign-out').hidden = !signedIn;
    if (!signedIn) $('access').hidden = true;
  }

  async function signIn(candidate) {
    token = candidate;
    const list = await api('GET', '/api/v2/destinations');
    sessionStorage.setItem(TOKEN_KEY, token);
    showSignedIn(true);
    renderPicks(list.items || []);
    const saved = JSON.parse(sessionStorage.getItem(ENV_KEY) || 'null');
    if (saved) {
      $('project').value = saved.project;
      $('environment').value = saved.environment;
      await loadEnvironment();
    }
  }

  function signOut() {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(ENV_KEY);
    token = null;
    current = null;
    readOnly = false;
    applyAccess();
    for (const id of ['destinations', 'flags', 'env-picks']) $(id).replaceChildren();
    for (const id of ['token', 'project', 'environment', 'flag-key']) $(id).value = '';
    $('add-destination').reset();
    document.querySelectorAll('.error').forEach((el) => showMessage(el, ''));
    status('');
    $('env-view').hidden = true;
    showSignedIn(false);
    $('token').focus();
  }

  // ---- environments ---------------------------------------------------------------------

  // Destinations name their environment only in _links.self.href: /api/v2/destinations/{p}/{e}/{id}.
  function envOf(d) {
    const href = (d._links && d._links.self && d._links.self.href) || '';
    const m = href.match(/\/api\/v2\/destinations\/([^/]+)\/([^/]+)\/[^/]+$/);
    return m ? { project: decodeURIComponent(m[1]), environment: decodeURIComponent(m[2]) } : null;
  }

  function renderPicks(items) {
    const seen = new Map();
    for (const d of items) {
      const env = envOf(d);
      if (env) seen.set(env.project + '\u0000' + env.environment, env);
    }
    const picks = [...seen.values()].sort((a, b) =>
      a.project.localeCompare(b.project) || a.environment.localeCompare(b.environment));
    $('env-picks').replaceChildren(...picks.map((env) => {
      const b = h('button', { type: 'button', 'data-testid': 'env-pick', text: env.project + ' / ' + env.environment });
      b.addEventListener('click', () => {
        $('project').value = env.project;
        $('environment').value = env.environment;
        loadEnvironment();
      });
      return h('li', {}, b);
    }));
    $('picks-empty').hidden = picks.length > 0;
  }

  async function refreshPicks() {
    try { renderPicks((await api('GET', '/api/v2/destinations')).items || []); } catch (_) { /* picks are a convenience */ }
  }

  async function loadEnvironment() {
    const project = $('project').value.trim();
    const environment = $('environment').value.trim();
    showMessage($('env-error'), '');
    if (!project || !environment) {
      showMessage($('env-error'), 'Enter both a project key and an environment key.');
      return;
    }
    const next = { project, environment };
    try {
      const [items, settings] = await busy($('load'), () => Promise.all([
        fetchDestinations(next), api('GET', settingsPath(next)),
      ]));
      current = next;
      sessionStorage.setItem(ENV_KEY, JSON.stringify(current));
      $('destinations-heading').textContent = 'Segment destinations in ' + project + ' / ' + environment;
      $('settings-heading').textContent = 'Data Export for flags in ' + project + ' / ' + environment;
      for (const id of ['destinations-error', 'add-error', 'settings-error']) showMessage($(id), '');
      $('env-view').hidden = false;
      renderDestinations(items);
      renderSettings(settings);
      status('Loaded ' + project + ' / ' + environment + '.');
    } catch (e) {
      showMessage($('env-error'), e.message);
    }
  }

  // ---- destinations ---------------------------------------------------------------------

  const envPath = (env) => '/api/v2/destinations/' + enc(env.project) + '/' + enc(env.environment);
  const destPath = (d) => envPath(current) + '/' + enc(d._id);
  const settingsPath = (env) => '/api/v2/data-export/' + enc(env.project) + '/' + enc(env.environment);

  async function fetchDestinations(env) {
    try {
      return (await api('GET', envPath(env))).items || [];
    } catch (e) {
      // A server without GET on the environment path: filter the full list instead.
      if (e.status !== 405) throw e;
      const all = (await api('GET', '/api/v2/destinations')).items || [];
      return all.filter((d) => {
        const de = envOf(d);
        return de && de.project === env.project && de.environment === env.environment;
      });
    }
  }

  async function reloadDestinations() {
    showMessage($('destinations-error'), '');
    try {
      renderDestinations(await busy($('refresh'), () => fetchDestinations(current)));
    } catch (e) {
      showMessage($('destinations-error'), e.message);
    }
  }

  function renderDestinations(items) {
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
        fact('Write key', h('code', { text: cfg.writeKey || '' })),
        fact('Custom event data', cfg.includeCustomData ? 'included' : 'not sent')),
      deliveryStatus(d._delivery));
    const actions = h('div', { class: 'actions' },
      button('toggle', d.on ? 'Turn off' : 'Turn on', (b) => toggle(d, b, error)),
      button('edit', 'Edit', (b) => openEdit(li, d, b, error), { 'aria-expanded': 'false' }),
      button('test', 'Send test event', (b) => sendTest(d, b, result, error)),
      button('delete', 'Delete', (b) => askDelete(d, b), { class: 'danger' }));
    li.append(actions, result, error);
    return li;
  }

  // Delivery status from _delivery (absent from answers that do not carry it: the list of
  // every environment, a create or a patch).
  function deliveryStatus(delivery) {
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

  // "user, device" → ['user', 'device']; the first is userIDContextKind, the second anonymousIDContextKind.
  // Positional, so ", device" sets only the anonymousId kind.
  function parseKinds(text) {
    const parts = text.split(',').map((s) => s.trim());
    if (parts.length > 2) throw new ApiError(0, null, 'Context kinds: give at most two, the userId kind then the anonymousId kind.');
    return [parts[0] || undefined, parts[1] || undefined];
  }

  // Fields shared by the add and edit forms, in the edit form (ids suffixed by the destination id).
  function openEdit(li, d, b, error) {
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
    const on = h('input', { id: 'edit-on' + sfx, 'data-testid': 'edit-on', type: 'checkbox', checked: !!d.on });
    const save = h('button', { type: 'submit', 'data-testid': 'save', text: 'Save changes' });
    const cancel = h('button', { type: 'button', 'data-testid': 'cancel-edit', text: 'Cancel' });
    const form = h('form', { class: 'edit', novalidate: true, 'data-write': true, 'aria-label': 'Edit ' + (d.name || d._id) },
      field('edit-name', 'Name', name),
      field('edit-write-key', 'New write key (optional)', key),
      field('edit-region', 'Segment region', region),
      field('edit-context-kinds', 'Context kinds (userId kind, anonymousId kind)', kinds),
      h('div', { class: 'check' }, custom, h('label', { for: custom.id, text: "Include custom events' data" })),
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
        if (on.checked !== !!d.on) set('/on', on.checked);
        const [user, anon] = parseKinds(kinds.value);
        for (const [field, value] of [['userIDContextKind', user], ['anonymousIDContextKind', anon]]) {
          if (value === (cfg[field] || undefined)) continue;
          if (field === 'userIDContextKind' && !cfg[field] && value === 'user') continue; // the default, unchanged
          ops.push(value ? { op: 'add', path: '/config/' + field, value } : { op: 'remove', path: '/config/' + field });
        }
        if (ops.length === 1) { status('Nothing to change.'); cancel.click(); return; }
        await busy(save, () => api('PATCH', destPath(d), ops));
        focusAfterRender = [d._id, 'edit'];
        status('Saved ' + (name.value.trim() || d._id) + '.');
        await reloadDestinations();
      } catch (e) {
        showMessage(error, e.message);
      }
    });
    // Placed before the error so a failed save shows its message right below the form.
    li.insertBefore(form, error);
    b.setAttribute('aria-expanded', 'true');
    name.focus();
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

  function askDelete(d, b) {
    pendingDelete = { d, button: b };
    $('confirm-text').textContent = 'Delete “' + (d.name || d._id) + '”? Events stop going to its Segment source. This cannot be undone.';
    showMessage($('confirm-error'), '');
    const dialog = $('confirm-dialog');
    if (typeof dialog.showModal === 'function') dialog.showModal(); else dialog.setAttribute('open', '');
    $('cancel-delete').focus();
  }

  function closeDialog() {
    const dialog = $('confirm-dialog');
    if (typeof dialog.close === 'function' && dialog.open) dialog.close(); else dialog.removeAttribute('open');
  }

  async function confirmDelete() {
    if (!pendingDelete) return;
    const { d } = pendingDelete;
    showMessage($('confirm-error'), '');
    try {
      await busy($('confirm-delete'), () => api('DELETE', destPath(d)));
      pendingDelete = null;
      closeDialog();
      status('Deleted ' + (d.name || d._id) + '.');
      await reloadDestinations();
      $('destinations-heading').focus();
      refreshPicks();
    } catch (e) {
      showMessage($('confirm-error'), e.message);
    }
  }

  async function createDestination(ev) {
    ev.preventDefault();
    const error = $('add-error');
    showMessage(error, '');
    try {
      const [user, anon] = parseKinds($('new-context-kinds').value);
      const config = {
        writeKey: $('new-write-key').value.trim(), // pasted keys often carry a stray space or newline
        region: $('new-region').value,
        includeCustomData: $('new-include-custom-data').checked,
      };
      if (user) config.userIDContextKind = user;
      if (anon) config.anonymousIDContextKind = anon;
      const body = { kind: 'segment', on: $('new-on').checked, config };
      const name = $('new-name').value.trim();
      if (name) body.name = name;
      const d = await busy($('create'), () => api('POST', envPath(current), body));
      $('add-destination').reset();
      status('Saved destination ' + (d.name || d._id) + '. Send a test event to check it in Segment’s debugger.');
      await reloadDestinations();
      refreshPicks();
    } catch (e) {
      showMessage(error, e.message);
    }
  }

  // ---- Data Export settings -------------------------------------------------------------

  function renderSettings(s) {
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
      renderSettings(await busy(control, () => api('PATCH', settingsPath(current), ops)));
      status(done);
      return true;
    } catch (e) {
      showMessage($('settings-error'), e.message);
      return false;
    }
  }

  // ---- wiring ---------------------------------------------------------------------------

  $('sign-in-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const candidate = $('token').value.trim();
    showMessage($('sign-in-error'), '');
    if (!candidate) { showMessage($('sign-in-error'), 'Paste an API token first.'); return; }
    try {
      await busy($('sign-in'), () => signIn(candidate));
      $('token').value = '';
      $('project').focus();
    } catch (e) {
      token = null;
      showMessage($('sign-in-error'), e.message);
    }
  });
  $('sign-out').addEventListener('click', signOut);
  $('env-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadEnvironment(); });
  $('refresh').addEventListener('click', reloadDestinations);
  $('add-destination').addEventListener('submit', createDestination);
  $('confirm-delete').addEventListener('click', confirmDelete);
  $('cancel-delete').addEventListener('click', () => {
    const b = pendingDelete && pendingDelete.button;
    pendingDelete = null;
    closeDialog();
    if (b) b.focus();
  });
  // Escape closes a modal dialog natively: forget the pending deletion then too.
  $('confirm-dialog').addEventListener('close', () => { pendingDelete = null; });
  $('all-flags').addEventListener('change', async () => {
    const box = $('all-flags');
    const want = box.checked;
    const ok = await patchSettings([{ op: 'replace', path: '/allFlags', value: want }], box,
      want ? 'Exporting every flag of this environment.' : 'Exporting only the flags listed.');
    if (!ok) box.checked = !want;
  });
  $('add-flag-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const key = $('flag-key').value.trim();
    if (!key) { showMessage($('settings-error'), 'Enter a flag key.'); return; }
    if (await patchSettings([{ op: 'add', path: '/flags/' + pointer(key), value: true }], $('add-flag'), 'Exporting flag ' + key + '.')) {
      $('flag-key').value = '';
    }
  });

  // A token kept from earlier in this tab signs in again without asking.
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    signIn(saved).catch((e) => {
      signOut();
      showMessage($('sign-in-error'), e.message);
    });
  }
})();
