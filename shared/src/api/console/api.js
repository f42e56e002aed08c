// The management API (LaunchDarkly's v2 paths) as the console calls it.
import { $ } from './dom.js';
import { session } from './session.js';

// The page is served at <base>/console; the API lives under <base>/api/v2.
const API = location.pathname.replace(/\/console\/?$/, '');
// Deployed, one API base serves every path. Under `cargo lambda watch` each function has its
// own prefix, and test events are answered by the test-event function, not destinations.
export const TEST_API = API.replace(/\/lambda-url\/destinations$/, '/lambda-url/test-event');

const enc = encodeURIComponent;
export const envPath = (env) => '/api/v2/destinations/' + enc(env.project) + '/' + enc(env.environment);
export const destPath = (d) => envPath(session.env) + '/' + enc(d._id);
export const settingsPath = (env) => '/api/v2/data-export/' + enc(env.project) + '/' + enc(env.environment);
// JSON Pointer escaping (RFC 6901) for a flag key used as a path segment.
export const pointer = (s) => s.replace(/~/g, '~0').replace(/\//g, '~1');

// Destinations name their environment only in _links.self.href: /api/v2/destinations/{p}/{e}/{id}.
export function envOf(d) {
  const href = (d._links && d._links.self && d._links.self.href) || '';
  const m = href.match(/\/api\/v2\/destinations\/([^/]+)\/([^/]+)\/[^/]+$/);
  return m ? { project: decodeURIComponent(m[1]), environment: decodeURIComponent(m[2]) } : null;
}

// Lists come a page at a time (README, "Pages"): the console asks for the largest pages
// and follows each page's _links.next (relative to the API's base) while there is one.
export const PAGE_LIMIT = 50;
export const firstPage = (path) => path + '?limit=' + PAGE_LIMIT;
export const nextPage = (page) => (page && page._links && page._links.next && page._links.next.href) || null;

// Every item of a list, page after page; onPage, if given, gets the items so far after each.
export async function listAll(path, onPage) {
  let items = [];
  for (let next = firstPage(path); next; ) {
    const page = await api('GET', next);
    items = items.concat((page && page.items) || []);
    if (onPage) onPage(items);
    next = nextPage(page);
  }
  return items;
}

export class ApiError extends Error {
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
export async function api(method, path, body, base) {
  const headers = { Authorization: session.token, Accept: 'application/json' };
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
export async function busy(button, fn) {
  if (button) button.disabled = true;
  try { return await fn(); } finally { if (button) button.disabled = false; applyAccess(); }
}

function setAccess(ro) {
  session.readOnly = ro;
  const el = $('access');
  el.textContent = ro ? 'read-only token: changes are disabled' : 'read-write token';
  el.classList.toggle('read-only', ro);
  el.hidden = false;
  applyAccess();
}

// Hides write controls (data-write) and disables state-showing ones (data-write-disable).
export function applyAccess() {
  document.querySelectorAll('[data-write]').forEach((el) => { el.hidden = session.readOnly; });
  document.querySelectorAll('[data-write-disable]').forEach((el) => { el.disabled = session.readOnly; });
}
