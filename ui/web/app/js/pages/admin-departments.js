// Departments: add, rename (zh-CN and en), delete (refused while cameras remain).

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';
import { deptChip, modal, confirmDialog, toast, errorText, table, field, pageHeader, spinner } from '../ui.js';

export function mount(view, ctx) {
  let destroyed = false;
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': 'admin-departments' },
    pageHeader(t('departments.title'),
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'department-add', text: t('departments.add'), onclick: () => openForm(null) })),
    body));

  async function reload() {
    try {
      const [depts, cams] = await Promise.all([ctx.loadDepartments(), api.get('/api/v1/cameras').catch(() => [])]);
      if (destroyed) return;
      const counts = new Map();
      for (const c of api.list(cams, 'cameras')) counts.set(c.department, (counts.get(c.department) || 0) + 1);
      replace(body, table([
        { title: t('departments.id'), cell: (d) => h('code', { text: d.id }) },
        { title: t('departments.color'), cell: (d) => deptChip(depts, d.id) },
        { title: t('departments.nameZh'), cell: (d) => d.name?.['zh-CN'] || '' },
        { title: t('departments.nameEn'), cell: (d) => d.name?.en || '' },
        { title: t('departments.cameras'), class: 'num', cell: (d) => String(counts.get(d.id) || 0) },
        { title: '', class: 'actions', cell: (d) => h('div', { class: 'row-actions' },
          h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'department-edit', text: t('common.edit'), onclick: () => openForm(d) }),
          h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-testid': 'department-delete', text: t('common.delete'), onclick: () => remove(d) })) },
      ], depts, { rowAttrs: (d) => ({ 'data-department-id': d.id }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, h('div', { class: 'error-box', text: errorText(err) }));
    }
  }

  async function remove(d) {
    if (!await confirmDialog(t('departments.confirmDelete', { id: d.id }))) return;
    try {
      await api.del(`/api/v1/departments/${encodeURIComponent(d.id)}`);
      toast(t('departments.deleted', { id: d.id }));
    } catch (err) {
      toast(err.status === 409 ? t('departments.inUse') : errorText(err), 'error');
    }
    reload();
  }

  function openForm(dept) {
    const id = h('input', { value: dept?.id || '', required: true, pattern: '[a-z0-9-]{1,64}', readOnly: !!dept, 'data-testid': 'dept-id' });
    const zh = h('input', { value: dept?.name?.['zh-CN'] || '', required: true, 'data-testid': 'dept-name-zh' });
    const en = h('input', { value: dept?.name?.en || '', required: true, 'data-testid': 'dept-name-en' });
    const err = h('div', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { id: id.value.trim(), name: { 'zh-CN': zh.value.trim(), en: en.value.trim() } };
      try {
        if (dept) await api.put(`/api/v1/departments/${encodeURIComponent(dept.id)}`, body);
        else await api.post('/api/v1/departments', body);
        m.close(true);
        toast(t('departments.saved', { id: body.id }), 'ok');
        reload();
      } catch (e) {
        err.textContent = errorText(e);
      }
    } },
    field(t('departments.id'), id, dept ? '' : t('cameras.idHint')),
    field(t('departments.nameZh'), zh),
    field(t('departments.nameEn'), en),
    err,
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => m.close() }),
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'dept-save', text: t('common.save') })));
    const m = modal(dept ? t('departments.editTitle') : t('departments.addTitle'), form, { testid: 'department-dialog' });
  }

  reload();
  return () => { destroyed = true; };
}
