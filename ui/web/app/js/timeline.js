// timeline.js: the playback timeline. One row per camera with its recorded
// spans (gaps are where nothing is drawn), a band of incidents, a cursor and
// a selected range. Zoom from a week to a minute with the wheel or buttons;
// click or drag to seek; shift+drag (or the range handles) selects a range.
// With a Thumbnails source (thumbs.js), hovering or scrubbing shows the
// recorded frame of the moment under the pointer, and a view of stripMaxSpanMs
// or less shows a strip of frames along the top.

import { h, clear, debounce } from './dom.js';
import { t, formatDate, formatTime } from './i18n.js';
import { drawInto } from './thumbs.js';

const minSpanMs = 60 * 1000;
const stripMaxSpanMs = 10 * 60 * 1000; // the strip shows from this zoom in
const stripSlotPx = 110;               // one strip frame per this many pixels
const maxSpanMs = 7 * 24 * 3600 * 1000;
const tickSteps = [5, 10, 30, 60, 120, 300, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600].map((s) => s * 1000);
export const zoomPresets = [
  { key: 'week', ms: 7 * 24 * 3600 * 1000 },
  { key: 'day', ms: 24 * 3600 * 1000 },
  { key: 'hours6', ms: 6 * 3600 * 1000 },
  { key: 'hour', ms: 3600 * 1000 },
  { key: 'min10', ms: 10 * 60 * 1000 },
  { key: 'min1', ms: 60 * 1000 },
];

