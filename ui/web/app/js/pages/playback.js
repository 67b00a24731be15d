// Playback: one or several cameras on one shared timeline. The page owns the
// clock (play, pause, speed, step, seek), the cameras chosen, the selection,
// export and incidents; each camera's video is a PlaybackCell
// (../playback-cell.js), which loads its chunks and maps its video's time to
// wall-clock time.

import { h, replace, clear, debounce } from '../dom.js';
import * as api from '../api.js';
import { t, deptName, formatDateTime, formatTime } from '../i18n.js';
import { Timeline } from '../timeline.js';
import { deptColor, modal, toast, errorText, field, spinner, errorBox, formActions, saveDialog } from '../ui.js';
import { PlaybackCell, frameStep } from '../playback-cell.js';
import { Thumbnails } from '../thumbs.js';
import { shortcuts } from '../keys.js';
import { toggleHeard } from '../audio.js';

const speeds = [0.5, 1, 2, 4, 8];

export function mount(view, ctx) {
  const params = ctx.params;
  let cameras = [];
  let chosen = (params.get('camera') || '').split(',').map((s) => s.trim()).filter(Boolean);
  let cursor = params.get('t') ? +new Date(params.get('t')) : NaN;
  let selection = params.get('start') && params.get('end') ? { start: new Date(params.get('start')), end: new Date(params.get('end')) } : null;
  let playing = false;
  let speed = 1;
  let destroyed = false;
  let incidents = [];
  const cells = new Map();
  let rafId = 0;
  const fetchCtl = { abort: null };

  // ---- controls
  const camSelect = h('select', { 'data-testid': 'pb-camera-select', 'aria-label': t('playback.addCamera') });
  const addBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-camera-add', text: t('playback.addCamera'), onclick: () => {
    if (camSelect.value && !chosen.includes(camSelect.value)) {
      chosen.push(camSelect.value);
      camerasChanged();
    }
  } });
  const chips = h('div', { class: 'chips pb-chips', 'data-testid': 'pb-cameras' });
  const dayInput = h('input', { type: 'date', 'data-testid': 'pb-day', 'aria-label': t('playback.day'), onchange: () => {
    if (!dayInput.value) return;
    const [y, m, d] = dayInput.value.split('-').map(Number);
    const start = new Date(y, m - 1, d);
    timeline.setView(start, new Date(y, m - 1, d + 1));
  } });
  const dayBtn = (delta, label, testid) => h('button', { type: 'button', class: 'btn btn-icon', text: label, 'data-testid': testid, onclick: () => {
    const s = new Date(timeline.view.start + delta * 24 * 3600 * 1000);
    s.setHours(0, 0, 0, 0);
    timeline.setView(s, new Date(s.getFullYear(), s.getMonth(), s.getDate() + 1));
  } });

  const playBtn = h('button', { type: 'button', class: 'btn btn-primary pb-play', 'data-testid': 'pb-play', text: t('playback.play'), onclick: togglePlay });
  const speedSel = h('select', { 'data-testid': 'pb-speed', 'aria-label': t('playback.speed'), onchange: () => setSpeed(Number(speedSel.value)) },
    speeds.map((s) => h('option', { value: s, text: `${s}×`, selected: s === 1 })));
  const stepBack = h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'pb-step-back', title: t('playback.stepBack'), 'aria-label': t('playback.stepBack'), text: '|◀', onclick: () => step(-1) });
  const stepFwd = h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'pb-step', title: t('playback.step'), 'aria-label': t('playback.step'), text: '▶|', onclick: () => step(1) });
  const readout = h('span', { class: 'pb-time', 'data-testid': 'pb-time', text: '--:--:--' });
  const markIn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-mark-in', text: t('playback.markIn'), onclick: () => mark('start') });
  const markOut = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-mark-out', text: t('playback.markOut'), onclick: () => mark('end') });
  const selText = h('span', { class: 'muted pb-sel', 'data-testid': 'pb-selection' });
  const exportBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-export', text: t('playback.export'), onclick: () => exportClip() });
  const packageBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-export-package', text: t('playback.exportPackage'),
    title: t('playback.exportPackageHelp'), onclick: () => exportClip('package') });
  const incidentBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-incident', text: t('playback.createIncident'), onclick: createIncident });
  const clearSelBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-small', text: t('playback.clearSelection'), onclick: () => setSelection(null) });

  const reloadRecordings = debounce(() => loadRecordings(), 250);
  const showDay = () => {
    const d = new Date((timeline.view.start + timeline.view.end) / 2);
    dayInput.value = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  };
  const videos = h('div', { class: 'pb-videos', 'data-testid': 'pb-videos' });
  const timeline = new Timeline({
    thumbnails: new Thumbnails(),
    onSeek: (d) => seek(+d),
    onSelect: (sel) => setSelection(sel),
    onView: () => {
      showDay();
      reloadRecordings();
    },
    onIncident: (inc) => {
      setSelection({ start: new Date(inc.start), end: new Date(inc.end) });
      seek(+new Date(inc.start));
    },
  });

  replace(view, h('section', { class: 'page playback-page', 'data-testid': 'playback' },
    h('div', { class: 'toolbar' },
      h('h1', { class: 'toolbar-title', text: t('playback.title') }),
      chips, camSelect, addBtn,
      h('span', { class: 'toolbar-spacer' }),
      dayBtn(-1, '‹', 'pb-day-prev'), dayInput, dayBtn(1, '›', 'pb-day-next')),
    videos,
    h('div', { class: 'pb-controls' },
      stepBack, playBtn, stepFwd, speedSel, readout,
      h('span', { class: 'toolbar-spacer' }),
      markIn, markOut, selText, clearSelBtn,
      ctx.can('export') ? exportBtn : null,
      ctx.can('export') ? packageBtn : null,
      ctx.can('incidents') ? incidentBtn : null),
    timeline.el));

  // ---- cameras
  function camerasChanged() {
    chosen = chosen.filter((id) => cameras.some((c) => c.id === id));
    clear(chips);
    for (const id of chosen) {
      const c = cameras.find((x) => x.id === id);
      const chip = h('span', { class: 'chip chip-removable', 'data-camera-id': id }, c.name || c.id,
        chosen.length > 1 ? h('button', { type: 'button', class: 'chip-x', 'aria-label': t('common.remove'), text: '×', onclick: () => {
          chosen = chosen.filter((x) => x !== id);
          camerasChanged();
        } }) : null);
      chip.style.setProperty('--dept', deptColor(c.department));
      chips.appendChild(chip);
    }
    replace(camSelect, cameras.filter((c) => !chosen.includes(c.id)).map((c) => {
      const d = ctx.departments.find((x) => x.id === c.department);
      return h('option', { value: c.id, text: `${c.name || c.id} · ${d ? deptName(d) : c.department}` });
    }));
    addBtn.disabled = camSelect.options.length === 0;
    // video cells
    for (const [id, cell] of cells) {
      if (!chosen.includes(id)) {
        cell.seq++;
        cell.unload();
        cells.delete(id);
      }
    }
    clear(videos);
    videos.dataset.count = String(chosen.length);
    for (const id of chosen) {
      let cell = cells.get(id);
      if (!cell) cell = createCell(cameras.find((c) => c.id === id));
      videos.appendChild(cell.el);
    }
    timeline.setRows(chosen.map((id) => {
      const c = cameras.find((x) => x.id === id);
      return { id, label: c.name || id, color: deptColor(c.department) };
    }));
    syncHash();
    loadRecordings();
    renderIncidents();
    if (Number.isFinite(cursor)) seek(cursor);
  }

  // what a cell asks of the page
  const page = {
    get playing() { return playing; },
    get speed() { return speed; },
    get destroyed() { return destroyed; },
    timeline,
    isCurrent: (cell) => cells.get(cell.id) === cell,
    updateReadout: () => updateReadout(),
    loadRecordings: () => loadRecordings(),
  };

  function createCell(cam) {
    const cell = new PlaybackCell(cam, page);
    cell.audio.setCodec(audioCodecs.get(cam.id));
    cells.set(cam.id, cell);
    return cell;
  }

  // ---- sound: each camera's audio codec, from its status (audio.js)
  const audioCodecs = new Map();
  async function loadAudioCodecs() {
    try {
      for (const s of api.list(await api.get('/api/v1/status'), 'cameras')) audioCodecs.set(s.id, s.audio?.codec || '');
    } catch {
      return; // no speaker buttons
    }
    if (destroyed) return;
    for (const [id, cell] of cells) cell.audio.setCodec(audioCodecs.get(id));
  }

  // ---- keyboard (keys.js): play/pause, frame step, speed, ±10 s, camera, full screen, sound
  const unkeys = shortcuts({
    playPause: () => togglePlay(),
    step: (dir) => step(dir),
    speed: (d) => {
      const i = Math.min(speeds.length - 1, Math.max(0, speeds.indexOf(speed) + d));
      speedSel.value = String(speeds[i]);
      setSpeed(speeds[i]);
    },
    jump: (s) => {
      const now = currentTimeMs();
      if (Number.isFinite(now)) seek(now + s * 1000);
    },
    camera: (d) => {
      // the first camera shown becomes the next (or previous) one not shown
      if (!chosen.length || cameras.length <= chosen.length) return;
      let i = cameras.findIndex((c) => c.id === chosen[0]);
      do i = (i + d + cameras.length) % cameras.length; while (chosen.includes(cameras[i].id));
      chosen[0] = cameras[i].id;
      camerasChanged();
    },
    fullscreen: () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else videos.requestFullscreen?.().catch(() => {});
    },
    audio: () => toggleHeard(chosen.map((id) => cells.get(id)?.audio)),
  });

  // ---- seeking and playing
  function seek(ms) {
    if (!Number.isFinite(ms)) return;
    cursor = ms;
    timeline.setCursor(ms);
    if (ms < timeline.view.start || ms > timeline.view.end) {
      const span = timeline.view.end - timeline.view.start;
      timeline.setView(ms - span / 2, ms + span / 2);
    }
    for (const cell of cells.values()) cell.load(ms);
    updateReadout();
    syncHash();
  }

  function primary() {
    for (const id of chosen) {
      const c = cells.get(id);
      if (c && c.video.getAttribute('src') && c.video.readyState > 0) return c;
    }
    return null;
  }

  function updateReadout() {
    const p = primary();
    const ms = p ? p.wallTime() : cursor;
    if (Number.isFinite(ms)) {
      readout.textContent = `${formatDateTime(ms)}.${String(new Date(ms).getMilliseconds()).padStart(3, '0')}`;
      readout.dataset.time = new Date(ms).toISOString();
      if (p) timeline.setCursor(ms);
    }
  }

  function tick() {
    updateReadout();
    if (playing && !destroyed) rafId = requestAnimationFrame(tick);
  }

  function togglePlay() {
    playing = !playing;
    playBtn.textContent = playing ? t('playback.pause') : t('playback.play');
    playBtn.dataset.playing = String(playing);
    if (playing) {
      if (!primary() && Number.isFinite(cursor)) seek(cursor);
      for (const c of cells.values()) {
        c.shown = NaN;
        c.video.playbackRate = speed;
        if (c.video.getAttribute('src')) c.video.play().catch(() => {});
      }
      cancelAnimationFrame(rafId);
      rafId = requestAnimationFrame(tick);
    } else {
      for (const c of cells.values()) c.video.pause();
      const p = primary();
      if (p && Number.isFinite(p.wallTime())) cursor = p.wallTime();
      updateReadout();
    }
  }

  function setSpeed(s) {
    speed = s;
    for (const c of cells.values()) {
      c.video.defaultPlaybackRate = s;
      c.video.playbackRate = s;
    }
  }

  // step moves every cell one frame forward or back (dir 1 or -1). A
  // playback response is a stream without Range support, in which Chromium
  // cannot seek (its seekable range is [0, 0]: setting currentTime lands on
  // the clip's first frame). So a step forward plays until the next frame is
  // shown, and a step back loads the clip again from the keyframe at or
  // before the frame wanted and plays up to it.
  function step(dir) {
    if (playing) togglePlay();
    const p = primary();
    const from = p ? p.wallTime() : cursor;
    if (!Number.isFinite(from)) return;
    const target = from + dir * frameStep * 1000;
    videos.dataset.stepping = 'true'; // until every cell shows its frame
    const done = [];
    for (const c of cells.values()) {
      if (c.loading || c.video.readyState < 2 || !Number.isFinite(c.base)) continue;
      const want = c.t0 + (target - c.base) / 1000; // target on this cell's media timeline
      c.shown = NaN;
      if (want >= c.t0 && want >= c.video.currentTime) {
        done.push(c.playUntil(want));
      } else {
        done.push(new Promise((resolve) => {
          const seq = c.seq + 1;
          c.video.addEventListener('loadeddata', () => {
            if (c.seq !== seq || playing) return resolve();
            c.playUntil(c.t0 + (target - c.base) / 1000).then(resolve);
          }, { once: true });
          c.load(target);
        }));
      }
    }
    Promise.all(done).then(() => {
      delete videos.dataset.stepping;
      if (destroyed || playing) return;
      const q = primary();
      if (q && Number.isFinite(q.wallTime())) cursor = q.wallTime();
      updateReadout();
    });
  }

  function currentTimeMs() {
    const p = primary();
    return p ? p.wallTime() : cursor;
  }

  // ---- range selection, export, incidents
  function mark(which) {
    const now = currentTimeMs();
    if (!Number.isFinite(now)) return;
    const s = selection ? { ...selection } : { start: new Date(now), end: new Date(now + 30000) };
    s[which] = new Date(now);
    if (s.end <= s.start) {
      if (which === 'start') s.end = new Date(now + 30000);
      else s.start = new Date(now - 30000);
    }
    setSelection(s);
  }

  function setSelection(sel) {
    selection = sel;
    timeline.setSelection(sel);
    const has = !!sel;
    exportBtn.disabled = !has;
    packageBtn.disabled = !has;
    incidentBtn.disabled = !has;
    clearSelBtn.hidden = !has;
    selText.textContent = has ? `${formatTime(sel.start)} – ${formatTime(sel.end)} (${Math.round((sel.end - sel.start) / 1000)} s)` : t('playback.noSelection');
    syncHash();
  }

  // exportClip downloads the selection of each camera shown: the MP4, or
  // with format 'package' a signed evidence package (a zip).
  function exportClip(format) {
    if (!selection) return;
    for (const id of chosen) {
      const a = h('a', {
        href: api.url(api.camPath(id, 'export'), { start: selection.start.toISOString(), end: selection.end.toISOString(), format }),
        download: `${id}_${selection.start.toISOString().replace(/[:.]/g, '-')}.${format === 'package' ? 'zip' : 'mp4'}`,
      });
      document.body.appendChild(a);
      a.click();
      a.remove();
    }
    toast(t('playback.exportStarted'), 'ok');
  }

  function createIncident() {
    if (!selection) return;
    const title = h('input', { required: true, 'data-testid': 'incident-title' });
    const note = h('textarea', { rows: 3, 'data-testid': 'incident-note' });
    const camBoxes = h('div', { class: 'check-list' }, chosen.map((id) => h('label', { class: 'check' },
      h('input', { type: 'checkbox', value: id, checked: true }), h('span', { text: cameras.find((c) => c.id === id)?.name || id }))));
    const err = h('div', { class: 'form-error' });
    const form = h('form', { class: 'form', onsubmit: async (ev) => {
      ev.preventDefault();
      const ids = [...camBoxes.querySelectorAll('input:checked')].map((x) => x.value);
      if (!ids.length) {
        err.textContent = t('playback.pickOneCamera');
        return;
      }
      await saveDialog(() => api.post('/api/v1/incidents', {
        title: title.value.trim(), cameras: ids, start: selection.start.toISOString(), end: selection.end.toISOString(), note: note.value.trim(),
      }), m, t('playback.incidentCreated'), err, loadIncidents);
    } },
    h('p', { class: 'muted', text: `${formatDateTime(selection.start)} – ${formatDateTime(selection.end)}` }),
    field(t('incidents.titleField'), title),
    field(t('incidents.cameras'), camBoxes),
    field(t('incidents.note'), note),
    err,
    formActions(() => m.close(), 'incident-save'));
    const m = modal(t('playback.createIncident'), form, { testid: 'incident-dialog' });
    title.focus();
  }

  // ---- data
  async function loadRecordings() {
    if (fetchCtl.abort) fetchCtl.abort.abort();
    const ac = new AbortController();
    fetchCtl.abort = ac;
    const span = timeline.view.end - timeline.view.start;
    const start = new Date(timeline.view.start - span * 0.1).toISOString();
    const end = new Date(timeline.view.end + span * 0.1).toISOString();
    await Promise.all(chosen.map(async (id) => {
      try {
        const rec = await api.get(api.camPath(id, 'recordings'), { start, end }, { signal: ac.signal });
        if (!destroyed) timeline.setData(id, rec.spans || []);
      } catch (err) {
        if (err.name !== 'AbortError' && err.status !== 401) toast(errorText(err), 'error');
      }
      // offline periods: drawn when the server has them, silently absent otherwise
      try {
        const ev = await api.get(api.camPath(id, 'events'), { start, end }, { signal: ac.signal });
        if (!destroyed) timeline.setEvents(id, ev.events || []);
      } catch (err) {
        if (err.name !== 'AbortError' && !destroyed) timeline.setEvents(id, []);
      }
    }));
    if (destroyed || ac.signal.aborted) return;
    // First visit without a time: show the last recorded minute.
    if (!Number.isFinite(cursor)) {
      const last = chosen.flatMap((id) => timeline.spansOf(id)).reduce((m, s) => Math.max(m, s.end), 0);
      if (last) seek(last - 60 * 1000);
    }
  }

  async function loadIncidents() {
    if (!ctx.can('incidents')) return;
    try {
      incidents = api.list(await api.get('/api/v1/incidents'), 'incidents');
      renderIncidents();
    } catch {
      incidents = [];
    }
  }

  function renderIncidents() {
    timeline.setIncidents(incidents.filter((i) => (i.cameras || []).some((c) => chosen.includes(c))));
  }

  function syncHash() {
    const q = new URLSearchParams();
    if (chosen.length) q.set('camera', chosen.join(','));
    if (Number.isFinite(cursor)) q.set('t', new Date(cursor).toISOString());
    if (selection) {
      q.set('start', selection.start.toISOString());
      q.set('end', selection.end.toISOString());
    }
    history.replaceState(null, '', '#/playback?' + q.toString());
  }

  // ---- start
  videos.appendChild(spinner());
  setSelection(selection);
  (async () => {
    try {
      cameras = api.list(await api.get('/api/v1/cameras'), 'cameras').sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
    } catch (err) {
      if (err.status !== 401 && !destroyed) replace(videos, errorBox(err));
      return;
    }
    if (destroyed) return;
    if (!cameras.length) {
      replace(videos, h('div', { class: 'empty' }, h('p', { text: t('wall.noCameras') })));
      return;
    }
    if (!chosen.length) chosen = [cameras[0].id];
    // Initial view: the selection, else an hour around the given time, else today.
    const anchor = Number.isFinite(cursor) ? new Date(cursor) : new Date();
    if (selection) {
      const pad = Math.max(60 * 1000, (selection.end - selection.start) * 0.5);
      timeline.setView(+selection.start - pad, +selection.end + pad, false);
    } else if (Number.isFinite(cursor)) {
      timeline.setView(cursor - 30 * 60 * 1000, cursor + 30 * 60 * 1000, false);
    } else {
      const d0 = new Date(anchor);
      d0.setHours(0, 0, 0, 0);
      timeline.setView(d0, new Date(d0.getFullYear(), d0.getMonth(), d0.getDate() + 1), false);
    }
    showDay();
    await loadIncidents();
    camerasChanged();
    loadAudioCodecs();
  })();

  return () => {
    destroyed = true;
    unkeys();
    reloadRecordings.cancel();
    cancelAnimationFrame(rafId);
    if (fetchCtl.abort) fetchCtl.abort.abort();
    for (const c of cells.values()) c.close();
  };
}
