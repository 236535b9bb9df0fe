// Settings: the bearer token (sessionStorage: this tab only, never in a URL), the pinned log key
// and the pinned witness policy (localStorage: public values), and the remembered checkpoints.

import * as api from './api.js';
import * as v from './verify.js';
import { h, heading, card, field, note, errorBox } from './dom.js';

export async function render({ root, rerender }) {
  root.append(heading('Settings'), tokenCard(rerender), keyCard(rerender), policyCard(rerender), checkpointsCard(rerender));
}

function tokenCard(rerender) {
  const input = h('input', { type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: api.getToken() ? '•••••• (a token is set)' : 'stk_… or a JWT' });
  const form = h('form', {
    class: 'stack', on: {
      submit: (e) => {
        e.preventDefault();
        api.setToken(input.value.trim());
        input.value = '';
        rerender();
      },
    },
  },
  field('settings-token', 'Bearer token', input, 'Kept in this tab only (sessionStorage), sent only in the Authorization header of API calls, never in a URL.'),
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'btn', id: 'settings-token-save' }, 'Use this token'),
    h('button', { type: 'button', class: 'btn btn-quiet', on: { click: () => { api.setToken(''); rerender(); } } }, 'Forget the token'),
    h('span', { class: 'form-result' }, api.getToken() ? h('span', { class: 'badge badge-ok' }, 'a token is set') : h('span', { class: 'badge badge-skipped' }, 'no token: anonymous'))));
  return card('Access', form);
}

function keyCard(rerender) {
  const input = h('input', { type: 'text', autocomplete: 'off', spellcheck: 'false', class: 'mono', value: api.getPinnedKey(), placeholder: 'name+keyid+base64 key' });
  const error = h('div', {});
  const form = h('form', {
    class: 'stack', on: {
      submit: async (e) => {
        e.preventDefault();
        const vkey = input.value.trim();
        try {
          if (vkey) await v.parseVkey(vkey);
          api.setPinnedKey(vkey);
          rerender();
        } catch (err) {
          error.replaceChildren(errorBox(new Error(`Not a valid Ed25519 verifier key: ${err.message}`)));
        }
      },
    },
  },
  field('settings-vkey', 'Pinned log key (vkey)', input, 'Checkpoints must be signed by this key; if the server announces another, verification fails. Get it from the log operator, or pin the announced one on the Overview.'),
  error,
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'btn' }, 'Pin this key'),
    h('button', { type: 'button', class: 'btn btn-quiet', on: { click: () => { api.setPinnedKey(''); rerender(); } } }, 'Unpin')));
  return card('Log key', form);
}

function policyCard(rerender) {
  const input = h('textarea', { rows: '6', spellcheck: 'false', class: 'mono' });
  input.value = api.getPinnedPolicy();
  const error = h('div', {});
  const form = h('form', {
    class: 'stack', on: {
      submit: async (e) => {
        e.preventDefault();
        let text = input.value.replace(/\r\n/g, '\n');
        if (text.trim() && !text.endsWith('\n')) text += '\n';
        try {
          if (text.trim()) await v.parsePolicy(text);
          api.setPinnedPolicy(text.trim() ? text : '');
          rerender();
        } catch (err) {
          error.replaceChildren(errorBox(new Error(`Not a valid tlog-policy: ${err.message}`)));
        }
      },
    },
  },
  field('settings-policy', 'Pinned witness policy (tlog-policy)', input, 'When set, checkpoints need this quorum of witness cosignatures, whatever policy the server announces. Empty: the server\'s policy is used.'),
  error,
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'btn' }, 'Pin this policy'),
    h('button', { type: 'button', class: 'btn btn-quiet', on: { click: () => { api.setPinnedPolicy(''); rerender(); } } }, 'Use the server\'s policy')));
  return card('Witness policy', form);
}

function checkpointsCard(rerender) {
  const n = api.rememberedCheckpoints().length;
  return card('Remembered checkpoints',
    note(`${n} verified ${n === 1 ? 'checkpoint is' : 'checkpoints are'} remembered in this browser for consistency checks.`, ''),
    h('div', { class: 'form-actions' },
      h('a', { href: '#/consistency', class: 'btn btn-quiet' }, 'Check consistency'),
      h('button', { type: 'button', class: 'btn btn-quiet', on: { click: () => { api.forgetCheckpoints(); rerender(); } } }, 'Forget them')));
}