export class Timeline {
  // onSeek(Date), onSelect({start, end} | null), onView({start, end}).
  // thumbnails: a thumbs.js Thumbnails, for previews and the strip (none without).
  constructor({ onSeek = () => {}, onSelect = () => {}, onView = () => {}, onIncident = () => {}, thumbnails = null } = {}) {
    this.thumbnails = thumbnails;
    this.onSeek = onSeek;
    this.onSelect = onSelect;
    this.onView = onView;
    this.onIncident = onIncident;
    this.rows = [];
    this.data = new Map();
    this.events = new Map(); // camera → offline periods (and later alarms)
    this.incidents = [];
    this.view = { start: 0, end: 1 };
    this.cursor = null;
    this.selection = null;
    this.drag = null;

    this.axis = h('div', { class: 'tl-axis' });
    this.tracks = h('div', { class: 'tl-tracks' });
    this.incBand = h('div', { class: 'tl-track tl-incidents', 'data-testid': 'timeline-incidents' });
    this.sel = h('div', { class: 'tl-sel', 'data-testid': 'timeline-selection', hidden: true });
    this.cursorEl = h('div', { class: 'tl-cursor', 'data-testid': 'timeline-cursor', hidden: true });
    this.hover = h('div', { class: 'tl-hover', hidden: true });
    this.previewCanvas = h('canvas', { class: 'tl-preview-img' });
    this.previewTime = h('span', { class: 'tl-preview-time' });
    this.preview = h('div', { class: 'tl-preview', 'data-testid': 'timeline-preview', hidden: true }, this.previewCanvas, this.previewTime);
    this.previewSeq = 0;
    this.strip = h('div', { class: 'tl-strip', 'data-testid': 'timeline-strip', hidden: true });
    this.stripSeq = 0;
    this.renderStripSoon = debounce(() => this.renderStrip(), 150);
    this.area = h('div', { class: 'tl-area', 'data-testid': 'timeline-area' },
      this.axis, this.strip, this.tracks, this.incBand, this.sel, this.cursorEl, this.hover, this.preview);
    this.labels = h('div', { class: 'tl-labels' });
    this.rangeText = h('span', { class: 'tl-range', 'data-testid': 'timeline-range' });
    const zoomBtns = zoomPresets.map((p) => h('button', {
      type: 'button', class: 'seg-btn', 'data-testid': `zoom-${p.key}`, text: t('timeline.' + p.key),
      onclick: () => this.zoomTo(p.ms),
    }));
    this.el = h('div', { class: 'timeline', 'data-testid': 'timeline' },
      h('div', { class: 'tl-controls' },
        h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'pan-left', 'aria-label': t('timeline.earlier'), text: '◀', onclick: () => this.pan(-0.5) }),
        h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'zoom-out', 'aria-label': t('timeline.zoomOut'), text: '−', onclick: () => this.zoom(2) }),
        h('div', { class: 'seg' }, zoomBtns),
        h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'zoom-in', 'aria-label': t('timeline.zoomIn'), text: '+', onclick: () => this.zoom(0.5) }),
        h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'pan-right', 'aria-label': t('timeline.later'), text: '▶', onclick: () => this.pan(0.5) }),
        this.rangeText,
        h('span', { class: 'toolbar-spacer' }),
        h('span', { class: 'muted small', text: t('timeline.help') })),
      h('div', { class: 'tl-body' }, this.labels, this.area));

    this.area.addEventListener('pointerdown', (e) => this.pointerDown(e));
    this.area.addEventListener('pointermove', (e) => this.pointerMove(e));
    this.area.addEventListener('pointerup', (e) => this.pointerUp(e));
    this.area.addEventListener('pointercancel', () => { this.drag = null; });
    this.area.addEventListener('pointerleave', () => {
      this.hover.hidden = true;
      if (!this.drag) this.hidePreview();
    });
    this.area.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
  }

  setRows(rows) {
    this.rows = rows;
    this.render();
  }

  setData(id, spans) {
    this.data.set(id, spans.map((s) => ({ start: +new Date(s.start), end: +new Date(s.end) })).filter((s) => s.end > s.start));
    this.renderTracks();
    if (id === this.rows[0]?.id) this.renderStripSoon();
  }

  // setEvents sets a camera's events ({type, start, end|null, message}); an
  // event without an end lasts until now.
  setEvents(id, list) {
    this.events.set(id, list.map((e) => ({
      type: e.type, message: e.message || '', open: !e.end,
      start: +new Date(e.start), end: e.end ? +new Date(e.end) : Date.now(),
    })).filter((e) => e.end >= e.start));
    this.renderTracks();
  }

  eventsOf(id) {
    return this.events.get(id) || [];
  }

  spansOf(id) {
    return this.data.get(id) || [];
  }

  // recordedAt tells whether camera id has a recording at instant ms.
  recordedAt(id, ms) {
    return this.spansOf(id).some((s) => s.start <= ms && ms < s.end);
  }

  setIncidents(list) {
    this.incidents = list;
    this.renderIncidents();
  }

  setView(start, end, notify = true) {
    let s = +start;
    let e = +end;
    const span = Math.min(maxSpanMs, Math.max(minSpanMs, e - s));
    const mid = (s + e) / 2;
    s = mid - span / 2;
    e = mid + span / 2;
    this.view = { start: s, end: e };
    this.render();
    if (notify) this.onView({ start: new Date(s), end: new Date(e) });
  }

  zoomTo(ms) {
    const c = this.cursor ?? (this.view.start + this.view.end) / 2;
    this.setView(c - ms / 2, c + ms / 2);
  }

  zoom(factor, anchor) {
    const a = anchor ?? this.cursor ?? (this.view.start + this.view.end) / 2;
    const span = Math.min(maxSpanMs, Math.max(minSpanMs, (this.view.end - this.view.start) * factor));
    const frac = Math.min(1, Math.max(0, (a - this.view.start) / (this.view.end - this.view.start)));
    this.setView(a - span * frac, a - span * frac + span);
  }

  pan(fraction) {
    const d = (this.view.end - this.view.start) * fraction;
    this.setView(this.view.start + d, this.view.end + d);
  }

  setCursor(ms) {
    this.cursor = ms === null ? null : +ms;
    this.renderCursor();
  }

  setSelection(sel) {
    this.selection = sel ? { start: +new Date(sel.start), end: +new Date(sel.end) } : null;
    this.renderSelection();
  }

  x(ms) {
    return ((ms - this.view.start) / (this.view.end - this.view.start)) * 100;
  }

  timeAt(clientX) {
    const r = this.area.getBoundingClientRect();
    const f = Math.min(1, Math.max(0, (clientX - r.left) / r.width));
    return this.view.start + f * (this.view.end - this.view.start);
  }

  place(el, from, to) {
    const l = Math.max(0, this.x(from));
    const r = Math.min(100, this.x(to));
    el.style.left = l + '%';
    el.style.width = Math.max(0, r - l) + '%';
    return r > 0 && l < 100;
  }

  render() {
    clear(this.labels);
    this.labels.appendChild(h('div', { class: 'tl-label tl-label-axis' }));
    for (const r of this.rows) {
      const lab = h('div', { class: 'tl-label', title: r.label, text: r.label });
      lab.style.setProperty('--dept', r.color);
      this.labels.appendChild(lab);
    }
    this.labels.appendChild(h('div', { class: 'tl-label tl-label-inc', text: t('timeline.incidents') }));
    const s = new Date(this.view.start);
    const e = new Date(this.view.end);
    // the view's bounds, for tests that map a time to a point on the area
    this.area.dataset.viewStart = s.toISOString();
    this.area.dataset.viewEnd = e.toISOString();
    this.rangeText.textContent = `${formatDate(s)} ${formatTime(s)} — ${s.toDateString() === e.toDateString() ? '' : formatDate(e) + ' '}${formatTime(e)}`;
    this.renderAxis();
    this.renderTracks();
    this.renderIncidents();
    this.renderCursor();
    this.renderSelection();
    this.renderStripSoon();
  }

  // renderStrip shows, when the view spans stripMaxSpanMs or less, a frame
  // of the first camera every stripSlotPx pixels where it recorded.
  renderStrip() {
    const seq = ++this.stripSeq;
    const tag = 'strip';
    clear(this.strip);
    const span = this.view.end - this.view.start;
    const row = this.rows[0];
    const on = !!(this.thumbnails && row && span <= stripMaxSpanMs && this.area.clientWidth > 0);
    this.strip.hidden = !on;
    this.area.classList.toggle('tl-with-strip', on);
    if (this.thumbnails) this.thumbnails.cancel(tag);
    if (!on) return;
    const n = Math.max(1, Math.floor(this.area.clientWidth / stripSlotPx));
    this.strip.dataset.cameraId = row.id;
    for (let i = 0; i < n; i++) {
      const ms = this.view.start + ((i + 0.5) * span) / n;
      if (!this.recordedAt(row.id, ms)) continue;
      const img = h('canvas', { class: 'tl-strip-img' });
      const slot = h('div', { class: 'tl-strip-slot', 'data-testid': 'timeline-strip-slot', 'data-at': new Date(ms).toISOString() }, img);
      slot.style.left = (i * 100) / n + '%';
      slot.style.width = 100 / n + '%';
      this.strip.appendChild(slot);
      this.thumbnails.get(row.id, ms, tag).then((th) => {
        if (!th || seq !== this.stripSeq) return;
        drawInto(img, th.canvas);
        slot.dataset.time = new Date(th.time).toISOString();
        slot.dataset.ready = 'true';
      });
    }
  }

  // rowAt is the camera of the track under clientY (the first one elsewhere).
  rowAt(clientY) {
    for (const el of this.tracks.children) {
      const r = el.getBoundingClientRect();
      if (clientY >= r.top && clientY < r.bottom) return el.dataset.cameraId;
    }
    return this.rows[0]?.id;
  }

  // showPreview shows the frame recorded at ms on the camera under the
  // pointer, above the pointer; data-ms says how long it took to show.
  showPreview(ms, clientY) {
    if (!this.thumbnails) return;
    const id = this.rowAt(clientY);
    if (!id || !this.recordedAt(id, ms)) {
      this.hidePreview();
      return;
    }
    const seq = ++this.previewSeq;
    const asked = performance.now();
    this.preview.style.left = this.x(ms) + '%';
    this.preview.dataset.at = new Date(ms).toISOString();
    this.thumbnails.get(id, ms).then((th) => {
      if (seq !== this.previewSeq) return;
      if (!th) {
        this.preview.hidden = true;
        return;
      }
      drawInto(this.previewCanvas, th.canvas);
      this.previewTime.textContent = formatTime(th.time);
      const p = this.preview;
      p.dataset.cameraId = id;
      p.dataset.time = new Date(th.time).toISOString();
      p.dataset.ms = (performance.now() - asked).toFixed(1);
      p.dataset.ready = 'true';
      p.hidden = false;
    });
  }

  hidePreview() {
    this.previewSeq++;
    this.preview.hidden = true;
    delete this.preview.dataset.ready;
  }

  renderAxis() {
    clear(this.axis);
    const span = this.view.end - this.view.start;
    const step = tickSteps.find((st) => span / st <= 12) || tickSteps[tickSteps.length - 1];
    const day0 = new Date(this.view.start);
    day0.setHours(0, 0, 0, 0);
    let tick = +day0 + Math.ceil((this.view.start - day0) / step) * step;
    for (; tick <= this.view.end; tick += step) {
      const d = new Date(tick);
      const midnight = d.getHours() === 0 && d.getMinutes() === 0 && d.getSeconds() === 0;
      const label = step >= 24 * 3600 * 1000 || (midnight && step >= 3600 * 1000) ? formatDate(d)
        : step < 60 * 1000 ? formatTime(d) : formatTime(d).slice(0, 5);
      const el = h('div', { class: ['tl-tick', midnight && 'tl-tick-day'] }, h('span', { text: label }));
      el.style.left = this.x(tick) + '%';
      this.axis.appendChild(el);
    }
  }

  renderTracks() {
    clear(this.tracks);
    for (const r of this.rows) {
      const track = h('div', { class: 'tl-track', 'data-camera-id': r.id });
      track.style.setProperty('--dept', r.color);
      for (const s of this.spansOf(r.id)) {
        if (s.end < this.view.start || s.start > this.view.end) continue;
        const el = h('div', { class: 'tl-span', 'data-testid': 'timeline-span', 'data-start': new Date(s.start).toISOString(), 'data-end': new Date(s.end).toISOString(),
          title: `${formatTime(s.start)} – ${formatTime(s.end)}` });
        this.place(el, s.start, s.end);
        track.appendChild(el);
      }
      // offline periods: a band over the bottom of the track, at least a
      // few pixels wide so that a blink of a few seconds is visible in a day
      const minMs = (this.view.end - this.view.start) / 300;
      for (const e of this.eventsOf(r.id)) {
        if (e.end < this.view.start || e.start > this.view.end) continue;
        if (e.type === 'alarm') {
          track.appendChild(this.alarmMarker(e));
          continue;
        }
        const until = e.open ? t('timeline.offlineNow') : formatTime(e.end);
        const el = h('div', { class: ['tl-event', 'tl-event-' + e.type], 'data-testid': 'timeline-event', 'data-type': e.type,
          'data-start': new Date(e.start).toISOString(), 'data-end': e.open ? '' : new Date(e.end).toISOString(),
          title: t('timeline.event.' + e.type, { from: formatTime(e.start), to: until }) + (e.message ? '\n' + e.message : '') });
        this.place(el, e.start, Math.max(e.end, e.start + minMs));
        track.appendChild(el);
      }
      this.tracks.appendChild(track);
    }
  }

  // alarmMarker is a device alarm (an instant): a mark across the track
  // at its time, its text as the tooltip.
  alarmMarker(e) {
    const el = h('div', { class: 'tl-alarm', 'data-testid': 'timeline-event', 'data-type': 'alarm',
      'data-start': new Date(e.start).toISOString(), title: t('timeline.alarmAt', { time: formatTime(e.start) }) + (e.message ? '\n' + e.message : '') });
    el.style.left = this.x(e.start) + '%';
    return el;
  }

  renderIncidents() {
    clear(this.incBand);
    for (const inc of this.incidents) {
      const s = +new Date(inc.start);
      const e = Math.max(+new Date(inc.end), s + (this.view.end - this.view.start) / 400);
      if (e < this.view.start || s > this.view.end) continue;
      const el = h('button', { type: 'button', class: 'tl-incident', 'data-testid': 'timeline-incident', 'data-incident-id': inc.id ?? '',
        title: `${inc.title} (${formatTime(s)} – ${formatTime(+new Date(inc.end))})`, text: inc.title,
        onclick: (ev) => { ev.stopPropagation(); this.onIncident(inc); } });
      el.addEventListener('pointerdown', (ev) => ev.stopPropagation());
      this.place(el, s, e);
      this.incBand.appendChild(el);
    }
  }

  renderCursor() {
    const c = this.cursor;
    const inView = c !== null && c >= this.view.start && c <= this.view.end;
    this.cursorEl.hidden = !inView;
    if (inView) {
      this.cursorEl.style.left = this.x(c) + '%';
      this.cursorEl.dataset.time = new Date(c).toISOString();
    }
  }

  renderSelection() {
    const s = this.selection;
    this.sel.hidden = !s || !this.place(this.sel, s.start, s.end);
  }

  pointerDown(e) {
    if (e.button !== 0) return;
    this.area.setPointerCapture(e.pointerId);
    const t0 = this.timeAt(e.clientX);
    this.drag = { mode: e.shiftKey ? 'select' : 'seek', t0, x0: e.clientX };
    if (this.drag.mode === 'seek') this.setCursor(t0);
    e.preventDefault();
  }

  pointerMove(e) {
    const tm = this.timeAt(e.clientX);
    this.hover.hidden = false;
    this.hover.style.left = this.x(tm) + '%';
    this.hover.textContent = formatTime(tm);
    this.showPreview(tm, e.clientY);
    if (!this.drag) return;
    if (this.drag.mode === 'select' || (Math.abs(e.clientX - this.drag.x0) > 4 && e.shiftKey)) {
      this.drag.mode = 'select';
      this.selection = { start: Math.min(this.drag.t0, tm), end: Math.max(this.drag.t0, tm) };
      this.renderSelection();
    } else {
      this.setCursor(tm);
    }
  }

  pointerUp(e) {
    if (!this.drag) return;
    const d = this.drag;
    this.drag = null;
    const tm = this.timeAt(e.clientX);
    if (d.mode === 'select') {
      const sel = { start: Math.min(d.t0, tm), end: Math.max(d.t0, tm) };
      if (sel.end - sel.start < 1000) {
        this.setSelection(null);
        this.onSelect(null);
      } else {
        this.onSelect({ start: new Date(sel.start), end: new Date(sel.end) });
      }
    } else {
      this.setCursor(tm);
      this.onSeek(new Date(tm));
    }
  }

  wheel(e) {
    e.preventDefault();
    if (Math.abs(e.deltaX) > Math.abs(e.deltaY) || e.shiftKey) {
      const d = (e.shiftKey ? e.deltaY : e.deltaX) / this.area.clientWidth;
      this.pan(d);
      return;
    }
    this.zoom(e.deltaY > 0 ? 1.25 : 0.8, this.timeAt(e.clientX));
  }
}
