// Users and roles: add, edit (role, departments, new password), delete.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, deptName } from '../i18n.js';
import { deptChip, modal, confirmDialog, toast, errorText, table, field, pageHeader, spinner } from '../ui.js';

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
          h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'user-edit', text: t('common.edit'), onclick: () => openForm(u) }),
          u.username === ctx.session.username ? null
            : h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-testid': 'user-delete', text: t('common.delete'), onclick: () => remove(u) })) },
      ], users, { rowAttrs: (u) => ({ 'data-username': u.username }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, h('div', { class: 'error-box', text: errorText(err) }));
    }
  }

  async function remove(u) {
    if (!await confirmDialog(t('users.confirmDelete', { name: u.username }))) return;
    try {
      await api.del(`/api/v1/users/${encodeURIComponent(u.username)}`);
      toast(t('users.deleted', { name: u.username }));
    } catch (err) {
      toast(errorText(err), 'error');
    }
    reload();
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
      try {
        if (user) await api.put(`/api/v1/users/${encodeURIComponent(user.username)}`, body);
        else await api.post('/api/v1/users', body);
        m.close(true);
        toast(t('users.saved', { name: body.username }), 'ok');
        reload();
      } catch (e) {
        err.textContent = errorText(e);
      }
    } },
    field(t('users.username'), name),
    field(t('users.password'), pass, user ? t('users.passwordKeep') : ''),
    field(t('users.role'), role),
    field(t('users.departments'), depts, t('users.departmentsHint')),
    err,
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => m.close() }),
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'user-save', text: t('common.save') })));
    const m = modal(user ? t('users.editTitle', { name: user.username }) : t('users.addTitle'), form, { testid: 'user-dialog' });
  }

  reload();
  return () => { destroyed = true; };
}
