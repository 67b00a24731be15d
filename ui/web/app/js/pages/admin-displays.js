// Displays: wall screens an admin signs in for good. Adding one gives a
// one-time link; opened on the wall's browser it signs that browser in to the
// live wall (kiosk mode, live view only, the chosen departments), with a
// login that never idles out. Deleting a display signs its wall out.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, deptName, formatDateTime } from '../i18n.js';
import { deptChip, modal, table, field, pageHeader, spinner, errorBox, errorText, rowButton, deleteConfirmed } from '../ui.js';

export function mount(view, ctx) {
  let destroyed = false;
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': 'admin-displays' },
    pageHeader(t('displays.title'),
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'display-add', text: t('displays.add'), onclick: openForm })),
    h('p', { class: 'muted page-help', text: t('displays.help') }),
    body));

  async function reload() {
    try {
      const list = api.list(await api.get('/api/v1/displays'), 'displays');
      if (destroyed) return;
      replace(body, table([
        { title: t('displays.name'), cell: (d) => h('strong', { text: d.name }) },
        { title: t('users.departments'), cell: (d) => (d.departments && d.departments.length
          ? h('div', { class: 'chips' }, d.departments.map((x) => deptChip(ctx.departments, x)))
          : h('span', { class: 'muted', text: t('users.allDepartments') })) },
        { title: t('displays.state'), cell: (d) => h('span', { 'data-testid': 'display-state',
          text: d.signedIn ? t('displays.signedIn', { time: formatDateTime(d.signedIn) })
            : d.codeExpires ? t('displays.waiting', { time: formatDateTime(d.codeExpires) }) : t('displays.signedOut') }) },
        { title: t('displays.lastSeen'), cell: (d) => h('span', { text: d.lastSeen ? formatDateTime(d.lastSeen) : '—' }) },
        { title: '', class: 'actions', cell: (d) => h('div', { class: 'row-actions' },
          rowButton('display-delete', t('displays.revoke'), () => remove(d), { danger: true })) },
      ], list, { rowAttrs: (d) => ({ 'data-display-id': d.id }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  async function remove(d) {
    if (await deleteConfirmed(t('displays.confirmRevoke', { name: d.name }), () => api.del(`/api/v1/displays/${encodeURIComponent(d.id)}`),
      t('displays.revoked', { name: d.name }))) reload();
  }

  function openForm() {
    const name = h('input', { required: true, autocomplete: 'off', 'data-testid': 'display-name' });
    const depts = h('div', { class: 'check-list', 'data-testid': 'display-departments' },
      ctx.departments.map((d) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', value: d.id, 'data-department-id': d.id }),
        h('span', { text: deptName(d) }))));
    const err = h('div', { class: 'form-error', role: 'alert' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'display-save', text: t('common.save') });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      save.disabled = true;
      try {
        const d = await api.post('/api/v1/displays', {
          name: name.value.trim(),
          departments: [...depts.querySelectorAll('input:checked')].map((x) => x.value),
        });
        reload();
        const link = location.origin + location.pathname + d.path.replace(/^\//, '');
        replace(form,
          h('p', { text: t('displays.linkHelp') }),
          h('input', { readOnly: true, value: link, class: 'mono', 'data-testid': 'display-link', onfocus: (e) => e.target.select() }),
          h('div', { class: 'form-actions' },
            h('button', { type: 'button', class: 'btn btn-primary', text: t('common.close'), onclick: () => m.close(true) })));
      } catch (e) {
        err.textContent = errorText(e);
        save.disabled = false;
      }
    } },
    field(t('displays.name'), name),
    field(t('users.departments'), depts, t('displays.departmentsHint')),
    err,
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => m.close() }), save));
    const m = modal(t('displays.addTitle'), form, { testid: 'display-dialog' });
  }

  reload();
  return () => { destroyed = true; };
}
