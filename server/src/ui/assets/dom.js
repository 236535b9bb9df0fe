// Building the page safely. Everything from the server becomes text nodes, never markup, and
// the fields people could be fooled by (event types, principals, content types) go through
// escapedText, which shows invisible, bidirectional and control characters as visible \u{...}
// escapes: leaf-envelope.md section 3 warns that "user" U+202E "nigol" displays as "userlogin".

/**
 * Creates an element. `attrs`: `class`, `text`, `on` ({event: handler}), `data` ({key: value}),
 * booleans (true sets, false omits), anything else as an attribute. Children: nodes or strings
 * (strings become text nodes); null and false are skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'data') for (const [dk, dv] of Object.entries(v)) el.dataset[dk] = dv;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, ...children);
  return el;
}

export function append(el, ...children) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function clear(el) {
  el.replaceChildren();
  return el;
}

/**
 * Characters shown escaped: control (Cc), format (Cf: bidi embeddings, overrides and isolates
 * U+202A-U+202E and U+2066-U+2069, zero-width U+200B-U+200F, soft hyphen U+00AD, BOM U+FEFF, tags),
 * private-use, unassigned and surrogate code points, line and paragraph separators, spaces other
 * than U+0020, and other invisible fillers and variation selectors.
 */
const SUSPICIOUS =
  /[\p{Cc}\p{Cf}\p{Co}\p{Cn}\p{Cs}\p{Zl}\p{Zp}\u00a0\u034f\u115f\u1160\u1680\u17b4\u17b5\u180b-\u180f\u2000-\u200a\u202f\u205f\u3000\u3164\uffa0\ufe00-\ufe0f\u{e0100}-\u{e01ef}]/gu;

const NAMES = {
  0x00ad: 'SOFT HYPHEN',
  0x200b: 'ZERO WIDTH SPACE',
  0x200c: 'ZERO WIDTH NON-JOINER',
  0x200d: 'ZERO WIDTH JOINER',
  0x200e: 'LEFT-TO-RIGHT MARK',
  0x200f: 'RIGHT-TO-LEFT MARK',
  0x202a: 'LEFT-TO-RIGHT EMBEDDING',
  0x202b: 'RIGHT-TO-LEFT EMBEDDING',
  0x202c: 'POP DIRECTIONAL FORMATTING',
  0x202d: 'LEFT-TO-RIGHT OVERRIDE',
  0x202e: 'RIGHT-TO-LEFT OVERRIDE',
  0x2066: 'LEFT-TO-RIGHT ISOLATE',
  0x2067: 'RIGHT-TO-LEFT ISOLATE',
  0x2068: 'FIRST STRONG ISOLATE',
  0x2069: 'POP DIRECTIONAL ISOLATE',
  0xfeff: 'ZERO WIDTH NO-BREAK SPACE (BOM)',
};

/** The escape shown for one code point: \u{202E}. */
export function escapeCodePoint(cp) {
  return `\\u{${cp.toString(16).toUpperCase().padStart(4, '0')}}`;
}

/**
 * A span showing `s` with every suspicious character replaced by a highlighted \u{...} escape, in
 * an isolated left-to-right run. `null` shows as a muted "none". With `multiline`, line feeds and
 * tabs stay as they are (for payloads shown in a <pre>).
 */
export function escapedText(s, { multiline = false } = {}) {
  if (s === null || s === undefined) return h('span', { class: 'muted' }, 'none');
  const str = String(s);
  const out = h('span', { class: 'field-text', dir: 'ltr' });
  let last = 0;
  for (const m of str.matchAll(SUSPICIOUS)) {
    if (multiline && (m[0] === '\n' || m[0] === '\t')) continue;
    if (m.index > last) out.append(str.slice(last, m.index));
    const cp = m[0].codePointAt(0);
    const name = NAMES[cp] ?? 'invisible or control character';
    const label = `U+${cp.toString(16).toUpperCase().padStart(4, '0')} ${name}`;
    out.append(h('span', { class: 'esc', title: label, 'aria-label': label }, escapeCodePoint(cp)));
    last = m.index + m[0].length;
  }
  if (last < str.length) out.append(str.slice(last));
  return out;
}

/** A millisecond timestamp as UTC, to the millisecond (or, with `seconds`, to the second). */
export function fmtTime(ms, { seconds = false } = {}) {
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return String(ms);
  const iso = d.toISOString().replace('T', ' ').replace('Z', '');
  return `${seconds ? iso.slice(0, 19) : iso} UTC`;
}

export function fmtBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function fmtCount(n) {
  return Number(n).toLocaleString('en-US');
}

/** A monospace hash or key that wraps anywhere. */
export function mono(s) {
  return h('code', { class: 'mono' }, s);
}

const STATE_TEXT = { ok: 'ok', failed: 'failed', warn: 'warning', skipped: 'skipped', info: 'info', pending: 'checking' };

export function badge(state, text = STATE_TEXT[state] ?? state) {
  return h('span', { class: `badge badge-${state}` }, text);
}

/** A definition list of [label, value] rows. */
export function fields(rows) {
  const dl = h('dl', { class: 'fields' });
  for (const [label, value] of rows) {
    if (value === undefined) continue;
    dl.append(h('dt', {}, label), h('dd', {}, value));
  }
  return dl;
}

export function card(title, ...children) {
  return h('section', { class: 'card' }, title ? h('h2', {}, title) : null, ...children);
}

/** An error message box (role=alert, so screen readers announce it). */
export function errorBox(err) {
  return h('div', { class: 'alert alert-error', role: 'alert' }, err?.message ?? String(err));
}

export function note(text, cls = 'muted') {
  return h('p', { class: cls }, text);
}

/** A labelled form field: label, control and an optional hint under it. */
export function field(id, label, control, hint) {
  control.id = id;
  return h(
    'div',
    { class: 'form-field' },
    h('label', { for: id }, label),
    control,
    hint ? h('small', { class: 'muted' }, hint) : null,
  );
}

/** A <input type=datetime-local> value (local time) as milliseconds since the epoch, or ''. */
export function localInputToMs(value) {
  if (!value) return '';
  const ms = new Date(value).getTime();
  return Number.isNaN(ms) ? '' : ms;
}

/** Milliseconds as a <input type=datetime-local> value in local time. */
export function msToLocalInput(ms) {
  if (ms === '' || ms === null || ms === undefined) return '';
  const d = new Date(Number(ms));
  if (Number.isNaN(d.getTime())) return '';
  const local = new Date(d.getTime() - d.getTimezoneOffset() * 60000);
  return local.toISOString().slice(0, 19);
}

/** A view's heading; focusable from script so the router can move focus to it. */
export function heading(text, ...extra) {
  return h('div', { class: 'view-head' }, h('h1', { tabindex: '-1' }, text), ...extra);
}
