// Users and roles: add, edit (role, departments, new password), delete.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, deptName } from '../i18n.js';
import { deptChip, modal, table, field, pageHeader, spinner, errorBox, formActions, rowButton, deleteConfirmed, saveDialog } from '../ui.js';

const roles = ['admin', 'operator', 'responder', 'viewer'];

export function mount(view, ctx) {
  let destroyed = false;
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': 'admin-users' },
    pageHeader(t('users.title'),
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'user-add', text: t('users.add'), onclick: () => openForm(null) })),
    h('p', { class: 'muted page-help', text: t('users.rolesHelp') }),
    body));

  async function reload() {
    try {
      const users = api.list(await api.get('/api/v1/users'), 'users').sort((a, b) => a.username.localeCompare(b.username));
      if (destroyed) return;
      replace(body, table([
        { title: t('users.username'), cell: (u) => h('strong', { text: u.username }) },
        { title: t('users.role'), cell: (u) => h('span', { class: `role role-${u.role}`, text: t('role.' + u.role) }) },
        { title: t('users.departments'), cell: (u) => (u.departments && u.departments.length
          ? h('div', { class: 'chips' }, u.departments.map((d) => deptChip(ctx.departments, d)))
          : h('span', { class: 'muted', text: t('users.allDepartments') })) },
        { title: '', class: 'actions', cell: (u) => h('div', { class: 'row-actions' },
          rowButton('user-edit', t('common.edit'), () => openForm(u)),
          u.username === ctx.session.username ? null
            : rowButton('user-delete', t('common.delete'), () => remove(u), { danger: true })) },
      ], users, { rowAttrs: (u) => ({ 'data-username': u.username }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  async function remove(u) {
    if (await deleteConfirmed(t('users.confirmDelete', { name: u.username }), () => api.del(`/api/v1/users/${encodeURIComponent(u.username)}`),
      t('users.deleted', { name: u.username }))) reload();
  }

  function openForm(user) {
    const name = h('input', { value: user?.username || '', required: true, readOnly: !!user, autocomplete: 'off', 'data-testid': 'user-username' });
    const pass = h('input', { type: 'password', required: !user, autocomplete: 'new-password', 'data-testid': 'user-password',
      placeholder: user ? t('users.passwordKeep') : '' });
    const role = h('select', { 'data-testid': 'user-role' },
      roles.map((r) => h('option', { value: r, text: t('role.' + r), selected: r === (user?.role || 'viewer') })));
    const chosen = new Set(user?.departments || []);
    const depts = h('div', { class: 'check-list', 'data-testid': 'user-departments' },
      ctx.departments.map((d) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', value: d.id, checked: chosen.has(d.id), 'data-department-id': d.id }),
        h('span', { text: deptName(d) }))));
    const err = h('div', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {
        username: name.value.trim(),
        role: role.value,
        departments: [...depts.querySelectorAll('input:checked')].map((x) => x.value),
      };
      if (pass.value) body.password = pass.value;
      await saveDialog(() => (user ? api.put(`/api/v1/users/${encodeURIComponent(user.username)}`, body) : api.post('/api/v1/users', body)),
        m, t('users.saved', { name: body.username }), err, reload);
    } },
    field(t('users.username'), name),
    field(t('users.password'), pass, user ? t('users.passwordKeep') : ''),
    field(t('users.role'), role),
    field(t('users.departments'), depts, t('users.departmentsHint')),
    err,
    formActions(() => m.close(), 'user-save'));
    const m = modal(user ? t('users.editTitle', { name: user.username }) : t('users.addTitle'), form, { testid: 'user-dialog' });
  }

  reload();
  return () => { destroyed = true; };
}
