// GB/T 28181 devices: the cameras and NVRs an admin lets register to Vigil
// over SIP. Add a device by its 20-digit ID (name, department, password);
// the list shows each device's state (online, offline, never registered)
// since when, its address and SIP transport, its last error and channels
// (each channel is a camera gb-<channel>). Below, the registrations Vigil
// refused because no admin added the device, each with an "add" shortcut.
// Last, when gb28181.upstream lists any, the upper platforms Vigil
// registers to: state, since, last error, shared departments, live views.

import { h } from '../dom.js';
import * as api from '../api.js';
import { t, deptName, formatDateTime } from '../i18n.js';
import { deptChip, statusBadge, modal, table, field, errorText, formActions, saveDialog, rowButton, deleteConfirmed, listPage } from '../ui.js';

const pollMs = 5000;
const devicesPath = '/api/v1/gb28181/devices';

export function mount(view, ctx) {
  let destroyed = false;
  let timer = 0;
  const { reload, destroy } = listPage(view, {
    testid: 'admin-gb28181',
    title: t('gb.title'),
    help: t('gb.help'),
    add: { testid: 'gb-add', text: t('gb.add'), onclick: () => openForm(null) },
    load: async () => {
      const [devices, refused, upper] = await Promise.all([api.get(devicesPath), api.get('/api/v1/gb28181/refused'),
        api.get('/api/v1/gb28181/upstream')]);
      const ups = api.list(upper, 'upstream');
      return [deviceTable(api.list(devices, 'devices')), refusedTable(api.list(refused, 'refused')),
        ups.length ? upstreamTable(ups) : null];
    },
  });

  function deviceTable(devices) {
    return table([
      { title: t('gb.id'), cell: (d) => h('div', {}, h('code', { text: d.id }), h('div', { class: 'muted small', text: d.name })) },
      { title: t('cameras.department'), cell: (d) => deptChip(ctx.departments, d.department) },
      { title: t('gb.state'), cell: (d) => h('div', { 'data-testid': 'gb-state', 'data-state': d.state },
        statusBadge(d.state),
        d.since ? h('div', { class: 'muted small', text: t('gb.since', { time: formatDateTime(d.since) }) }) : null) },
      { title: t('gb.address'), cell: (d) => h('div', {}, h('code', { 'data-testid': 'gb-address', text: d.address || '—' }),
        d.transport ? h('div', { class: 'muted small', 'data-testid': 'gb-transport', text: d.transport.toUpperCase() }) : null) },
      { title: t('gb.lastError'), cell: (d) => h('span', { class: d.lastError ? 'err-text small' : 'muted', 'data-testid': 'gb-last-error', text: d.lastError || '—' }) },
      { title: t('gb.channels'), cell: (d) => channels(d) },
      { title: '', class: 'actions', cell: (d) => h('div', { class: 'row-actions' },
        rowButton('gb-edit', t('common.edit'), () => openForm(d)),
        rowButton('gb-delete', t('common.delete'), () => remove(d), { danger: true })) },
    ], devices, { empty: t('gb.none'), rowAttrs: (d) => ({ 'data-testid': 'gb-device', 'data-device-id': d.id }) });
  }

  // channels lists a device's channels, each a link to its camera's
  // recordings.
  function channels(d) {
    const list = d.channels || [];
    if (!list.length) return h('span', { class: 'muted', 'data-testid': 'gb-channels', 'data-count': 0, text: '—' });
    return h('div', { class: 'gb-channels', 'data-testid': 'gb-channels', 'data-count': list.length },
      list.map((ch) => h('div', {}, h('a', { href: '#/playback?camera=' + encodeURIComponent('gb-' + ch), text: ch }))));
  }

  function refusedTable(refused) {
    return h('section', { class: 'gb-refused', 'data-testid': 'gb-refused' },
      h('h2', { text: t('gb.refusedTitle') }),
      h('p', { class: 'muted page-help', text: t('gb.refusedHelp') }),
      table([
        { title: t('gb.id'), cell: (r) => h('code', { text: r.id }) },
        { title: t('gb.address'), cell: (r) => h('code', { text: r.address || '—' }) },
        { title: t('gb.firstSeen'), cell: (r) => formatDateTime(r.time) },
        { title: t('gb.lastSeen'), cell: (r) => formatDateTime(r.lastSeen || r.time) },
        { title: t('gb.attempts'), cell: (r) => String(r.count ?? 1) },
        { title: '', class: 'actions', cell: (r) => h('div', { class: 'row-actions' },
          rowButton('gb-refused-add', t('gb.addThis'), () => openForm(null, r.id))) },
      ], refused, { empty: t('gb.noRefused'), rowAttrs: (r) => ({ 'data-testid': 'gb-refused-row', 'data-device-id': r.id }) }));
  }

  function upstreamTable(ups) {
    return h('section', { class: 'gb-upstream', 'data-testid': 'gb-upstream' },
      h('h2', { text: t('gb.upstreamTitle') }),
      h('p', { class: 'muted page-help', text: t('gb.upstreamHelp') }),
      table([
        { title: t('gb.id'), cell: (u) => h('code', { text: u.id }) },
        { title: t('gb.address'), cell: (u) => h('div', {}, h('code', { text: u.address }),
          h('div', { class: 'muted small', text: (u.transport || 'udp').toUpperCase() })) },
        { title: t('gb.state'), cell: (u) => h('div', { 'data-testid': 'gb-upstream-state', 'data-state': u.state },
          statusBadge(u.state),
          u.since ? h('div', { class: 'muted small', text: t('gb.since', { time: formatDateTime(u.since) }) }) : null) },
        { title: t('gb.lastError'), cell: (u) => h('span', { class: u.lastError ? 'err-text small' : 'muted', text: u.lastError || '—' }) },
        { title: t('gb.upstreamDepartments'), cell: (u) => h('div', {}, (u.departments || []).map((d) => deptChip(ctx.departments, d))) },
        { title: t('gb.viewers'), cell: (u) => h('span', { 'data-testid': 'gb-upstream-viewers', text: String(u.viewers ?? 0) }) },
      ], ups, { rowAttrs: (u) => ({ 'data-testid': 'gb-upstream-row', 'data-platform-id': u.id }) }));
  }

  async function remove(d) {
    if (await deleteConfirmed(t('gb.confirmDelete', { name: d.name || d.id }), () => api.del(`${devicesPath}/${encodeURIComponent(d.id)}`),
      t('gb.deleted', { name: d.name || d.id }))) reload();
  }

  // openForm adds a device (id given: from the refused list) or edits dev.
  function openForm(dev, id = '') {
    const f = {
      id: h('input', { value: dev ? dev.id : id, required: true, pattern: '[0-9]{20}', maxLength: 20, inputMode: 'numeric',
        readOnly: !!dev, autocomplete: 'off', 'data-testid': 'gb-id' }),
      name: h('input', { value: dev?.name || '', required: true, maxLength: 100, 'data-testid': 'gb-name' }),
      department: h('select', { required: true, 'data-testid': 'gb-department' },
        ctx.departments.map((d) => h('option', { value: d.id, text: deptName(d), selected: d.id === dev?.department }))),
      password: h('input', { type: 'password', autocomplete: 'new-password', maxLength: 128, 'data-testid': 'gb-password',
        placeholder: dev ? t('gb.passwordKeep') : t('gb.passwordDefault') }),
      useDefault: h('input', { type: 'checkbox', 'data-testid': 'gb-password-default' }),
    };
    f.useDefault.addEventListener('change', () => { f.password.disabled = f.useDefault.checked; });
    const err = h('div', { class: 'form-error', role: 'alert', 'data-testid': 'form-error' });
    const form = h('form', { class: 'form', 'data-testid': 'gb-form', onsubmit: async (ev) => {
      ev.preventDefault();
      err.textContent = '';
      const body = { id: f.id.value.trim(), name: f.name.value.trim(), department: f.department.value };
      // empty keeps the stored password (edit) or means the default (add);
      // "use the default" sends "" to drop a device's own password
      if (f.useDefault.checked) body.password = '';
      else if (f.password.value) body.password = f.password.value;
      await saveDialog(() => (dev ? api.put(`${devicesPath}/${encodeURIComponent(dev.id)}`, body) : api.post(devicesPath, body)),
        m, t('gb.saved', { name: body.name || body.id }), err, reload);
    } },
    h('div', { class: 'form-grid' },
      h('div', { class: 'span2' }, field(t('gb.id'), f.id, dev ? t('gb.idFixed') : t('gb.idHint'))),
      field(t('gb.name'), f.name),
      field(t('cameras.department'), f.department, t('gb.departmentHint')),
      h('div', { class: 'span2' }, field(t('gb.password'), f.password, t('gb.passwordHint'))),
      dev ? h('label', { class: 'check span2' }, f.useDefault, h('span', { text: t('gb.useDefault') })) : null),
    err,
    formActions(() => m.close(), 'gb-save'));
    const m = modal(dev ? t('gb.editTitle', { name: dev.name || dev.id }) : t('gb.addTitle'), form, { testid: 'gb-dialog' });
  }

  // The states change as devices come and go: reload now and then, unless
  // a dialog is open (it would not lose its input, but the list under it
  // would jump).
  async function poll() {
    if (destroyed) return;
    if (!document.querySelector('dialog[open]') && !document.hidden) await reload();
    if (!destroyed) timer = setTimeout(poll, pollMs);
  }

  reload().then(() => { if (!destroyed) timer = setTimeout(poll, pollMs); });
  return () => {
    destroyed = true;
    clearTimeout(timer);
    destroy();
  };
}
