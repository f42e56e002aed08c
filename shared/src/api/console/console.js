// Console for the Data Export to Segment management API (LaunchDarkly's v2 paths), the
// module the page loads: sign-in and sign-out, picking the environment, and the wiring.
// Plain DOM code in ES modules, no build step: the server embeds these files and serves
// them under a strict Content-Security-Policy, so nothing here uses inline styles,
// HTML strings or eval.
import { $, h, showMessage, status } from './dom.js';
import { api, applyAccess, busy, envOf, firstPage, nextPage, settingsPath } from './api.js';
import { forget, keepToken, savedEnv, savedToken, session, showEnv } from './session.js';
import { fetchDestinations, reloadDestinations, renderDestinations } from './destinations.js';
import { createDestination } from './edit.js';
import { cancelDelete, confirmDelete, forgetDelete } from './delete.js';
import { addFlag, renderSettings, setAllFlags } from './settings.js';

function showSignedIn(signedIn) {
  $('sign-in-section').hidden = signedIn;
  $('app').hidden = !signedIn;
  $('sign-out').hidden = !signedIn;
  if (!signedIn) $('access').hidden = true;
}

async function signIn(candidate) {
  session.token = candidate;
  // The first page checks the token; the rest of the picks load behind.
  const first = await api('GET', firstPage('/api/v2/destinations'));
  keepToken();
  showSignedIn(true);
  loadPicks(first).catch(() => { /* picks are a convenience */ });
  const saved = savedEnv();
  if (saved) {
    $('project').value = saved.project;
    $('environment').value = saved.environment;
    await loadEnvironment();
  }
}

function signOut() {
  picksRun++;
  forget();
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

// The environments of every destination, from the first page already read, page after
// page (each rendered as it comes); a newer load or a sign-out stops an older one.
let picksRun = 0;
async function loadPicks(first) {
  const run = ++picksRun;
  let items = (first && first.items) || [];
  renderPicks(items);
  for (let next = nextPage(first); next && run === picksRun; ) {
    const page = await api('GET', next);
    if (run !== picksRun) return;
    items = items.concat((page && page.items) || []);
    renderPicks(items);
    next = nextPage(page);
  }
}

async function refreshPicks() {
  try { await loadPicks(await api('GET', firstPage('/api/v2/destinations'))); } catch (_) { /* picks are a convenience */ }
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
    showEnv(next);
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
    session.token = null;
    showMessage($('sign-in-error'), e.message);
  }
});
$('sign-out').addEventListener('click', signOut);
$('env-form').addEventListener('submit', (ev) => { ev.preventDefault(); loadEnvironment(); });
$('refresh').addEventListener('click', reloadDestinations);
$('add-destination').addEventListener('submit', async (ev) => {
  if (!(await createDestination(ev))) return;
  await reloadDestinations();
  refreshPicks();
});
$('confirm-delete').addEventListener('click', async () => {
  if (!(await confirmDelete())) return;
  await reloadDestinations();
  $('destinations-heading').focus();
  refreshPicks();
});
$('cancel-delete').addEventListener('click', cancelDelete);
$('confirm-dialog').addEventListener('close', forgetDelete);
$('all-flags').addEventListener('change', setAllFlags);
$('add-flag-form').addEventListener('submit', addFlag);

// A token kept from earlier in this tab signs in again without asking.
const saved = savedToken();
if (saved) {
  signIn(saved).catch((e) => {
    signOut();
    showMessage($('sign-in-error'), e.message);
  });
}
