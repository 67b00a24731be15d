// Audit log (admins): who did what, when, from where, with filters.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, formatDateTime } from '../i18n.js';
import { table, field, pageHeader, spinner, errorBox } from '../ui.js';

// localInput formats a Date for <input type="datetime-local">.
export function localInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

export function mount(view, ctx) {
  let destroyed = false;
  const p = ctx.params;
  const now = new Date();
  const from = h('input', { type: 'datetime-local', 'data-testid': 'audit-from', value: localInput(p.get('from') ? new Date(p.get('from')) : new Date(now - 24 * 3600 * 1000)) });
  const to = h('input', { type: 'datetime-local', 'data-testid': 'audit-to', value: p.get('to') ? localInput(new Date(p.get('to'))) : '' });
  const user = h('input', { type: 'search', 'data-testid': 'audit-user', value: p.get('user') || '', placeholder: t('audit.anyUser') });
  const camera = h('input', { type: 'search', 'data-testid': 'audit-camera', value: p.get('camera') || '', placeholder: t('audit.anyCamera') });
  const action = h('select', { 'data-testid': 'audit-action' },
    h('option', { value: '', text: t('audit.anyAction') }),
    actions.map((a) => h('option', { value: a, text: actionName(a), selected: a === p.get('action') })));
  const csvLink = h('a', { class: 'btn', 'data-testid': 'audit-csv', text: t('audit.exportCsv'), download: 'vigil-audit.csv' });
  const body = h('div', {}, spinner());
  const count = h('span', { class: 'muted' });
  const form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); reload(); } },
    field(t('audit.from'), from), field(t('audit.to'), to), field(t('audit.user'), user), field(t('audit.camera'), camera),
    field(t('audit.action'), action),
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'audit-search', text: t('common.search') }), csvLink);
  replace(view, h('section', { class: 'page', 'data-testid': 'audit' },
    pageHeader(t('audit.title'), count), form, body));

  async function reload() {
    replace(body, spinner());
    try {
      const q = {
        from: from.value ? new Date(from.value).toISOString() : '',
        to: to.value ? new Date(to.value).toISOString() : '',
        user: user.value.trim(),
        camera: camera.value.trim(),
        action: action.value,
      };
      csvLink.href = api.url('/api/v1/audit', { ...q, format: 'csv', limit: 10000 });
      const res = await api.get('/api/v1/audit', q);
      if (destroyed) return;
      const entries = api.list(res, 'entries');
      count.textContent = t('audit.count', { n: entries.length });
      replace(body, table([
        { title: t('audit.time'), cell: (e) => formatDateTime(e.time) },
        { title: t('audit.user'), cell: (e) => e.user || '—' },
        { title: t('audit.address'), cell: (e) => h('code', { text: e.address || '' }) },
        { title: t('audit.action'), cell: (e) => h('span', { class: 'action', 'data-action': e.action, text: actionName(e.action) }) },
        { title: t('audit.camera'), cell: (e) => e.camera || '' },
        { title: t('audit.range'), cell: (e) => (e.start ? `${formatDateTime(e.start)} – ${e.end ? formatDateTime(e.end) : ''}` : '') },
        { title: t('audit.result'), cell: (e) => h('span', { class: ['result', resultClass(e.result)], 'data-result': e.result ?? '', text: resultName(e.result) }) },
        { title: t('audit.detail'), cell: (e) => h('span', { class: 'audit-detail small', 'data-testid': 'audit-detail', text: e.detail || '' }) },
      ], entries, { empty: t('audit.none'), rowAttrs: (e) => ({ 'data-testid': 'audit-row', 'data-action': e.action, 'data-camera-id': e.camera || '' }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  reload();
  return () => { destroyed = true; };
}

// actions are the audited actions, for the filter.
const actions = ['login', 'logout', 'live', 'playback', 'export', 'incident.create', 'incident.delete',
  'camera.create', 'camera.update', 'camera.delete', 'camera.import', 'user.create', 'user.update', 'user.delete',
  'department.create', 'department.update', 'department.delete', 'token.create', 'token.delete',
  'display.create', 'display.delete', 'display.signin'];

// resultClass: ok and a playback the viewer ended are fine; the rest is not.
function resultClass(r) {
  if (/^(ok|success|200|201|204)$/i.test(String(r))) return 'result-ok';
  return r === 'ended' ? 'result-ended' : 'result-bad';
}

function resultName(r) {
  const key = 'audit.results.' + r;
  const s = t(key);
  return s === key ? (r ?? '') : s;
}

function actionName(a) {
  const key = 'audit.actions.' + a;
  const s = t(key);
  return s === key ? a : s;
}
