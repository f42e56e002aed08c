// Building elements and showing messages. Elements are built node by node, never from HTML
// strings: the Content-Security-Policy and the data shown (names, keys, Segment's answers)
// both call for that.

export const $ = (id) => document.getElementById(id);

// Builds an element; attrs with value null/false are skipped, children may be strings.
export function h(tag, attrs, ...children) {
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

export function showMessage(el, text) {
  el.textContent = text || '';
  el.hidden = !text;
}

export function status(text) {
  $('status').textContent = text;
}

export function timeEl(ms) {
  if (typeof ms !== 'number' || !isFinite(ms)) return 'an unknown time';
  const d = new Date(ms);
  return h('time', { datetime: d.toISOString(), text: d.toLocaleString() });
}
