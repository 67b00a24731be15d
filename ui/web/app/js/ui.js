// ui.js: shared widgets — dialogs, toasts, badges, department chips, tables.

import { h, clear, replace } from './dom.js';
import { t, deptName } from './i18n.js';

const knownColors = {
  'flood-control': '#15aabf',
  police: '#4c6ef5',
  'cold-storage': '#9775fa',
  'rental-housing': '#f59f00',
};
const palette = ['#e64980', '#40c057', '#fd7e14', '#20c997', '#cc5de8', '#82c91e', '#fab005', '#339af0'];

// deptColor gives every department a stable color.
export function deptColor(id) {
  if (knownColors[id]) return knownColors[id];
  let hash = 0;
  for (const ch of String(id)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return palette[hash % palette.length];
}

// deptChip shows a department name on its color.
export function deptChip(depts, id) {
  const d = depts.find((x) => x.id === id);
  const el = h('span', { class: 'chip', 'data-department': id, text: d ? deptName(d) : id });
  el.style.setProperty('--dept', deptColor(id));
  return el;
}

// statusBadge shows a camera state (online, connecting, offline, disabled, unknown).
export function statusBadge(state) {
  const s = state || 'unknown';
  return h('span', { class: `badge badge-${s}`, 'data-testid': 'status-badge', 'data-state': s, text: t(`state.${s}`) });
}

export function setBadge(el, state) {
  const s = state || 'unknown';
  el.className = `badge badge-${s}`;
  el.dataset.state = s;
  el.textContent = t(`state.${s}`);
}

// modal opens a <dialog> with a title, body and buttons; it resolves to the
// value passed to close() (undefined when dismissed with Esc or Cancel).
export function modal(title, body, { wide = false, testid = 'dialog' } = {}) {
  let resolve;
  const done = new Promise((r) => { resolve = r; });
  const dlg = h('dialog', { class: ['dialog', wide && 'dialog-wide'], 'data-testid': testid },
    h('header', { class: 'dialog-head' },
      h('h2', { text: title }),
      h('button', { type: 'button', class: 'icon-btn', 'aria-label': t('common.close'), text: '✕', onclick: () => close() })),
    h('div', { class: 'dialog-body' }, body));
  let value;
  function close(v) {
    value = v;
    if (dlg.open) dlg.close();
  }
  dlg.addEventListener('close', () => {
    dlg.remove();
    resolve(value);
  });
  document.body.appendChild(dlg);
  dlg.showModal();
  return { dialog: dlg, close, done };
}

// confirmDialog asks a yes/no question; resolves true on confirm.
export function confirmDialog(message, { danger = true, okText } = {}) {
  const m = modal(t('common.confirm'), [
    h('p', { class: 'confirm-text', text: message }),
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => m.close(false) }),
      h('button', { type: 'button', class: ['btn', danger ? 'btn-danger' : 'btn-primary'], 'data-testid': 'confirm-ok', text: okText || t('common.ok'), onclick: () => m.close(true) })),
  ], { testid: 'confirm' });
  return m.done.then((v) => v === true);
}

let toastBox = null;
// toast shows a short message at the bottom right.
export function toast(message, kind = 'info') {
  if (!toastBox || !toastBox.isConnected) {
    toastBox = h('div', { class: 'toasts', 'aria-live': 'polite' });
    document.body.appendChild(toastBox);
  }
  const el = h('div', { class: `toast toast-${kind}`, 'data-testid': 'toast', text: message });
  toastBox.appendChild(el);
  setTimeout(() => el.remove(), kind === 'error' ? 8000 : 4000);
}

// errorText turns an ApiError or Error into words for the user.
export function errorText(err) {
  if (!err) return '';
  if (err.status === 0) return t('error.network');
  if (err.status === 403) return t('error.forbidden');
  return err.message || String(err);
}

// errorBox says why a page's content could not be loaded.
export function errorBox(err) {
  return h('div', { class: 'error-box', text: errorText(err) });
}

// formActions is the foot of a dialog's form: Cancel (calls close) and the
// form's submit button, by default a primary Save with data-testid saveTestid.
export function formActions(close, saveTestid, submit = null) {
  return h('div', { class: 'form-actions' },
    h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: close }),
    submit || h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': saveTestid, text: t('common.save') }));
}

// saveDialog runs save (the API call) for a dialog's form: on success it
// closes the dialog m, says saved and runs then (a reload); on failure it
// shows the error in errEl and leaves the dialog open.
export async function saveDialog(save, m, saved, errEl, then) {
  try {
    await save();
    m.close(true);
    toast(saved, 'ok');
    then();
  } catch (e) {
    errEl.textContent = errorText(e);
  }
}

