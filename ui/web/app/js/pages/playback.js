// Playback: one or several cameras on one shared timeline. Each seek is a new
// GET /playback?start=..&duration=.. loaded into the <video>. The clip begins
// at the keyframe at or before start, with its timeline reset to 0: a HEAD of
// the same URL first (answered from the index, without reading video) gives
// that keyframe's wall-clock time in X-Vigil-Start, and the readout maps the
// video's currentTime from there. (A <video src> cannot read the headers of
// its own response; fetch+MSE could, but would have to pace and evict a
// 10-minute chunk itself.)

import { h, replace, clear, debounce } from '../dom.js';
import * as api from '../api.js';
import { t, deptName, formatDateTime, formatTime } from '../i18n.js';
import { Timeline } from '../timeline.js';
import { deptColor, modal, toast, errorText, field, spinner } from '../ui.js';

const chunkSeconds = 600;   // each playback request covers this much
const liveEdgeMs = 90 * 1000; // a clip that ends this close to now may have more soon
const liveEdgeRetryMs = 2000; // wait before asking again at the live edge
const frameStep = 1 / 25;   // step = one frame at 25 fps
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
  const exportBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-export', text: t('playback.export'), onclick: exportClip });
  const incidentBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'pb-incident', text: t('playback.createIncident'), onclick: createIncident });
  const clearSelBtn = h('button', { type: 'button', class: 'btn btn-ghost btn-small', text: t('playback.clearSelection'), onclick: () => setSelection(null) });

  const reloadRecordings = debounce(() => loadRecordings(), 250);
  const showDay = () => {
    const d = new Date((timeline.view.start + timeline.view.end) / 2);
    dayInput.value = `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')}`;
  };
  const videos = h('div', { class: 'pb-videos', 'data-testid': 'pb-videos' });
  const timeline = new Timeline({
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
        unload(cell);
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

  function createCell(cam) {
    const video = h('video', { playsInline: true, muted: true, preload: 'auto', 'data-camera-id': cam.id });
    const msg = h('div', { class: 'pb-msg', hidden: true });
    const el = h('div', { class: 'pb-cell', 'data-testid': 'pb-cell', 'data-camera-id': cam.id },
      video, h('div', { class: 'tile-bar' }, h('span', { class: 'tile-name', text: cam.name || cam.id })), msg);
    el.style.setProperty('--dept', deptColor(cam.department));
    const cell = { id: cam.id, el, video, msg, base: NaN, t0: 0, shown: NaN, loading: false, seq: 0 };
    video.addEventListener('loadedmetadata', () => {
      cell.t0 = video.buffered.length ? video.buffered.start(0) : (video.seekable.length ? video.seekable.start(0) : 0);
      cell.loading = false;
      msg.hidden = true;
      video.playbackRate = speed;
      if (playing) video.play().catch(() => {});
      else updateReadout();
    });
    video.addEventListener('timeupdate', () => { if (!playing) updateReadout(); });
    video.addEventListener('error', () => {
      cell.loading = false;
      if (!video.getAttribute('src')) return;
      showMsg(cell, t('playback.noRecording'));
    });
    video.addEventListener('ended', () => {
      // Continue with the next chunk, skipping a gap in recording.
      if (!playing || !Number.isFinite(cell.base)) return;
      const next = wallTime(cell) + 1;
      if (timeline.recordedAt(cell.id, next)) {
        load(cell, next);
        return;
      }
      const after = timeline.spansOf(cell.id).filter((s) => s.start > next).sort((a, b) => a.start - b.start)[0];
      if (after) {
        load(cell, after.start);
      } else if (Date.now() - next < liveEdgeMs) {
        // At the live edge the recording is still growing (the open segment is
        // reviewable): fetch the spans again and go on with what was added.
        setTimeout(async () => {
          if (!playing || destroyed) return;
          await loadRecordings();
          if (timeline.recordedAt(cell.id, next)) load(cell, next);
          else showMsg(cell, t('playback.end'));
        }, liveEdgeRetryMs);
      } else {
        showMsg(cell, t('playback.end'));
      }
    });
    cells.set(cam.id, cell);
    return cell;
  }

  function showMsg(cell, text) {
    cell.msg.hidden = false;
    replace(cell.msg, h('span', { text }));
  }

  // ---- seeking and playing
  function unload(cell) {
    cell.video.removeAttribute('src');
    cell.video.removeAttribute('data-start');
    cell.video.load();
  }

  // load plays the cell from the keyframe at or before ms. cell.base becomes
  // the wall-clock time of the clip's first frame (X-Vigil-Start), so that
  // currentTime t0 is that instant, not the instant asked for.
  async function load(cell, ms) {
    const seq = ++cell.seq;
    cell.shown = NaN;
    cell.base = NaN;
    cell.t0 = 0;
    if (timeline.spansOf(cell.id).length && !timeline.recordedAt(cell.id, ms)) {
      // Nothing recorded here: say so instead of asking for a 404.
      unload(cell);
      showMsg(cell, t('playback.noRecording'));
      return;
    }
    unload(cell); // the old clip's picture and times no longer apply
    cell.loading = true;
    cell.msg.hidden = false;
    replace(cell.msg, spinner());
    const src = api.url(api.camPath(cell.id, 'playback'), { start: new Date(ms).toISOString(), duration: `${chunkSeconds}s` });
    let res = null;
    try {
      res = await fetch(src, { method: 'HEAD', credentials: 'same-origin' });
    } catch {
      // network error: the <video> below reports it
    }
    if (destroyed || seq !== cell.seq || cells.get(cell.id) !== cell) return; // a later seek won
    if (res && res.status === 401) {
      cell.loading = false;
      api.signalUnauthorized();
      return;
    }
    if (res && !res.ok) {
      cell.loading = false;
      unload(cell);
      showMsg(cell, res.status === 404 ? t('playback.noRecording') : `${res.status} ${res.statusText}`);
      return;
    }
    const first = res ? parseStart(res.headers.get('X-Vigil-Start')) : NaN;
    cell.base = Number.isFinite(first) ? first : ms;
    cell.video.dataset.start = new Date(cell.base).toISOString();
    cell.video.defaultPlaybackRate = speed;
    cell.video.src = src;
  }

  // parseStart reads an RFC 3339 time with up to nanoseconds into epoch ms.
  function parseStart(v) {
    if (!v) return NaN;
    return Date.parse(v.replace(/(\.\d{3})\d+/, '$1'));
  }

  function seek(ms) {
    if (!Number.isFinite(ms)) return;
    cursor = ms;
    timeline.setCursor(ms);
    if (ms < timeline.view.start || ms > timeline.view.end) {
      const span = timeline.view.end - timeline.view.start;
      timeline.setView(ms - span / 2, ms + span / 2);
    }
    for (const cell of cells.values()) load(cell, ms);
    updateReadout();
    syncHash();
  }

  // wallTime maps a cell's video position to wall-clock milliseconds.
  function wallTime(cell) {
    if (!Number.isFinite(cell.base)) return NaN;
    const ct = cell.video.paused && Number.isFinite(cell.shown) ? cell.shown : cell.video.currentTime;
    return cell.base + Math.max(0, ct - cell.t0) * 1000;
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
    const ms = p ? wallTime(p) : cursor;
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
      if (p && Number.isFinite(wallTime(p))) cursor = wallTime(p);
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
    const from = p ? wallTime(p) : cursor;
    if (!Number.isFinite(from)) return;
    const target = from + dir * frameStep * 1000;
    videos.dataset.stepping = 'true'; // until every cell shows its frame
    const done = [];
    for (const c of cells.values()) {
      if (c.loading || c.video.readyState < 2 || !Number.isFinite(c.base)) continue;
      const want = c.t0 + (target - c.base) / 1000; // target on this cell's media timeline
      c.shown = NaN;
      if (want >= c.t0 && want >= c.video.currentTime) {
        done.push(playUntil(c, want));
      } else {
        done.push(new Promise((resolve) => {
          const seq = c.seq + 1;
          c.video.addEventListener('loadeddata', () => {
            if (c.seq !== seq || playing) return resolve();
            playUntil(c, c.t0 + (target - c.base) / 1000).then(resolve);
          }, { once: true });
          load(c, target);
        }));
      }
    }
    Promise.all(done).then(() => {
      delete videos.dataset.stepping;
      if (destroyed || playing) return;
      const q = primary();
      if (q && Number.isFinite(wallTime(q))) cursor = wallTime(q);
      updateReadout();
    });
  }

  // playUntil plays a paused cell until the frame at media time want is
  // shown, then pauses it there.
  function playUntil(cell, want) {
    const v = cell.video;
    const seq = cell.seq;
    if (v.currentTime >= want - frameStep / 2) return Promise.resolve();
    return new Promise((resolve) => {
      let timer = 0;
      const finish = () => {
        clearTimeout(timer);
        if (cell.seq === seq && !playing) {
          v.pause();
          v.playbackRate = speed;
        }
        resolve();
      };
      const onFrame = (_now, meta) => {
        if (cell.seq !== seq || playing) return finish();
        // the first frame within half a frame of want: frame times need not
        // fall on want exactly
        if (meta.mediaTime >= want - frameStep / 2) {
          cell.shown = meta.mediaTime; // paused a little after the frame: name the frame
          return finish();
        }
        // the last frames at 1×: faster, the screen may skip the one wanted
        if (want - meta.mediaTime < 0.3) v.playbackRate = 1;
        v.requestVideoFrameCallback(onFrame);
      };
      // more than a few frames to go (from a keyframe): faster, still frame by frame on screen
      v.playbackRate = want - v.currentTime > 0.3 ? 2 : 1;
      v.requestVideoFrameCallback(onFrame);
      timer = setTimeout(finish, 5000);
      v.play().catch(finish);
    });
  }

  function currentTimeMs() {
    const p = primary();
    return p ? wallTime(p) : cursor;
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
    incidentBtn.disabled = !has;
    clearSelBtn.hidden = !has;
    selText.textContent = has ? `${formatTime(sel.start)} – ${formatTime(sel.end)} (${Math.round((sel.end - sel.start) / 1000)} s)` : t('playback.noSelection');
    syncHash();
  }

  function exportClip() {
    if (!selection) return;
    for (const id of chosen) {
      const a = h('a', {
        href: api.url(api.camPath(id, 'export'), { start: selection.start.toISOString(), end: selection.end.toISOString() }),
        download: `${id}_${selection.start.toISOString().replace(/[:.]/g, '-')}.mp4`,
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
      try {
        await api.post('/api/v1/incidents', {
          title: title.value.trim(), cameras: ids, start: selection.start.toISOString(), end: selection.end.toISOString(), note: note.value.trim(),
        });
        m.close(true);
        toast(t('playback.incidentCreated'), 'ok');
        loadIncidents();
      } catch (e) {
        err.textContent = errorText(e);
      }
    } },
    h('p', { class: 'muted', text: `${formatDateTime(selection.start)} – ${formatDateTime(selection.end)}` }),
    field(t('incidents.titleField'), title),
    field(t('incidents.cameras'), camBoxes),
    field(t('incidents.note'), note),
    err,
    h('div', { class: 'form-actions' },
      h('button', { type: 'button', class: 'btn', text: t('common.cancel'), onclick: () => m.close() }),
      h('button', { type: 'submit', class: 'btn btn-primary', 'data-testid': 'incident-save', text: t('common.save') })));
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
      if (err.status !== 401 && !destroyed) replace(videos, h('div', { class: 'error-box', text: errorText(err) }));
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
  })();

  return () => {
    destroyed = true;
    reloadRecordings.cancel();
    cancelAnimationFrame(rafId);
    if (fetchCtl.abort) fetchCtl.abort.abort();
    for (const c of cells.values()) {
      c.video.pause();
      c.video.removeAttribute('src');
      c.video.load();
    }
  };
}
