// Users and roles: add, edit (role, departments, new password), delete.

import { h } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';
import { modal, table, field, formActions, rowButton, deleteConfirmed, saveDialog, listPage, deptChips, deptChecks, checkedDepts } from '../ui.js';

const roles = ['admin', 'operator', 'responder', 'viewer'];

export function mount(view, ctx) {
  const { reload, destroy } = listPage(view, {
    testid: 'admin-users',
    title: t('users.title'),
    help: t('users.rolesHelp'),
    add: { testid: 'user-add', text: t('users.add'), onclick: () => openForm(null) },
    load: async () => table([
      { title: t('users.username'), cell: (u) => h('strong', { text: u.username }) },
      { title: t('users.role'), cell: (u) => h('span', { class: `role role-${u.role}`, text: t('role.' + u.role) }) },
      { title: t('users.departments'), cell: (u) => deptChips(ctx.departments, u.departments) },
      { title: '', class: 'actions', cell: (u) => h('div', { class: 'row-actions' },
        rowButton('user-edit', t('common.edit'), () => openForm(u)),
        u.username === ctx.session.username ? null
          : rowButton('user-delete', t('common.delete'), () => remove(u), { danger: true })) },
    ], api.list(await api.get('/api/v1/users'), 'users').sort((a, b) => a.username.localeCompare(b.username)),
    { rowAttrs: (u) => ({ 'data-username': u.username }) }),
  });

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
    const depts = deptChecks(ctx.departments, new Set(user?.departments || []), 'user-departments');
    const err = h('div', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = {
        username: name.value.trim(),
        role: role.value,
        departments: checkedDepts(depts),
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
  return destroy;
}
