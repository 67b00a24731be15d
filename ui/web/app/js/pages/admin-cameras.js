// Camera admin: list with live status, add/edit/delete, test connection, CSV import.

import { h, replace, debounce } from '../dom.js';
import * as api from '../api.js';
import { t, deptName } from '../i18n.js';
import { deptChip, statusBadge, setBadge, modal, confirmDialog, toast, errorText, table, field, pageHeader, spinner, errorBox, formActions, saveDialog } from '../ui.js';
import { sourceBadge, isGB } from '../source.js';

const statusPollMs = 5000;

export function mount(view, ctx) {
  let cameras = [];
  let status = new Map();
  let destroyed = false;
  let pollTimer = 0;
  const badges = new Map();
  const subBoxes = new Map(); // camera id → its sub-stream status box
  const nodeCells = new Map(); // camera id → the cell naming the cluster node that runs it
  let clustered = false; // the statuses name nodes: a column shows them
  const search = h('input', { type: 'search', placeholder: t('wall.search'), 'data-testid': 'admin-camera-search' });
  search.addEventListener('input', debounce(render, 150));
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': 'admin-cameras' },
    pageHeader(t('cameras.title'),
      search,
      h('button', { type: 'button', class: 'btn', 'data-testid': 'camera-import', text: t('cameras.import'), onclick: openImport }),
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'camera-add', text: t('cameras.add'), onclick: () => openForm(null) })),
    body));

  async function reload() {
    try {
      const [cams, stat] = await Promise.all([api.get('/api/v1/cameras'), api.get('/api/v1/status').catch(() => [])]);
      if (destroyed) return;
      cameras = api.list(cams, 'cameras').sort((a, b) => a.id.localeCompare(b.id));
      status = new Map(api.list(stat, 'cameras').map((s) => [s.id, s]));
      render();
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }

  function render() {
    const q = search.value.trim().toLowerCase();
    const rows = cameras.filter((c) => !q || [c.id, c.name, c.location?.address, c.department].some((s) => s && s.toLowerCase().includes(q)));
    badges.clear();
    subBoxes.clear();
    nodeCells.clear();
    clustered = [...status.values()].some((s) => s.node);
    const nodeColumn = clustered ? [{ title: t('cameras.node'), cell: (c) => {
      const el = h('code', { class: 'cam-node', 'data-testid': 'camera-node', text: status.get(c.id)?.node || '—' });
      nodeCells.set(c.id, el);
      return el;
    } }] : [];
    replace(body, table([
      { title: t('cameras.id'), cell: (c) => h('div', { class: 'cam-id-cell' }, h('code', { text: c.id }), sourceBadge(c)) },
      { title: t('cameras.name'), cell: (c) => h('div', {}, h('div', { text: c.name }), h('div', { class: 'muted small', text: c.location?.address || '' })) },
      { title: t('cameras.department'), cell: (c) => deptChip(ctx.departments, c.department) },
      { title: t('cameras.status'), cell: (c) => {
        const s = status.get(c.id);
        const b = statusBadge(c.enabled === false ? 'disabled' : s?.state);
        badges.set(c.id, b);
        const sub = h('div', { class: 'sub-status', 'data-testid': 'sub-status' });
        subBoxes.set(c.id, sub);
        showSub(sub, c, s);
        return h('div', {}, b, s?.video ? h('div', { class: 'muted small', text: videoText(s.video) }) : null,
          s?.lastError ? h('div', { class: 'muted small err-text', text: s.lastError }) : null, sub);
      } },
      ...nodeColumn,
      { title: t('cameras.record'), cell: (c) => (c.record ? t('common.yes') : t('common.no')) },
      { title: '', class: 'actions', cell: (c) => h('div', { class: 'row-actions' },
        h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'camera-edit', text: t('common.edit'), onclick: () => openForm(c) }),
        h('button', { type: 'button', class: 'btn btn-small btn-danger-ghost', 'data-testid': 'camera-delete', text: t('common.delete'), onclick: () => remove(c) })) },
    ], rows, { empty: t('cameras.none'), rowAttrs: (c) => ({ 'data-camera-id': c.id }) }));
  }

  async function pollStatus() {
    try {
      const stat = api.list(await api.get('/api/v1/status'), 'cameras');
      status = new Map(stat.map((s) => [s.id, s]));
      if (clustered !== stat.some((s) => s.node)) render(); // a cluster formed or went
      for (const [id, el] of nodeCells) el.textContent = status.get(id)?.node || '—';
      for (const [id, b] of badges) {
        const c = cameras.find((x) => x.id === id);
        setBadge(b, c && c.enabled === false ? 'disabled' : status.get(id)?.state);
        const sub = subBoxes.get(id);
        if (sub && c) showSub(sub, c, status.get(id));
      }
    } catch {
      // next poll
    } finally {
      if (!destroyed) pollTimer = setTimeout(pollStatus, statusPollMs);
    }
  }

  async function remove(c) {
    if (!await confirmDialog(t('cameras.confirmDelete', { name: c.name || c.id }))) return;
    try {
      await api.del(api.camPath(c.id));
      toast(t('cameras.deleted', { name: c.name || c.id }));
      reload();
    } catch (err) {
      toast(errorText(err), 'error');
    }
  }

  function openForm(cam) {
    const c = cam || { id: '', name: '', department: ctx.departments[0]?.id || '', location: { lat: 0, lng: 0, address: '' },
      mainUrl: '', subUrl: '', transport: 'auto', record: true, retentionDays: 30, enabled: true, tags: [] };
    const f = {
      id: h('input', { name: 'id', value: c.id, required: true, pattern: '[a-z0-9-]{1,64}', readOnly: !!cam, 'data-testid': 'cam-id' }),
      name: h('input', { name: 'name', value: c.name || '', required: true, 'data-testid': 'cam-name' }),
      department: h('select', { name: 'department', required: true, disabled: isGB(c), 'data-testid': 'cam-department' },
        ctx.departments.map((d) => h('option', { value: d.id, text: deptName(d), selected: d.id === c.department }))),
      address: h('input', { name: 'address', value: c.location?.address || '', 'data-testid': 'cam-address' }),
      lat: h('input', { name: 'lat', type: 'number', step: 'any', min: -90, max: 90, value: c.location?.lat ?? 0, 'data-testid': 'cam-lat' }),
      lng: h('input', { name: 'lng', type: 'number', step: 'any', min: -180, max: 180, value: c.location?.lng ?? 0, 'data-testid': 'cam-lng' }),
      mainUrl: h('input', { name: 'mainUrl', value: c.mainUrl || '', required: !isGB(c), placeholder: 'rtsp://user:pass@10.0.0.2:554/Streaming/Channels/101', 'data-testid': 'cam-main-url' }),
      subUrl: h('input', { name: 'subUrl', value: c.subUrl || '', placeholder: 'rtsp://user:pass@10.0.0.2:554/Streaming/Channels/102', 'data-testid': 'cam-sub-url' }),
      transport: h('select', { name: 'transport', 'data-testid': 'cam-transport' },
        ['auto', 'tcp', 'udp'].map((v) => h('option', { value: v, text: t('cameras.transport.' + v), selected: v === (c.transport || 'auto') }))),
      record: h('input', { type: 'checkbox', name: 'record', checked: !!c.record, 'data-testid': 'cam-record' }),
      retentionDays: h('input', { name: 'retentionDays', type: 'number', min: 0, step: 1, value: c.retentionDays ?? 30, 'data-testid': 'cam-retention' }),
      enabled: h('input', { type: 'checkbox', name: 'enabled', checked: c.enabled !== false, 'data-testid': 'cam-enabled' }),
      tags: h('input', { name: 'tags', value: (c.tags || []).join(', '), 'data-testid': 'cam-tags' }),
    };
    const err = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'form-error' });
    const testOut = h('div', { class: 'test-result', 'data-testid': 'test-result' });
    const collect = () => ({
      id: f.id.value.trim(),
      name: f.name.value.trim(),
      department: f.department.value,
      location: { lat: Number(f.lat.value) || 0, lng: Number(f.lng.value) || 0, address: f.address.value.trim() },
      mainUrl: f.mainUrl.value.trim(),
      subUrl: f.subUrl.value.trim(),
      transport: f.transport.value,
      record: f.record.checked,
      retentionDays: Math.max(0, Math.trunc(Number(f.retentionDays.value) || 0)),
      enabled: f.enabled.checked,
      tags: f.tags.value.split(',').map((s) => s.trim()).filter(Boolean),
    });
    const testBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'cam-test', text: t('cameras.test'), onclick: async () => {
      testBtn.disabled = true;
      testOut.className = 'test-result';
      replace(testOut, spinner(), h('span', { text: t('cameras.testing') }));
      // both URLs, each on its own line: a wrong sub-stream URL must show
      // although the main one answers
      const body = collect();
      const streams = body.subUrl ? ['main', 'sub'] : ['main'];
      const results = await Promise.all(streams.map(async (stream) => {
        try {
          return { stream, ok: true, text: describeTest(await api.post('/api/v1/cameras/test', { ...body, stream })) };
        } catch (e) {
          return { stream, ok: false, text: errorText(e) };
        }
      }));
      const allOk = results.every((r) => r.ok);
      testOut.className = 'test-result ' + (allOk ? 'ok' : 'bad');
      testOut.dataset.result = allOk ? 'ok' : 'error';
      replace(testOut, results.map((r) => h('div', { class: 'test-line ' + (r.ok ? 'ok' : 'bad'), 'data-testid': 'test-result-' + r.stream, 'data-result': r.ok ? 'ok' : 'error' },
        h('span', { text: `${r.ok ? '✓' : '✗'} ${t(r.stream === 'main' ? 'cameras.main' : 'cameras.sub')}: ${r.text}` }))));
      testBtn.disabled = false;
    } });
    const form = h('form', { class: 'form', 'data-testid': 'camera-form', novalidate: false, onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      const body = collect();
      await saveDialog(() => (cam ? api.put(api.camPath(cam.id), body) : api.post('/api/v1/cameras', body)),
        m, t('cameras.saved', { name: body.name || body.id }), err, reload);
    } },
    h('div', { class: 'form-grid' },
      field(t('cameras.id'), f.id, cam ? t('cameras.idFixed') : t('cameras.idHint')),
      field(t('cameras.name'), f.name),
      field(t('cameras.department'), f.department, isGB(c) ? t('source.gb28181Department') : undefined),
      // a GB/T 28181 camera's video comes from its device's channel, not a URL
      isGB(c) ? h('div', { class: 'span2 gb-source', 'data-testid': 'cam-gb28181' }, sourceBadge(c),
        h('span', { text: ' ' + t('source.gb28181Title', { device: c.gb28181?.device || '?', channel: c.gb28181?.channel || '?' }) }))
        : [field(t('cameras.transport'), f.transport),
          h('div', { class: 'span2' }, field(t('cameras.mainUrl'), f.mainUrl, t('cameras.urlHint'))),
          h('div', { class: 'span2' }, field(t('cameras.subUrl'), f.subUrl, t('cameras.subUrlHint')))],
      h('div', { class: 'span2' }, field(t('cameras.address'), f.address)),
      field(t('cameras.lat'), f.lat),
      field(t('cameras.lng'), f.lng),
      field(t('cameras.retentionDays'), f.retentionDays),
      field(t('cameras.tags'), f.tags, t('cameras.tagsHint')),
      h('label', { class: 'check' }, f.record, h('span', { text: t('cameras.record') })),
      h('label', { class: 'check' }, f.enabled, h('span', { text: t('cameras.enabled') }))),
    isGB(c) ? null : h('div', { class: 'test-row' }, testBtn, testOut),
    err,
    formActions(() => m.close(), 'cam-save'));
    const m = modal(cam ? t('cameras.editTitle', { name: cam.name || cam.id }) : t('cameras.addTitle'), form, { wide: true, testid: 'camera-dialog' });
  }

  function openImport() {
    const fileInput = h('input', { type: 'file', accept: '.csv,text/csv', 'data-testid': 'import-file' });
    const text = h('textarea', { rows: 10, class: 'mono', placeholder: 'id,name,department,mainUrl,subUrl,record\npolice-101,Gate,police,rtsp://10.0.0.5/main,,true', 'data-testid': 'import-text' });
    fileInput.addEventListener('change', async () => {
      const file = fileInput.files[0];
      if (file) text.value = await file.text();
    });
    const out = h('div', { 'data-testid': 'import-result' });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'import-submit', text: t('cameras.importRun') });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      replace(out);
      if (!text.value.trim()) {
        replace(out, h('div', { class: 'form-error', text: t('cameras.importEmpty') }));
        return;
      }
      submit.disabled = true;
      try {
        const res = await api.request('POST', '/api/v1/cameras/import', { body: text.value, contentType: 'text/csv' });
        const n = Array.isArray(res) ? res.length : (res && (res.imported ?? res.count ?? api.list(res, 'cameras').length));
        m.close(true);
        toast(t('cameras.imported', { n: n ?? '?' }), 'ok');
        reload();
      } catch (e) {
        replace(out, importErrors(e));
      } finally {
        submit.disabled = false;
      }
    } },
    h('p', { class: 'muted', text: t('cameras.importHelp') }),
    field(t('cameras.importFile'), fileInput),
    field(t('cameras.importPaste'), text),
    out,
    formActions(() => m.close(), '', submit));
    const m = modal(t('cameras.importTitle'), form, { wide: true, testid: 'import-dialog' });
  }

  reload().then(() => { if (!destroyed) pollTimer = setTimeout(pollStatus, statusPollMs); });
  return () => {
    destroyed = true;
    clearTimeout(pollTimer);
  };
}

