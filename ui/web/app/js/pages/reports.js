// Availability report: share of a period each department and camera was
// online and recorded, as a table with bars.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import { t, formatNumber } from '../i18n.js';
import { table, field, pageHeader, spinner, deptChip, deptColor, errorBox } from '../ui.js';

function dateInput(d) {
  const p = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}`;
}

function parseDay(v, plusDays = 0) {
  const [y, m, d] = v.split('-').map(Number);
  return new Date(y, m - 1, d + plusDays);
}

export function mount(view, ctx) {
  let destroyed = false;
  const today = new Date();
  const from = h('input', { type: 'date', 'data-testid': 'report-from', value: dateInput(new Date(today.getFullYear(), today.getMonth(), today.getDate() - 6)) });
  const to = h('input', { type: 'date', 'data-testid': 'report-to', value: dateInput(today) });
  const body = h('div', {}, spinner());
  const form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); reload(); } },
    field(t('reports.from'), from), field(t('reports.to'), to),
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'report-run', text: t('reports.run') }));
  replace(view, h('section', { class: 'page', 'data-testid': 'reports' },
    pageHeader(t('reports.title')),
    h('p', { class: 'muted page-help', text: t('reports.help') }),
    form, body));

  async function reload() {
    if (!from.value || !to.value) return;
    replace(body, spinner());
    try {
      // "to" is inclusive: the period ends at the end of that day (or now).
      const end = new Date(Math.min(+parseDay(to.value, 1), Date.now()));
      const res = await api.get('/api/v1/reports/availability', { from: parseDay(from.value).toISOString(), to: end.toISOString() });
      if (destroyed) return;
      const depts = res.departments || [];
      const cams = (res.cameras || []).slice().sort((a, b) => a.online - b.online);
      replace(body,
        h('h2', { class: 'section-title', text: t('reports.byDepartment') }),
        table([
          { title: t('reports.department'), cell: (d) => deptChip(ctx.departments, d.id) },
          { title: t('reports.online'), class: 'bar-col', cell: (d) => bar(d.online, deptColor(d.id), 'online') },
          { title: t('reports.recorded'), class: 'bar-col', cell: (d) => bar(d.recorded, deptColor(d.id), 'recorded') },
        ], depts, { rowAttrs: (d) => ({ 'data-testid': 'report-department-row', 'data-department-id': d.id }) }),
        h('h2', { class: 'section-title', text: t('reports.byCamera') }),
        table([
          { title: t('reports.camera'), cell: (c) => h('div', {}, h('div', { text: c.name || c.id }), h('code', { class: 'muted small', text: c.id })) },
          { title: t('reports.department'), cell: (c) => deptChip(ctx.departments, c.department) },
          { title: t('reports.online'), class: 'bar-col', cell: (c) => bar(c.online, deptColor(c.department), 'online') },
          { title: t('reports.recorded'), class: 'bar-col', cell: (c) => bar(c.recorded, deptColor(c.department), 'recorded') },
        ], cams, { rowAttrs: (c) => ({ 'data-testid': 'report-camera-row', 'data-camera-id': c.id }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  reload();
  return () => { destroyed = true; };
}

// bar draws a percentage (0–100) as a bar with its number.
function bar(pct, color, fieldName) {
  if (pct === null || pct === undefined) {
    // a camera that is not set to record has no recorded share
    return h('div', { class: 'bar', 'data-field': fieldName, 'data-value': '' },
      h('span', { class: 'bar-num muted', text: t('reports.notRecording') }));
  }
  const v = Math.min(100, Math.max(0, Number(pct) || 0));
  const fill = h('div', { class: 'bar-fill' });
  fill.style.width = v + '%';
  fill.style.background = color;
  return h('div', { class: ['bar', v < 90 && 'bar-low'], 'data-field': fieldName, 'data-value': v },
    h('div', { class: 'bar-track' }, fill),
    h('span', { class: 'bar-num', text: formatNumber(v) + '%' }));
}
