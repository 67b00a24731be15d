// Departments: add, rename (zh-CN and en), delete (refused while cameras remain).

import { h } from '../dom.js';
import * as api from '../api.js';
import { t } from '../i18n.js';
import { deptChip, modal, errorText, table, field, formActions, rowButton, deleteConfirmed, saveDialog, listPage } from '../ui.js';

export function mount(view, ctx) {
  const { reload, destroy } = listPage(view, {
    testid: 'admin-departments',
    title: t('departments.title'),
    add: { testid: 'department-add', text: t('departments.add'), onclick: () => openForm(null) },
    load: async () => {
      const [depts, cams] = await Promise.all([ctx.loadDepartments(), api.get('/api/v1/cameras').catch(() => [])]);
      const counts = new Map();
      for (const c of api.list(cams, 'cameras')) counts.set(c.department, (counts.get(c.department) || 0) + 1);
      return table([
        { title: t('departments.id'), cell: (d) => h('code', { text: d.id }) },
        { title: t('departments.color'), cell: (d) => deptChip(depts, d.id) },
        { title: t('departments.nameZh'), cell: (d) => d.name?.['zh-CN'] || '' },
        { title: t('departments.nameEn'), cell: (d) => d.name?.en || '' },
        { title: t('departments.cameras'), class: 'num', cell: (d) => String(counts.get(d.id) || 0) },
        { title: '', class: 'actions', cell: (d) => h('div', { class: 'row-actions' },
          rowButton('department-edit', t('common.edit'), () => openForm(d)),
          rowButton('department-delete', t('common.delete'), () => remove(d), { danger: true })) },
      ], depts, { rowAttrs: (d) => ({ 'data-department-id': d.id }) });
    },
  });

  async function remove(d) {
    if (await deleteConfirmed(t('departments.confirmDelete', { id: d.id }), () => api.del(`/api/v1/departments/${encodeURIComponent(d.id)}`),
      t('departments.deleted', { id: d.id }), (err) => (err.status === 409 ? t('departments.inUse') : errorText(err)))) reload();
  }

  function openForm(dept) {
    const id = h('input', { value: dept?.id || '', required: true, pattern: '[a-z0-9-]{1,64}', readOnly: !!dept, 'data-testid': 'dept-id' });
    const zh = h('input', { value: dept?.name?.['zh-CN'] || '', required: true, 'data-testid': 'dept-name-zh' });
    const en = h('input', { value: dept?.name?.en || '', required: true, 'data-testid': 'dept-name-en' });
    const err = h('div', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { id: id.value.trim(), name: { 'zh-CN': zh.value.trim(), en: en.value.trim() } };
      await saveDialog(() => (dept ? api.put(`/api/v1/departments/${encodeURIComponent(dept.id)}`, body) : api.post('/api/v1/departments', body)),
        m, t('departments.saved', { id: body.id }), err, reload);
    } },
    field(t('departments.id'), id, dept ? '' : t('cameras.idHint')),
    field(t('departments.nameZh'), zh),
    field(t('departments.nameEn'), en),
    err,
    formActions(() => m.close(), 'dept-save'));
    const m = modal(dept ? t('departments.editTitle') : t('departments.addTitle'), form, { testid: 'department-dialog' });
  }

  reload();
  return destroy;
}
