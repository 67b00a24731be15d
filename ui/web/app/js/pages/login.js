// Login page.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';
import { errorText } from '../ui.js';

export function mount(root, ctx) {
  const user = h('input', { name: 'username', autocomplete: 'username', required: true, 'data-testid': 'login-username', autofocus: true });
  const pass = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, 'data-testid': 'login-password' });
  const err = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'login-error' });
  const submit = h('button', { type: 'submit', class: 'btn btn-primary btn-block', 'data-testid': 'login-submit', text: t('login.submit') });
  const expired = ctx.params.get('expired') ? h('div', { class: 'notice', text: t('login.expired') }) : null;

  const form = h('form', { class: 'login-form', 'data-testid': 'login-form', onsubmit: async (ev) => {
    ev.preventDefault();
    err.textContent = '';
    submit.disabled = true;
    try {
      const s = await api.login(user.value.trim(), pass.value);
      await ctx.onLogin(s);
    } catch (e) {
      err.textContent = e.status === 401 || e.status === 400 ? t('login.failed') : errorText(e);
      pass.select();
    } finally {
      submit.disabled = false;
    }
  } },
  expired,
  h('label', { class: 'field' }, h('span', { class: 'field-label', text: t('login.username') }), user),
  h('label', { class: 'field' }, h('span', { class: 'field-label', text: t('login.password') }), pass),
  err,
  submit);

  replace(root, h('div', { class: 'login-page', 'data-testid': 'login-page' },
    h('div', { class: 'login-card' },
      h('div', { class: 'login-brand' }, h('span', { class: 'brand-mark brand-mark-lg' }),
        h('div', {}, h('div', { class: 'login-title', text: t('app.name') }), h('div', { class: 'login-sub', text: t('app.tagline') }))),
      form,
      h('div', { class: 'login-foot' }, ctx.langSwitch()))));
  user.focus();
}
