// Availability report: share of a period each department and camera was
// online and recorded, as a table with bars, with the share of the period that
// was observed at all (the rest is no data: Vigil was not running, or the
// camera was not registered or was disabled), and a CSV download.

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
  const csv = h('a', { class: 'btn', 'data-testid': 'report-csv', text: t('reports.csv'), title: t('reports.csvHelp') });
  const form = h('form', { class: 'filters', onsubmit: (ev) => { ev.preventDefault(); reload(); } },
    field(t('reports.from'), from), field(t('reports.to'), to),
    h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'report-run', text: t('reports.run') }), csv);
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
      const period = { from: parseDay(from.value).toISOString(), to: end.toISOString() };
      csv.href = api.url('/api/v1/reports/availability', { ...period, format: 'csv' });
      csv.download = `availability_${from.value}_${to.value}.csv`;
      const res = await api.get('/api/v1/reports/availability', period);
      if (destroyed) return;
      const depts = res.departments || [];
      // the worst first; no data before anything observed
      const rank = (c) => (c.online === null || c.online === undefined ? -1 : c.online);
      const cams = (res.cameras || []).slice().sort((a, b) => rank(a) - rank(b));
      const observedS = (res.cameras || []).reduce((sum, c) => sum + (c.observedSeconds || 0), 0);
      const whole = (res.periodSeconds || 0) * (res.cameras || []).length;
      replace(body,
        h('p', { class: ['muted', whole > 0 && observedS / whole < 0.9 && 'report-partial'], 'data-testid': 'report-observed', 'data-value': whole > 0 ? observedS / whole * 100 : 0,
          text: t('reports.observedSummary', { pct: observedText(observedS, whole > 0 ? observedS / whole * 100 : 0), period: duration(res.periodSeconds || 0) }) }),
        h('h2', { class: 'section-title', text: t('reports.byDepartment') }),
        table([
          { title: t('reports.department'), cell: (d) => deptChip(ctx.departments, d.id) },
          { title: t('reports.online'), class: 'bar-col', cell: (d) => bar(d.online, deptColor(d.id), 'online') },
          { title: t('reports.recorded'), class: 'bar-col', cell: (d) => bar(d.recorded, deptColor(d.id), 'recorded', d.observedSeconds > 0 ? 'reports.notRecording' : 'reports.noData') },
          { title: t('reports.observed'), class: 'bar-col-narrow', cell: (d) => observedBar(d.observedPercent, d.observedSeconds, (res.periodSeconds || 0) * d.cameras) },
        ], depts, { rowAttrs: (d) => ({ 'data-testid': 'report-department-row', 'data-department-id': d.id }) }),
        h('h2', { class: 'section-title', text: t('reports.byCamera') }),
        table([
          { title: t('reports.camera'), cell: (c) => h('div', {}, h('div', { text: c.name || c.id }), h('code', { class: 'muted small', text: c.id })) },
          { title: t('reports.department'), cell: (c) => deptChip(ctx.departments, c.department) },
          { title: t('reports.online'), class: 'bar-col', cell: (c) => bar(c.online, deptColor(c.department), 'online') },
          { title: t('reports.recorded'), class: 'bar-col', cell: (c) => bar(c.recorded, deptColor(c.department), 'recorded', c.observedSeconds > 0 ? 'reports.notRecording' : 'reports.noData') },
          { title: t('reports.observed'), class: 'bar-col-narrow', cell: (c) => observedBar(c.observedPercent, c.observedSeconds, res.periodSeconds || 0) },
        ], cams, { rowAttrs: (c) => ({ 'data-testid': 'report-camera-row', 'data-camera-id': c.id }) }));
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  reload();
  return () => { destroyed = true; };
}

// bar draws a percentage (0–100) of the observed time as a bar with its
// number; null is no data (nothing observed), or nullKey's text.
function bar(pct, color, fieldName, nullKey = 'reports.noData') {
  if (pct === null || pct === undefined) {
    return h('div', { class: 'bar', 'data-field': fieldName, 'data-value': '', 'data-nodata': nullKey === 'reports.noData' ? 'true' : null },
      h('span', { class: 'bar-num bar-text muted', text: t(nullKey) }));
  }
  const v = Math.min(100, Math.max(0, Number(pct) || 0));
  const fill = h('div', { class: 'bar-fill' });
  fill.style.width = v + '%';
  fill.style.background = color;
  return h('div', { class: ['bar', v < 90 && 'bar-low'], 'data-field': fieldName, 'data-value': v },
    h('div', { class: 'bar-track' }, fill),
    h('span', { class: 'bar-num', text: formatNumber(v) + '%' }));
}

// observedBar draws the share of the period that was observed; its title
// says how long that was, out of how long.
function observedBar(pct, seconds, wholeSeconds) {
  const v = Math.min(100, Math.max(0, Number(pct) || 0));
  const fill = h('div', { class: 'bar-fill bar-observed' });
  fill.style.width = v + '%';
  return h('div', { class: ['bar', !(seconds > 0) ? 'bar-nodata' : v < 90 && 'bar-partial'], 'data-field': 'observed', 'data-value': v,
    title: t('reports.observedOf', { observed: duration(seconds || 0), period: duration(wholeSeconds) }) },
    h('div', { class: 'bar-track' }, fill),
    h('span', { class: 'bar-num', text: seconds > 0 ? observedText(seconds, v) : t('reports.noData') }));
}

// observedText is a share that is never shown as 0 % when something was observed.
function observedText(seconds, pct) {
  if (seconds > 0 && pct < 0.05) return '< ' + formatNumber(0.1) + '%';
  return formatNumber(pct) + '%';
}

// duration says a number of seconds in the largest sensible unit.
function duration(s) {
  if (s >= 86400 * 2) return t('reports.days', { n: formatNumber(s / 86400) });
  if (s >= 3600 * 2) return t('reports.hours', { n: formatNumber(s / 3600) });
  if (s >= 120) return t('reports.minutes', { n: formatNumber(s / 60, 0) });
  return t('reports.seconds', { n: formatNumber(s, 0) });
}
