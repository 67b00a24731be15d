// Incidents: list, open (playback of its cameras and range), delete (admins).

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, formatDateTime } from '../i18n.js';
import { table, pageHeader, spinner, deptChip, errorBox, rowButton, deleteConfirmed } from '../ui.js';

export function mount(view, ctx) {
  let destroyed = false;
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': 'incidents' },
    pageHeader(t('incidents.title')),
    h('p', { class: 'muted page-help', text: t('incidents.help') }),
    body));

  async function reload() {
    try {
      const [incs, cams] = await Promise.all([api.get('/api/v1/incidents'), api.get('/api/v1/cameras').catch(() => [])]);
      if (destroyed) return;
      const byId = new Map(api.list(cams, 'cameras').map((c) => [c.id, c]));
      const list = api.list(incs, 'incidents').sort((a, b) => new Date(b.start) - new Date(a.start));
      replace(body, table([
        { title: t('incidents.titleField'), cell: (i) => h('div', {}, h('strong', { text: i.title || '—' }), i.note ? h('div', { class: 'muted small', text: i.note }) : null) },
        { title: t('incidents.cameras'), cell: (i) => h('div', { class: 'chips' }, (i.cameras || []).map((id) => {
          const c = byId.get(id);
          const chip = c ? deptChip(ctx.departments, c.department) : h('span', { class: 'chip' });
          chip.textContent = c ? (c.name || id) : id;
          return chip;
        })) },
        { title: t('incidents.start'), cell: (i) => formatDateTime(i.start) },
        { title: t('incidents.end'), cell: (i) => formatDateTime(i.end) },
        { title: t('incidents.createdBy'), cell: (i) => i.createdBy || i.user || '' },
        { title: '', class: 'actions', cell: (i) => h('div', { class: 'row-actions' },
          h('a', { class: 'btn btn-small btn-primary', 'data-testid': 'incident-open', text: t('incidents.open'), href: playbackHash(i) }),
          ctx.can('export') ? h('a', { class: 'btn btn-small', 'data-testid': 'incident-export', text: t('incidents.exportPackage'),
            title: t('incidents.exportPackageHelp'), href: `/api/v1/incidents/${encodeURIComponent(i.id)}/export`, download: '' }) : null,
          ctx.can('admin') ? rowButton('incident-delete', t('common.delete'), () => remove(i), { danger: true }) : null) },
      ], list, { empty: t('incidents.none'), rowAttrs: (i) => ({ 'data-incident-id': i.id ?? '', 'data-testid': 'incident-row' }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  async function remove(i) {
    if (await deleteConfirmed(t('incidents.confirmDelete', { title: i.title }), () => api.del(`/api/v1/incidents/${encodeURIComponent(i.id)}`),
      t('incidents.deleted'))) reload();
  }

  reload();
  return () => { destroyed = true; };
}

function playbackHash(i) {
  const q = new URLSearchParams({ camera: (i.cameras || []).join(','), t: new Date(i.start).toISOString(), start: new Date(i.start).toISOString(), end: new Date(i.end).toISOString() });
  return '#/playback?' + q.toString();
}
