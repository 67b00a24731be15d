// Displays: wall screens an admin signs in for good. Adding one gives a
// one-time link; opened on the wall's browser it signs that browser in to the
// live wall (kiosk mode, live view only, the chosen departments), with a
// login that never idles out. Deleting a display signs its wall out.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, formatDateTime } from '../i18n.js';
import { modal, table, field, errorText, formActions, rowButton, deleteConfirmed, listPage, deptChips, deptChecks, checkedDepts } from '../ui.js';

export function mount(view, ctx) {
  const { reload, destroy } = listPage(view, {
    testid: 'admin-displays',
    title: t('displays.title'),
    help: t('displays.help'),
    add: { testid: 'display-add', text: t('displays.add'), onclick: openForm },
    load: async () => table([
      { title: t('displays.name'), cell: (d) => h('strong', { text: d.name }) },
      { title: t('users.departments'), cell: (d) => deptChips(ctx.departments, d.departments) },
      { title: t('displays.state'), cell: (d) => h('span', { 'data-testid': 'display-state',
        text: d.signedIn ? t('displays.signedIn', { time: formatDateTime(d.signedIn) })
          : d.codeExpires ? t('displays.waiting', { time: formatDateTime(d.codeExpires) }) : t('displays.signedOut') }) },
      { title: t('displays.lastSeen'), cell: (d) => h('span', { text: d.lastSeen ? formatDateTime(d.lastSeen) : '—' }) },
      { title: '', class: 'actions', cell: (d) => h('div', { class: 'row-actions' },
        rowButton('display-delete', t('displays.revoke'), () => remove(d), { danger: true })) },
    ], api.list(await api.get('/api/v1/displays'), 'displays'), { rowAttrs: (d) => ({ 'data-display-id': d.id }) }),
  });

  async function remove(d) {
    if (await deleteConfirmed(t('displays.confirmRevoke', { name: d.name }), () => api.del(`/api/v1/displays/${encodeURIComponent(d.id)}`),
      t('displays.revoked', { name: d.name }))) reload();
  }

  function openForm() {
    const name = h('input', { required: true, autocomplete: 'off', 'data-testid': 'display-name' });
    const depts = deptChecks(ctx.departments, new Set(), 'display-departments');
    const err = h('div', { class: 'form-error', role: 'alert' });
    const save = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'display-save', text: t('common.save') });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      save.disabled = true;
      try {
        const d = await api.post('/api/v1/displays', {
          name: name.value.trim(),
          departments: checkedDepts(depts),
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
    formActions(() => m.close(), 'display-save', save));
    const m = modal(t('displays.addTitle'), form, { testid: 'display-dialog' });
  }

  reload();
  return destroy;
}
