// Incidents: list with filters (status, camera, range, words), open
// (playback of its cameras and range), edit, notes over time, close and
// reopen, export every camera at once as a signed package, delete
// (admins).

import { h, replace, debounce } from '../dom.js';
import * as api from '../api.js';
import { t, formatDateTime } from '../i18n.js';
import { table, pageHeader, spinner, deptChip, errorBox, rowButton, deleteConfirmed, modal, field, formActions, errorText, toast } from '../ui.js';
import { localInput } from './audit.js';

export function mount(view, ctx) {
  let destroyed = false;
  let cameras = [];
  let byId = new Map();
  const p = ctx.params;
  const status = h('select', { 'data-testid': 'incident-filter-status', 'aria-label': t('incidents.status'), onchange: () => reload() },
    ['', 'open', 'closed'].map((v) => h('option', { value: v, text: v ? t('incidents.status.' + v) : t('incidents.anyStatus'), selected: (p.get('status') || '') === v })));
  const camera = h('select', { 'data-testid': 'incident-filter-camera', 'aria-label': t('incidents.cameras'), onchange: () => reload() });
  const from = h('input', { type: 'datetime-local', 'data-testid': 'incident-filter-from', 'aria-label': t('incidents.from'), onchange: () => reload() });
  const to = h('input', { type: 'datetime-local', 'data-testid': 'incident-filter-to', 'aria-label': t('incidents.to'), onchange: () => reload() });
  const q = h('input', { type: 'search', 'data-testid': 'incident-filter-q', placeholder: t('incidents.search'), value: p.get('q') || '' });
  q.addEventListener('input', debounce(() => reload(), 250));
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': 'incidents' },
    pageHeader(t('incidents.title')),
    h('p', { class: 'muted page-help', text: t('incidents.help') }),
    h('div', { class: 'toolbar' }, status, camera, field(t('incidents.from'), from), field(t('incidents.to'), to), q),
    body));

  function renderCameraOptions() {
    const cur = camera.value || p.get('camera') || '';
    replace(camera, h('option', { value: '', text: t('incidents.anyCamera') }),
      cameras.map((c) => h('option', { value: c.id, text: c.name || c.id, selected: c.id === cur })));
  }

  function camChips(ids) {
    return h('div', { class: 'chips' }, (ids || []).map((id) => {
      const c = byId.get(id);
      const chip = c ? deptChip(ctx.departments, c.department) : h('span', { class: 'chip' });
      chip.textContent = c ? (c.name || id) : id;
      return chip;
    }));
  }

  let seq = 0;
  async function reload() {
    const mine = ++seq;
    try {
      const query = {
        status: status.value, camera: camera.value, q: q.value.trim(),
        from: from.value ? new Date(from.value) : '', to: to.value ? new Date(to.value) : '',
      };
      const incs = await api.get('/api/v1/incidents', query);
      if (destroyed || mine !== seq) return;
      const list = api.list(incs, 'incidents');
      body.dataset.count = String(list.length);
      replace(body, table([
        { title: t('incidents.titleField'), cell: (i) => h('div', {}, h('strong', { text: i.title || '—' }), i.note ? h('div', { class: 'muted small', text: i.note }) : null,
          i.notes?.length ? h('div', { class: 'muted small', 'data-testid': 'incident-notes-count', text: t('incidents.notesN', { n: i.notes.length }) }) : null) },
        { title: t('incidents.status'), cell: (i) => h('span', { class: `incident-status incident-status-${i.status}`, 'data-testid': 'incident-status', text: t('incidents.status.' + (i.status || 'open')) }) },
        { title: t('incidents.cameras'), cell: (i) => camChips(i.cameras) },
        { title: t('incidents.start'), cell: (i) => formatDateTime(i.start) },
        { title: t('incidents.end'), cell: (i) => formatDateTime(i.end) },
        { title: t('incidents.createdBy'), cell: (i) => i.createdBy || '' },
        { title: '', class: 'actions', cell: (i) => h('div', { class: 'row-actions' },
          h('a', { class: 'btn btn-small btn-primary', 'data-testid': 'incident-open', text: t('incidents.open'), href: playbackHash(i) }),
          rowButton('incident-notes', t('incidents.notes'), () => openNotes(i)),
          rowButton('incident-edit', t('common.edit'), () => openEdit(i)),
          i.status === 'closed'
            ? rowButton('incident-reopen', t('incidents.reopen'), () => setStatus(i, 'open'))
            : rowButton('incident-close', t('incidents.close'), () => setStatus(i, 'closed')),
          ctx.can('export') ? h('a', { class: 'btn btn-small', 'data-testid': 'incident-export', text: t('incidents.exportPackage'),
            title: t('incidents.exportPackageHelp'), href: `/api/v1/incidents/${encodeURIComponent(i.id)}/export`, download: '' }) : null,
          ctx.can('admin') ? rowButton('incident-delete', t('common.delete'), () => remove(i), { danger: true }) : null) },
      ], list, { empty: t('incidents.none'), rowAttrs: (i) => ({ 'data-incident-id': i.id ?? '', 'data-status': i.status || '', 'data-testid': 'incident-row' }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  const path = (i, tail = '') => `/api/v1/incidents/${encodeURIComponent(i.id)}${tail}`;
  // serverText shows the server's own words, also for a 403 (which
  // errorText words generally): here it says which rule refused.
  const serverText = (err) => (err.status === 403 && err.message ? err.message : errorText(err));

  async function setStatus(i, s) {
    try {
      await api.put(path(i), { status: s });
      toast(t(s === 'closed' ? 'incidents.closed' : 'incidents.reopened', { title: i.title }), 'ok');
    } catch (err) {
      toast(serverText(err), 'error');
    }
    reload();
  }

  function openEdit(i) {
    const title = h('input', { type: 'text', required: true, maxLength: 200, value: i.title, 'data-testid': 'incident-edit-title' });
    const note = h('textarea', { rows: 3, value: i.note || '', 'data-testid': 'incident-edit-note' });
    const st = h('select', { 'data-testid': 'incident-edit-status' },
      ['open', 'closed'].map((v) => h('option', { value: v, text: t('incidents.status.' + v), selected: i.status === v })));
    const start = h('input', { type: 'datetime-local', step: 1, required: true, value: localInput(new Date(i.start)), 'data-testid': 'incident-edit-start' });
    const end = h('input', { type: 'datetime-local', step: 1, required: true, value: localInput(new Date(i.end)), 'data-testid': 'incident-edit-end' });
    const chosen = new Set(i.cameras || []);
    const cams = h('div', { class: 'check-list', 'data-testid': 'incident-edit-cameras' },
      cameras.map((c) => h('label', { class: 'check' },
        h('input', { type: 'checkbox', value: c.id, checked: chosen.has(c.id), 'data-camera-id': c.id }),
        h('span', { text: c.name || c.id }))));
    const err = h('p', { class: 'form-error', role: 'alert', 'data-testid': 'incident-edit-error' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      const body = { title: title.value.trim(), note: note.value, status: st.value,
        cameras: [...cams.querySelectorAll('input:checked')].map((x) => x.value) };
      // the range is sent only when changed (datetime-local has no milliseconds)
      if (start.value !== localInput(new Date(i.start))) body.start = new Date(start.value).toISOString();
      if (end.value !== localInput(new Date(i.end))) body.end = new Date(end.value).toISOString();
      try {
        await api.put(path(i), body);
        m.close(true);
        toast(t('incidents.saved', { title: body.title }), 'ok');
        reload();
      } catch (e) {
        err.textContent = serverText(e);
      }
    } },
    field(t('incidents.titleField'), title),
    field(t('incidents.note'), note),
    field(t('incidents.status'), st),
    field(t('incidents.start'), start),
    field(t('incidents.end'), end),
    field(t('incidents.cameras'), cams),
    err,
    formActions(() => m.close(), 'incident-edit-save'));
    const m = modal(t('incidents.editTitle', { title: i.title || i.id }), form, { wide: true, testid: 'incident-edit' });
  }

  function openNotes(i) {
    const listEl = h('ul', { class: 'notes', 'data-testid': 'incident-note-list' });
    const render = (notes) => replace(listEl, notes.length ? notes.map((n) => h('li', { 'data-testid': 'incident-note' },
      h('div', { class: 'note-meta', text: `${n.author} · ${formatDateTime(n.time)}` }),
      h('div', { text: n.text }))) : h('li', { class: 'muted', text: t('incidents.noNotes') }));
    render(i.notes || []);
    const text = h('textarea', { rows: 3, required: true, 'data-testid': 'incident-note-text', placeholder: t('incidents.notePlaceholder') });
    const err = h('p', { class: 'form-error', role: 'alert' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const inc = await api.post(path(i, '/notes'), { text: text.value });
        text.value = '';
        err.textContent = '';
        render(inc.notes || []);
        reload();
      } catch (e) {
        err.textContent = serverText(e);
      }
    } },
    text, err,
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', 'data-testid': 'incident-notes-close', text: t('common.close'), onclick: () => m.close() }),
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'incident-note-add', text: t('incidents.addNote') })));
    const m = modal(t('incidents.notesTitle', { title: i.title || i.id }), [
      h('p', { class: 'muted', text: t('incidents.notesHelp') }), listEl, form], { wide: true, testid: 'incident-notes-dialog' });
  }

  async function remove(i) {
    if (await deleteConfirmed(t('incidents.confirmDelete', { title: i.title }), () => api.del(path(i)),
      t('incidents.deleted'))) reload();
  }

  (async () => {
    try {
      cameras = api.list(await api.get('/api/v1/cameras'), 'cameras').sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
    } catch {
      cameras = [];
    }
    if (destroyed) return;
    byId = new Map(cameras.map((c) => [c.id, c]));
    renderCameraOptions();
    reload();
  })();
  return () => { destroyed = true; };
}

function playbackHash(i) {
  const q = new URLSearchParams({ camera: (i.cameras || []).join(','), t: new Date(i.start).toISOString(), start: new Date(i.start).toISOString(), end: new Date(i.end).toISOString() });
  return '#/playback?' + q.toString();
}