// showSub shows a camera's sub-stream state and error under its status
// (nothing for a camera without a sub-stream, or a disabled one).
function showSub(box, c, s) {
  const sub = s?.sub;
  if (!c.subUrl || !sub || c.enabled === false) {
    replace(box);
    box.hidden = true;
    return;
  }
  box.hidden = false;
  box.dataset.state = sub.state || 'unknown';
  replace(box, h('span', { class: 'muted small', text: t('cameras.subStream') + ' ' }), statusBadge(sub.state),
    sub.lastError ? h('div', { class: 'muted small err-text', 'data-testid': 'sub-error', text: sub.lastError }) : null);
}

function videoText(v) {
  if (!v) return '';
  const parts = [v.codec, v.width && v.height ? `${v.width}×${v.height}` : '', v.fps ? `${Math.round(v.fps)} fps` : ''];
  return parts.filter(Boolean).join(' · ');
}

// describeTest summarises a test-connection answer: codec and resolution of
// each stream it reports.
function describeTest(res) {
  if (!res || typeof res !== 'object') return t('cameras.testOk');
  const out = [];
  const add = (label, s) => {
    if (!s) return;
    const v = s.video || (s.codec ? s : null);
    if (v) out.push((label ? label + ': ' : '') + videoText(v));
    if (s.audio && s.audio.codec) out.push((label ? label + ' ' : '') + t('cameras.audio') + ': ' + s.audio.codec);
  };
  if (res.main || res.sub) {
    add(t('cameras.main'), res.main);
    add(t('cameras.sub'), res.sub);
  } else {
    add('', res);
  }
  return out.length ? out.join(' — ') : t('cameras.testOk');
}

// importErrors shows the 400 answer of an import: every row's error.
function importErrors(err) {
  const body = err.body && typeof err.body === 'object' ? err.body : {};
  const rows = body.rows || body.errors || body.details || [];
  const items = Array.isArray(rows) ? rows : Object.entries(rows).map(([row, error]) => ({ row, error }));
  return h('div', { class: 'import-errors', 'data-testid': 'import-errors' },
    h('div', { class: 'form-error', text: items.length ? t('cameras.importFailed') : errorText(err) }),
    items.length ? h('ul', {}, items.map((r) => {
      if (typeof r === 'string') return h('li', { text: r });
      const row = r.row ?? r.line ?? r.index;
      const msg = r.error ?? r.message ?? JSON.stringify(r);
      return h('li', { 'data-row': row ?? '' }, row !== undefined ? h('strong', { text: t('cameras.row', { n: row }) + ' ' }) : null,
        r.field ? h('code', { text: r.field + ' ' }) : null, msg);
    })) : null);
}
