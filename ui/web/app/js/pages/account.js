// My account: who I am, changing my own password, and my API tokens
// (create — the secret is shown once —, list, revoke).

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, formatDateTime } from '../i18n.js';
import { table, pageHeader, field, spinner, errorBox, errorText, toast, modal, rowButton, deleteConfirmed, deptChips } from '../ui.js';

export function mount(view, ctx) {
  let destroyed = false;
  const s = ctx.session;

  // ---- password
  const current = h('input', { type: 'password', required: true, autocomplete: 'current-password', 'data-testid': 'account-current' });
  const next = h('input', { type: 'password', required: true, minLength: 8, autocomplete: 'new-password', 'data-testid': 'account-new' });
  const repeat = h('input', { type: 'password', required: true, autocomplete: 'new-password', 'data-testid': 'account-repeat' });
  const passErr = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'account-password-error' });
  const passForm = h('form', { class: 'form narrow', 'data-testid': 'account-password', onsubmit: async (ev) => {
    ev.preventDefault();
    passErr.textContent = '';
    if (next.value !== repeat.value) {
      passErr.textContent = t('account.mismatch');
      return;
    }
    try {
      await api.put('/api/v1/session/password', { currentPassword: current.value, newPassword: next.value });
      // The answer set a fresh session cookie: read its CSRF token.
      await api.getSession();
      current.value = next.value = repeat.value = '';
      toast(t('account.passwordChanged'), 'ok');
      loadTokens();
    } catch (err) {
      if (err.status !== 401) passErr.textContent = errorText(err.status === 403 ? { message: err.message } : err);
    }
  } },
  field(t('account.current'), current),
  field(t('account.new'), next, t('account.newHelp')),
  field(t('account.repeat'), repeat),
  passErr,
  h('div', { class: 'form-actions' },
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'account-password-save', text: t('account.changePassword') })));

  // ---- tokens
  const tokenName = h('input', { type: 'text', required: true, maxLength: 100, placeholder: t('account.tokenName'), 'data-testid': 'token-name' });
  const tokenErr = h('p', { class: 'form-error', role: 'alert' });
  const tokenForm = h('form', { class: 'toolbar', onsubmit: async (ev) => {
    ev.preventDefault();
    tokenErr.textContent = '';
    try {
      const made = await api.post('/api/v1/tokens', { name: tokenName.value.trim() });
      tokenName.value = '';
      showSecret(made);
      loadTokens();
    } catch (err) {
      if (err.status !== 401) tokenErr.textContent = errorText(err);
    }
  } },
  tokenName,
  h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'token-create', text: t('account.createToken') }));
  const tokens = h('div', { 'data-testid': 'token-list' }, spinner());
  // Admins see the public key that signs evidence packages, to compare
  // with the one vigil verify prints for a package.
  const evidenceKey = h('dl', { class: 'facts', 'data-testid': 'evidence-key' });
  if (ctx.can('admin')) {
    api.get('/api/v1/evidence/key').then((k) => {
      if (destroyed) return;
      replace(evidenceKey,
        h('dt', { text: t('account.keyId') }), h('dd', { class: 'mono', 'data-testid': 'evidence-key-id', text: k.keyId }),
        h('dt', { text: k.algorithm }), h('dd', { class: 'mono', 'data-testid': 'evidence-key-public', text: k.publicKey }));
    }).catch((err) => { if (!destroyed && err.status !== 401) replace(evidenceKey, errorBox(err)); });
  }

  replace(view, h('section', { class: 'page', 'data-testid': 'account' },
    pageHeader(t('account.title')),
    h('dl', { class: 'facts' },
      h('dt', { text: t('account.username') }), h('dd', { 'data-testid': 'account-username', text: s.username }),
      h('dt', { text: t('account.role') }), h('dd', { text: t('role.' + s.role) }),
      h('dt', { text: t('account.departments') }), h('dd', {}, deptChips(ctx.departments, s.departments))),
    h('h2', { text: t('account.passwordTitle') }),
    h('p', { class: 'muted page-help', text: t('account.passwordHelp') }),
    passForm,
    h('h2', { text: t('account.tokensTitle') }),
    h('p', { class: 'muted page-help', text: t('account.tokensHelp') }),
    tokenForm, tokenErr, tokens,
    ctx.can('admin') ? [h('h2', { text: t('account.evidenceKeyTitle') }), h('p', { class: 'muted page-help', text: t('account.evidenceKeyHelp') }), evidenceKey] : null));

  function showSecret(made) {
    const secret = h('input', { type: 'text', readOnly: true, value: made.token, 'data-testid': 'token-secret', class: 'mono' });
    const copy = h('button', { type: 'button', class: 'btn', text: t('account.copy'), onclick: async () => {
      secret.select();
      try {
        await navigator.clipboard.writeText(made.token);
        toast(t('account.copied'), 'ok');
      } catch {
        // the selected text can be copied by hand
      }
    } });
    const m = modal(t('account.tokenMade', { name: made.name }), [
      h('p', { class: 'muted', text: t('account.tokenOnce') }),
      h('div', { class: 'toolbar' }, secret, copy),
      h('div', { class: 'form-actions' }, h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'token-secret-done', text: t('common.close'), onclick: () => m.close() })),
    ], { testid: 'token-dialog' });
    secret.select();
  }

  async function loadTokens() {
    try {
      const list = api.list(await api.get('/api/v1/tokens'), 'tokens').filter((x) => x.user === s.username)
        .sort((a, b) => new Date(b.created) - new Date(a.created));
      if (destroyed) return;
      replace(tokens, table([
        { title: t('account.tokenName'), cell: (x) => h('strong', { text: x.name }) },
        { title: t('account.tokenCreated'), cell: (x) => formatDateTime(x.created) },
        { title: t('account.tokenUsed'), cell: (x) => (x.lastUsed ? formatDateTime(x.lastUsed) : t('account.never')) },
        { title: '', class: 'actions', cell: (x) => h('div', { class: 'row-actions' },
          rowButton('token-revoke', t('account.revoke'), () => revoke(x), { danger: true })) },
      ], list, { empty: t('account.noTokens'), rowAttrs: (x) => ({ 'data-token-id': x.id, 'data-testid': 'token-row' }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(tokens, errorBox(err));
    }
  }

  async function revoke(x) {
    if (await deleteConfirmed(t('account.confirmRevoke', { name: x.name }), () => api.del(`/api/v1/tokens/${encodeURIComponent(x.id)}`),
      t('account.revoked', { name: x.name }))) loadTokens();
  }

  loadTokens();
  return () => { destroyed = true; };
}
