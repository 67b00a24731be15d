// Health page: every check of GET /api/v1/health with its status, message
// (the server's text) and since when, the worst first; refreshed with the
// banner's poll. An admin can send a test event to the alert webhooks and
// sees, per webhook, whether it was delivered.

import { h, replace } from '../dom.js';
import * as api from '../api.js';
import * as health from '../health.js';
import { t, formatDateTime } from '../i18n.js';
import { table, pageHeader, spinner, errorBox, toast, errorText } from '../ui.js';

const order = { failing: 0, degraded: 1, ok: 2 };

export function mount(view, ctx) {
  let destroyed = false;
  const summary = h('div', { class: 'health-summary', 'data-testid': 'health-status' }, spinner());
  const body = h('div', {});
  const nodes = h('section', { class: 'cluster-nodes', 'data-testid': 'cluster-nodes', hidden: true });
  const results = h('div', { class: 'alerts-results', 'data-testid': 'alerts-test-results' });
  const testBtn = ctx.session.role === 'admin'
    ? h('button', { type: 'button', class: 'btn', 'data-testid': 'alerts-test', text: t('health.alerts.test'), onclick: sendTest })
    : null;
  replace(view, h('section', { class: 'page', 'data-testid': 'health' },
    pageHeader(t('health.title'), h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'health-refresh', text: t('health.refresh'), onclick: () => health.refresh() })),
    h('p', { class: 'muted page-help', text: t('health.help') }),
    summary, body, nodes,
    testBtn ? h('section', { class: 'health-alerts' },
      h('h2', { class: 'section-title', text: t('health.alerts.title') }),
      h('p', { class: 'muted', text: t('health.alerts.help') }),
      testBtn, results) : null));

  function render() {
    const r = health.current();
    if (!r) return;
    replace(summary,
      h('span', { class: 'health-pill health-' + r.status, 'data-status': r.status, text: t('health.status.' + r.status) }));
    const checks = (r.checks || []).slice().sort((a, b) =>
      (order[a.status] ?? 3) - (order[b.status] ?? 3) || String(a.name).localeCompare(String(b.name)));
    replace(body, table([
      { title: t('health.check'), cell: (c) => h('div', {}, h('div', { text: health.checkLabel(c.name) }), h('code', { class: 'muted small', text: c.name })) },
      { title: t('health.statusCol'), cell: (c) => h('span', { class: 'health-pill health-' + c.status, 'data-status': c.status, text: t('health.status.' + c.status) }) },
      { title: t('health.message'), cell: (c) => c.message || '' },
      { title: t('health.since'), cell: (c) => (c.since && !String(c.since).startsWith('0001-') ? formatDateTime(c.since) : '') },
    ], checks, { rowAttrs: (c) => ({ 'data-testid': 'health-check', 'data-check': c.name, 'data-status': c.status }) }));
  }

  async function sendTest() {
    testBtn.disabled = true;
    replace(results, spinner());
    try {
      const res = await api.post('/api/v1/alerts/test', {});
      if (destroyed) return;
      const hooks = res.webhooks || [];
      replace(results, table([
        { title: t('health.alerts.url'), cell: (w) => h('code', { text: w.url }) },
        { title: t('health.alerts.result'), cell: (w) => h('span', { class: w.delivered ? 'health-pill health-ok' : 'health-pill health-failing', 'data-delivered': String(!!w.delivered), text: t(w.delivered ? 'health.alerts.delivered' : 'health.alerts.failed') }) },
        { title: t('health.message'), cell: (w) => w.error || '' },
      ], hooks, { empty: t('health.alerts.none'), rowAttrs: () => ({ 'data-testid': 'alerts-test-row' }) }));
    } catch (err) {
      if (destroyed) return;
      replace(results, errorBox(err));
      if (err.status !== 401) toast(errorText(err), 'error');
    } finally {
      testBtn.disabled = false;
    }
  }

  // the cluster's nodes (GET /api/v1/cluster), shown when there is a cluster
  async function loadNodes() {
    try {
      const res = await api.get('/api/v1/cluster');
      if (destroyed) return;
      const list = res.nodes || [];
      nodes.hidden = list.length === 0;
      if (!list.length) return;
      replace(nodes,
        h('h2', { class: 'section-title', text: t('cluster.title') }),
        h('p', { class: 'muted', text: t('cluster.help') }),
        table([
          { title: t('cluster.name'), cell: (n) => h('code', { text: n.name }) },
          { title: t('cluster.advertise'), cell: (n) => h('span', { class: 'muted small', text: n.advertise || '' }) },
          { title: t('cluster.state'), cell: (n) => h('span', { class: 'health-pill health-' + (n.state === 'up' ? 'ok' : 'failing'), 'data-state': n.state, text: t('cluster.state.' + n.state) }) },
          { title: t('cluster.since'), cell: (n) => (n.since ? formatDateTime(n.since) : '') },
          { title: t('cluster.cameras'), cell: (n) => String(n.cameras ?? 0) },
        ], list, { rowAttrs: (n) => ({ 'data-testid': 'cluster-node', 'data-node': n.name, 'data-state': n.state }) }));
    } catch {
      nodes.hidden = true; // a single node or no access: nothing to show
    }
  }

  const off = health.onChange(() => {
    if (destroyed) return;
    loadNodes();
    if (!health.current()) replace(body, errorBox(new Error(t('error.notAllowed'))));
    else render();
  });
  render();
  loadNodes();
  health.refresh();
  return () => { destroyed = true; off(); };
}
