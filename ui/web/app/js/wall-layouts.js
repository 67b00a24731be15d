// Saved layouts and tours of the live wall (GET/POST /api/v1/layouts,
// GET/PUT/DELETE /api/v1/layouts/{id}), and swapping two tiles by dragging
// one onto the other. The wall page (pages/wall.js) decides what a change
// does: an open layout the user may change is saved at once; any other
// arrangement stays on this browser until it is saved as a layout.

import { h } from './dom.js';
import * as api from './api.js';
import { t, deptName } from './i18n.js';
import { modal, field, formActions, errorText } from './ui.js';

// grids are the wall's sizes: n cells; 6 is one large tile and five small.
export const grids = [1, 4, 6, 9, 16, 25];

// columns is the width of a grid in cells.
export function columns(n) {
  return n === 6 ? 3 : Math.sqrt(n);
}

// resize keeps the first n cells, padding with empty ones.
export function resize(cells, n) {
  const out = cells.slice(0, n);
  while (out.length < n) out.push(null);
  return out;
}

// parseDwell reads a Go duration ("30s", "1m30s") or seconds, in ms.
export function parseDwell(v) {
  if (typeof v === 'number') return v * 1000;
  const units = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, 'µs': 1e-3, ns: 1e-6 };
  let ms = 0;
  let matched = '';
  for (const m of String(v).matchAll(/(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/g)) {
    ms += Number(m[1]) * units[m[2]];
    matched += m[0];
  }
  if (matched !== String(v)) return Number(v) * 1000 || 0;
  return ms;
}

// canChange tells whether the session may change or delete a layout: its
// owner or an admin (the server decides the same).
export function canChange(layout, session) {
  return !!layout && session.role !== 'display' && (layout.owner === session.username || session.role === 'admin');
}

export const listLayouts = async () => api.list(await api.get('/api/v1/layouts'), 'layouts');
export const getLayout = (id) => api.get(`/api/v1/layouts/${encodeURIComponent(id)}`);
export const createLayout = (l) => api.post('/api/v1/layouts', l);
export const updateLayout = (l) => api.put(`/api/v1/layouts/${encodeURIComponent(l.id)}`, l);
export const deleteLayout = (id) => api.del(`/api/v1/layouts/${encodeURIComponent(id)}`);

// layoutDialog asks for a layout's name and sharing, and for a tour its
// dwell and layouts (none: the pages of every camera). It resolves to
// {name, shared, tour} or undefined when cancelled; save(values) runs the
// API call, whose error stays in the dialog.
export function layoutDialog(ctx, { title, layout = null, tour = false, all = [], save }) {
  const mine = ctx.session.departments || [];
  const share = h('select', { 'data-testid': 'layout-share' },
    h('option', { value: '', text: t('layouts.private') }),
    ctx.departments.filter((d) => !mine.length || mine.includes(d.id))
      .map((d) => h('option', { value: d.id, text: t('layouts.sharedWith', { dept: deptName(d) }), selected: layout?.shared === d.id })));
  const name = h('input', { type: 'text', required: true, maxLength: 100, value: layout?.name || '', 'data-testid': 'layout-name' });
  const dwell = h('input', { type: 'number', min: 5, step: 1, value: layout?.tour ? Math.round(parseDwell(layout.tour.dwell) / 1000) : 30, 'data-testid': 'tour-dwell' });
  const chosen = new Set(layout?.tour?.layouts || []);
  const steps = h('div', { class: 'check-list', 'data-testid': 'tour-layouts' },
    all.filter((l) => !l.tour).map((l) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: l.id, checked: chosen.has(l.id), 'data-layout-id': l.id }),
      h('span', { text: l.name }))));
  const err = h('p', { class: 'form-error', 'data-testid': 'layout-error', role: 'alert' });
  const form = h('form', { class: 'form' },
    field(t('layouts.name'), name),
    field(t('layouts.share'), share, t('layouts.shareHelp')),
    tour ? field(t('layouts.dwell'), dwell, t('layouts.dwellHelp')) : null,
    tour ? field(t('layouts.tourLayouts'), steps, t('layouts.tourLayoutsHelp')) : null,
    err,
    formActions(() => m.close(), 'layout-dialog-save'));
  const m = modal(title, form, { testid: 'layout-dialog' });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const values = {
      name: name.value.trim(),
      shared: share.value || null,
      tour: tour ? { layouts: [...steps.querySelectorAll('input:checked')].map((x) => x.value), dwell: `${Number(dwell.value) || 0}s` } : null,
    };
    try {
      m.close(await save(values));
    } catch (e) {
      err.textContent = errorText(e);
    }
  });
  name.focus();
  return m.done;
}

// enableSwap lets the user drag a tile onto another cell of grid (an
// element with data-cell, a tile or an empty cell): onSwap(from, to) gets
// the two cell numbers. Pointer events, so that a mouse, a pen and
// scripted input all work; a drag starts after 8 px and eats the click
// that ends it.
export function enableSwap(grid, onSwap) {
  let drag = null;
  const cellAt = (x, y) => document.elementFromPoint(x, y)?.closest('[data-cell]');
  const end = () => {
    if (!drag) return;
    drag.from.classList.remove('tile-dragging');
    drag.over?.classList.remove('tile-drop');
    window.removeEventListener('pointermove', move);
    window.removeEventListener('pointerup', up);
    window.removeEventListener('pointercancel', end);
    drag = null;
  };
  const move = (ev) => {
    if (!drag) return;
    if (!drag.active && Math.hypot(ev.clientX - drag.x, ev.clientY - drag.y) < 8) return;
    drag.active = true;
    drag.from.classList.add('tile-dragging');
    const over = cellAt(ev.clientX, ev.clientY);
    if (over !== drag.over) {
      drag.over?.classList.remove('tile-drop');
      drag.over = over && over !== drag.from && grid.contains(over) ? over : null;
      drag.over?.classList.add('tile-drop');
    }
  };
  const up = (ev) => {
    const d = drag;
    move(ev);
    end();
    if (!d?.active) return;
    const swallow = (e) => { e.stopPropagation(); e.preventDefault(); };
    window.addEventListener('click', swallow, { capture: true, once: true });
    setTimeout(() => window.removeEventListener('click', swallow, { capture: true }), 0);
    if (d.over) onSwap(Number(d.from.dataset.cell), Number(d.over.dataset.cell));
  };
  const down = (ev) => {
    if (ev.button !== 0 || drag) return;
    const from = ev.target.closest('[data-cell]');
    if (!from || !from.dataset.cameraId || ev.target.closest('button, input, select, a')) return;
    drag = { from, x: ev.clientX, y: ev.clientY, active: false, over: null };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    window.addEventListener('pointercancel', end);
  };
  grid.addEventListener('pointerdown', down);
  return () => {
    end();
    grid.removeEventListener('pointerdown', down);
  };
}