// rowButton is a small button among a table row's actions; danger marks a
// delete.
export function rowButton(testid, text, onclick, { danger = false } = {}) {
  return h('button', { type: 'button', class: danger ? 'btn btn-small btn-danger-ghost' : 'btn btn-small', 'data-testid': testid, text, onclick });
}

// deleteConfirmed asks question; on yes it runs del (the API call) and says
// deleted, or the error (in the words of errorMessage). It resolves true when
// the user said yes, whatever the outcome, so that the caller reloads.
export async function deleteConfirmed(question, del, deleted, errorMessage = errorText) {
  if (!await confirmDialog(question)) return false;
  try {
    await del();
    toast(deleted);
  } catch (err) {
    toast(errorMessage(err), 'error');
  }
  return true;
}

// notAllowed is the view for a page the user's role may not open.
export function notAllowed() {
  return h('section', { class: 'page page-center', 'data-testid': 'not-allowed' },
    h('div', { class: 'empty' },
      h('div', { class: 'empty-icon', text: '⛔' }),
      h('h2', { text: t('error.notAllowedTitle') }),
      h('p', { text: t('error.notAllowed') }),
      h('a', { class: 'btn', href: '#/wall', text: t('nav.wall') })));
}

// table builds a data table. columns: [{title, cell(row) → node|string, class}].
export function table(columns, rows, { empty = t('common.empty'), rowAttrs } = {}) {
  const tbody = h('tbody');
  if (!rows.length) {
    tbody.appendChild(h('tr', {}, h('td', { class: 'muted center', colSpan: columns.length, text: empty })));
  }
  for (const r of rows) {
    tbody.appendChild(h('tr', rowAttrs ? rowAttrs(r) : {},
      columns.map((c) => h('td', { class: c.class }, c.cell(r)))));
  }
  return h('div', { class: 'table-wrap' },
    h('table', { class: 'table' },
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c.class, text: c.title })))),
      tbody));
}

// field wraps a labelled form control.
export function field(label, control, hint) {
  // A <label> around several controls would tie its text to the first one only.
  const tag = control.tagName === 'DIV' ? 'div' : 'label';
  return h(tag, { class: 'field' },
    h('span', { class: 'field-label', text: label }),
    control,
    hint ? h('span', { class: 'field-hint', text: hint }) : null);
}

// listPage mounts an admin list page in view: a header with title and an add
// button (add: {testid, text, onclick}), an optional help line, and a body
// that load() fills, showing a spinner first and an error box when loading
// fails. It returns reload, to (re)fill the body, and destroy, for unmount.
export function listPage(view, { testid, title, help, add, load }) {
  let destroyed = false;
  const body = h('div', {}, spinner());
  replace(view, h('section', { class: 'page', 'data-testid': testid },
    pageHeader(title,
      h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': add.testid, text: add.text, onclick: add.onclick })),
    help ? h('p', { class: 'muted page-help', text: help }) : null,
    body));
  async function reload() {
    try {
      const content = await load();
      if (!destroyed) replace(body, content);
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(body, errorBox(err));
    }
  }
  return { reload, destroy: () => { destroyed = true; } };
}

// deptChips shows the departments a user or display is limited to, or "all
// departments" when it is not limited.
export function deptChips(depts, ids) {
  return ids && ids.length
    ? h('div', { class: 'chips' }, ids.map((id) => deptChip(depts, id)))
    : h('span', { class: 'muted', text: t('users.allDepartments') });
}

// deptChecks is a form's list of department check boxes, with the ids in
// chosen checked; checkedDepts reads the checked ones back.
export function deptChecks(depts, chosen, testid) {
  return h('div', { class: 'check-list', 'data-testid': testid },
    depts.map((d) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: d.id, checked: chosen.has(d.id), 'data-department-id': d.id }),
      h('span', { text: deptName(d) }))));
}

export function checkedDepts(list) {
  return [...list.querySelectorAll('input:checked')].map((x) => x.value);
}

// pageHeader is the title row of a page with optional actions on the right.
export function pageHeader(title, ...actions) {
  return h('header', { class: 'page-head' }, h('h1', { text: title }), h('div', { class: 'page-actions' }, actions));
}

export function spinner() {
  return h('div', { class: 'spinner', 'aria-label': t('common.loading') });
}

export function clearNode(el) {
  return clear(el);
}
