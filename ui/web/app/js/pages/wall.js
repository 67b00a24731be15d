// Live wall: 1/4/6/9/16/25 tiles of sub-streams over WHEP, department
// filter, search, camera picker, double-click for the main stream, saved
// layouts (#/wall?layout=ID) and tours (#/wall?tour=ID), and tiles swapped
// by dragging one onto another (saved at once into an open layout the user
// may change; otherwise kept on this browser until saved as a layout). Tiles that are not
// visible (scrolled away, hidden tab, covered by the large view, other page)
// stop their sessions, and so do tiles of offline cameras (they show since
// when instead). The grid fills the window without scrolling; #/wall?kiosk=1
// (and every display's wall) hides the navigation, and a button puts the
// page in full screen.

import { h, replace, clear, debounce, load, save } from '../dom.js';
import * as api from '../api.js';
import { t, deptName } from '../i18n.js';
import { WhepPlayer, State } from '../whep.js';
import { deptChip, statusBadge, setBadge, modal, spinner, errorBox, toast, errorText, deleteConfirmed } from '../ui.js';
import { WallTile, isOffline } from '../wall-tile.js';
import { PTZControl, hasPTZ } from '../ptz.js';
import { sourceBadge } from '../source.js';
import * as saved from '../wall-layouts.js';
import { shortcuts } from '../keys.js';
import { toggleHeard } from '../audio.js';

const layouts = saved.grids;
const storageKey = 'vigil.wall';
const statusPollMs = 4000;

export function mount(view, ctx) {
  const kept = load(storageKey, {});
  const st = {
    layout: layouts.includes(kept.layout) ? kept.layout : 9,
    dept: typeof kept.dept === 'string' ? kept.dept : '',
    q: typeof kept.q === 'string' ? kept.q : '',
    selected: Array.isArray(kept.selected) ? kept.selected.filter((x) => typeof x === 'string') : [],
    page: Number.isInteger(kept.page) ? kept.page : 0,
    // cells: the wall arranged cell by cell (camera id or null), as a
    // layout is; null: the cameras fill the grid in order, page by page.
    cells: Array.isArray(kept.cells) && kept.cells.length === kept.layout ? kept.cells.map((x) => (typeof x === 'string' ? x : null)) : null,
  };
  // open: the saved layout shown (#/wall?layout=ID); tour: the tour running
  // (#/wall?tour=ID). Their arrangement is not kept in this browser.
  let open = null;
  let tour = null;
  let refused = null; // why the layout or tour of the URL cannot be shown
  let savedList = [];
  let cameras = [];
  let status = new Map();
  const tiles = new Map(); // camera id → tile
  let focus = null;
  let destroyed = false;
  let pollTimer = 0;
  let tourTimer = 0;

  const persist = () => {
    if (open || tour || ctx.params.get('layout') || ctx.params.get('tour')) return;
    save(storageKey, { layout: st.layout, dept: st.dept, q: st.q, selected: st.selected, page: st.page, cells: st.cells });
  };

  const unauthorized = () => api.signalUnauthorized();

  // ---- toolbar
  const layoutBtns = layouts.map((n) => h('button', {
    type: 'button', class: 'seg-btn', 'data-testid': `layout-${n}`, 'data-layout': n, title: t('wall.layoutN', { n }),
    onclick: () => {
      st.layout = n;
      st.page = 0;
      if (st.cells) st.cells = saved.resize(st.cells, n);
      arranged();
    },
  }, layoutIcon(n)));
  const deptSel = h('select', { 'data-testid': 'dept-filter', 'aria-label': t('wall.department'),
    onchange: () => { st.dept = deptSel.value; st.page = 0; st.cells = null; persist(); refresh(); } });
  const search = h('input', { type: 'search', value: st.q, placeholder: t('wall.search'), 'data-testid': 'camera-search', 'aria-label': t('wall.search') });
  search.addEventListener('input', debounce(() => { st.q = search.value.trim(); st.page = 0; st.cells = null; persist(); refresh(); }, 200));
  const pickerBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'camera-picker', text: t('wall.pick'), onclick: openPicker });
  const pageInfo = h('span', { class: 'muted page-info', 'data-testid': 'wall-page' });
  const prevBtn = h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'wall-prev', text: '‹', 'aria-label': t('wall.prev'), onclick: () => { st.page--; persist(); refresh(); } });
  const nextBtn = h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'wall-next', text: '›', 'aria-label': t('wall.next'), onclick: () => { st.page++; persist(); refresh(); } });
  const summary = h('span', { class: 'wall-summary muted', 'data-testid': 'wall-summary' });
  const kiosk = ctx.params.get('kiosk') === '1' || ctx.session.role === 'display';
  const fsBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'wall-fullscreen', onclick: toggleFullscreen });
  // In kiosk mode the toolbar floats over the wall, shown while the pointer
  // is on it; a display (always kiosk) has no way out of it.
  const kioskLink = kiosk
    ? (ctx.session.role === 'display' ? null : h('a', { class: 'btn', 'data-testid': 'kiosk-exit', href: '#/wall', text: t('wall.exitKiosk') }))
    : h('a', { class: 'btn', 'data-testid': 'wall-kiosk', href: '#/wall?kiosk=1', text: t('wall.kiosk'), title: t('wall.kioskHelp') });

  // saved layouts and tours
  const savedSel = h('select', { 'data-testid': 'layout-select', 'aria-label': t('layouts.choose'),
    onchange: () => chooseSaved(savedSel.value) });
  const isDisplay = ctx.session.role === 'display';
  const saveAsBtn = isDisplay ? null : h('button', { type: 'button', class: 'btn', 'data-testid': 'layout-save-as', text: t('layouts.saveAs'), onclick: saveAs });
  const editBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'layout-edit', text: t('common.edit'), hidden: true, onclick: editOpen });
  const deleteBtn = h('button', { type: 'button', class: 'btn btn-danger-ghost', 'data-testid': 'layout-delete', text: t('common.delete'), hidden: true, onclick: deleteOpen });
  const tourBtn = isDisplay ? null : h('button', { type: 'button', class: 'btn', 'data-testid': 'tour-new', text: t('layouts.newTour'), onclick: newTour });
  const tourStatus = h('span', { class: 'muted tour-status', 'data-testid': 'tour-status', hidden: true });

  const grid = h('div', { class: 'wall-grid', 'data-testid': 'wall-grid' });
  const page = h('section', { class: 'page wall-page', 'data-testid': 'wall-page-root' },
    h('div', { class: 'toolbar' },
      h('div', { class: 'seg', role: 'group', 'aria-label': t('wall.layout') }, layoutBtns),
      savedSel, editBtn, deleteBtn, saveAsBtn, tourBtn, tourStatus,
      deptSel, search, pickerBtn,
      h('div', { class: 'toolbar-spacer' }),
      summary, prevBtn, pageInfo, nextBtn,
      kioskLink,
      fsBtn),
    grid);
  replace(view, page);
  const rootClasses = ['wall-fit', ...(kiosk ? ['kiosk'] : [])];
  document.documentElement.classList.add(...rootClasses);

  // ---- full screen
  function toggleFullscreen() {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else document.documentElement.requestFullscreen?.().catch(() => {});
  }
  const onFullscreen = () => {
    const on = !!document.fullscreenElement;
    fsBtn.textContent = on ? t('wall.exitFullscreen') : t('wall.fullscreen');
  };
  document.addEventListener('fullscreenchange', onFullscreen);
  onFullscreen();
  fsBtn.hidden = !document.fullscreenEnabled;

  // ---- visibility
  const io = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const tile = tiles.get(e.target.dataset.cameraId);
      if (!tile) continue;
      tile.visible = e.isIntersecting;
      updatePlaying(tile);
    }
  }, { threshold: 0.05 });
  const onVisibility = () => {
    for (const tile of tiles.values()) updatePlaying(tile);
    if (focus) focus.update();
  };
  document.addEventListener('visibilitychange', onVisibility);
  const onKey = (ev) => {
    if (ev.key === 'Escape' && focus) closeFocus();
  };
  document.addEventListener('keydown', onKey);

  function shouldPlay(tile) {
    const s = status.get(tile.camera.id);
    return tile.visible && !document.hidden && !focus && !destroyed && tile.camera.enabled !== false && s?.state !== 'disabled' && !isOffline(s);
  }

  function updatePlaying(tile) {
    if (shouldPlay(tile)) tile.player.start();
    else tile.player.stop();
  }

  // ---- data
  function matches(c) {
    if (st.dept && c.department !== st.dept) return false;
    if (!st.q) return true;
    const q = st.q.toLowerCase();
    return [c.name, c.id, c.location?.address, ...(c.tags || [])].some((s) => s && String(s).toLowerCase().includes(q));
  }

  function visibleCameras() {
    const byId = new Map(cameras.map((c) => [c.id, c]));
    const base = st.selected.length ? st.selected.map((id) => byId.get(id)).filter(Boolean) : cameras;
    return base.filter(matches);
  }

  function renderDeptOptions() {
    const present = new Set(cameras.map((c) => c.department));
    replace(deptSel,
      h('option', { value: '', text: t('wall.allDepartments') }),
      ctx.departments.filter((d) => present.has(d.id) || d.id === st.dept)
        .map((d) => h('option', { value: d.id, text: deptName(d), selected: d.id === st.dept })));
    deptSel.value = st.dept;
  }

  // shownCells is what the grid shows, cell by cell: a camera or null.
  function shownCells() {
    if (st.cells) {
      const byId = new Map(cameras.map((c) => [c.id, c]));
      return { cells: st.cells.map((id) => (id && byId.get(id)) || null), pages: 1, total: st.cells.filter(Boolean).length };
    }
    const list = visibleCameras();
    const pages = Math.max(1, Math.ceil(list.length / st.layout));
    st.page = Math.min(Math.max(0, st.page), pages - 1);
    return { cells: saved.resize(list.slice(st.page * st.layout, (st.page + 1) * st.layout), st.layout), pages, total: list.length };
  }

  function refresh() {
    if (refused) {
      replace(grid, errorBox(refused));
      return;
    }
    // a saved layout or tour shows its cells: the filters apply to the plain wall
    const saving = !!(open || tour);
    deptSel.hidden = saving;
    search.hidden = saving;
    for (const b of layoutBtns) b.classList.toggle('active', Number(b.dataset.layout) === st.layout);
    const { cells, pages, total } = shownCells();
    const shown = cells.filter(Boolean);
    pageInfo.textContent = `${st.page + 1} / ${pages}`;
    prevBtn.disabled = st.page === 0 || !!st.cells;
    nextBtn.disabled = st.page >= pages - 1 || !!st.cells;
    summary.textContent = t('wall.summary', { shown: shown.length, total });
    grid.dataset.layout = st.layout;
    grid.style.setProperty('--cols', String(saved.columns(st.layout)));
    renderSavedBar();

    const keep = new Set(shown.map((c) => c.id));
    for (const [id, tile] of tiles) {
      if (!keep.has(id)) destroyTile(tile);
    }
    clear(grid);
    if (!cameras.length) {
      grid.appendChild(h('div', { class: 'wall-empty', 'data-testid': 'wall-empty' },
        h('p', { text: t('wall.noCameras') }),
        ctx.can('admin') ? h('a', { class: 'btn btn-primary', href: '#/admin/cameras', text: t('wall.addCameras') }) : null));
      return;
    }
    cells.forEach((c, i) => {
      if (!c) {
        grid.appendChild(h('button', { type: 'button', class: 'tile tile-empty', 'data-testid': 'tile-empty', 'data-cell': i, onclick: openPicker },
          h('span', { text: '+' })));
        return;
      }
      let tile = tiles.get(c.id);
      if (!tile) tile = createTile(c);
      else tile.setCamera(c);
      tile.el.dataset.cell = i;
      grid.appendChild(tile.el);
    });
  }

  // ---- saved layouts and tours
  function renderSavedBar() {
    const current = tour ? tour.id : open ? open.id : '';
    replace(savedSel,
      h('option', { value: '', text: t('layouts.current') }),
      savedList.map((l) => h('option', { value: l.id, text: l.tour ? t('layouts.tourName', { name: l.name }) : l.name, selected: l.id === current })));
    savedSel.value = current;
    const mayChange = saved.canChange(tour || open, ctx.session);
    editBtn.hidden = !mayChange;
    deleteBtn.hidden = !mayChange;
    savedSel.hidden = isDisplay && !savedList.length;
  }

  async function loadSaved() {
    try {
      savedList = await saved.listLayouts();
    } catch (err) {
      if (err.status !== 401) savedList = [];
    }
    if (!destroyed) renderSavedBar();
  }

  function wallHash(query) {
    const q = new URLSearchParams(query);
    if (ctx.params.get('kiosk') === '1') q.set('kiosk', '1');
    const s = q.toString();
    return '/wall' + (s ? '?' + s : '');
  }

  function chooseSaved(id) {
    const l = savedList.find((x) => x.id === id);
    ctx.navigate(wallHash(!l ? {} : l.tour ? { tour: l.id } : { layout: l.id }));
  }

  // arranged is called after the user changed the arrangement: an open
  // layout they may change is saved at once, else the browser keeps it.
  function arranged() {
    persist();
    refresh();
    if (open && !tour && saved.canChange(open, ctx.session)) {
      const next = { ...open, grid: st.layout, cells: st.cells || saved.resize([], st.layout) };
      saved.updateLayout(next).then((l) => {
        if (destroyed) return;
        open = l;
        grid.dataset.savedAt = l.updated;
      }).catch((err) => toast(errorText(err), 'error'));
    }
  }

  // swap exchanges two cells; a wall filled in order becomes arranged.
  function swap(i, j) {
    if (!st.cells) st.cells = shownCells().cells.map((c) => c?.id || null);
    [st.cells[i], st.cells[j]] = [st.cells[j], st.cells[i]];
    arranged();
  }

  function showLayout(l) {
    st.layout = layouts.includes(l.grid) ? l.grid : 9;
    st.cells = saved.resize(l.cells || [], st.layout);
    refresh();
  }

  function currentArrangement() {
    return { grid: st.layout, cells: shownCells().cells.map((c) => c?.id || null) };
  }

  async function saveAs() {
    const made = await saved.layoutDialog(ctx, {
      title: t('layouts.saveAsTitle'),
      save: (v) => saved.createLayout({ ...v, ...currentArrangement() }),
    });
    if (made && !destroyed) {
      toast(t('layouts.saved', { name: made.name }), 'ok');
      ctx.navigate(wallHash({ layout: made.id }));
    }
  }

  async function newTour() {
    const made = await saved.layoutDialog(ctx, {
      title: t('layouts.newTourTitle'), tour: true, all: savedList,
      save: (v) => saved.createLayout({ ...v, grid: st.layout, cells: [] }),
    });
    if (made && !destroyed) ctx.navigate(wallHash({ tour: made.id }));
  }

  async function editOpen() {
    const l = tour || open;
    const done = await saved.layoutDialog(ctx, {
      title: t('layouts.editTitle', { name: l.name }), layout: l, tour: !!l.tour, all: savedList.filter((x) => x.id !== l.id),
      save: (v) => saved.updateLayout({ ...l, ...v }),
    });
    if (done && !destroyed) ctx.navigate(wallHash(done.tour ? { tour: done.id } : { layout: done.id }), { replace: true });
  }

  async function deleteOpen() {
    const l = tour || open;
    if (await deleteConfirmed(t('layouts.confirmDelete', { name: l.name }), () => saved.deleteLayout(l.id), t('layouts.deleted', { name: l.name }))) {
      if (!destroyed) ctx.navigate(wallHash({}));
    }
  }

  async function openSaved(id) {
    try {
      open = await saved.getLayout(id);
      if (destroyed) return;
      if (open.tour) {
        ctx.navigate(wallHash({ tour: open.id }), { replace: true });
        return;
      }
      showLayout(open);
    } catch (err) {
      if (err.status === 401) return;
      refused = err;
      if (!destroyed) refresh();
    }
  }

  // startTour shows each layout of a tour in turn for its dwell, or, when
  // it names none, each page of the cameras; each step reads its layout
  // afresh, so that a changed or deleted one shows as it is now.
  async function startTour(id) {
    let step = -1;
    const next = async () => {
      if (destroyed || !tour) return;
      step++;
      const ids = tour.tour.layouts || [];
      tourStatus.hidden = false;
      if (!ids.length) {
        st.cells = null;
        st.selected = [];
        st.dept = '';
        st.q = '';
        st.layout = layouts.includes(tour.grid) ? tour.grid : 9;
        const pages = Math.max(1, Math.ceil(visibleCameras().length / st.layout));
        st.page = step % pages;
        tourStatus.dataset.step = String(st.page);
        delete tourStatus.dataset.layoutId;
        tourStatus.textContent = t('layouts.tourPage', { name: tour.name, n: st.page + 1, of: pages });
        refresh();
      } else {
        const lid = ids[step % ids.length];
        try {
          const l = await saved.getLayout(lid);
          if (destroyed || !tour) return;
          tourStatus.dataset.layoutId = l.id;
          tourStatus.dataset.step = String(step % ids.length);
          tourStatus.textContent = t('layouts.tourStep', { name: tour.name, layout: l.name, n: (step % ids.length) + 1, of: ids.length });
          showLayout(l);
        } catch (err) {
          if (err.status === 401) return;
          // a layout deleted meanwhile: the next one
        }
      }
      tourTimer = setTimeout(next, Math.max(5000, saved.parseDwell(tour.tour.dwell)));
    };
    try {
      tour = await saved.getLayout(id);
      if (destroyed) return;
      if (!tour.tour) {
        ctx.navigate(wallHash({ layout: tour.id }), { replace: true });
        return;
      }
      next();
    } catch (err) {
      tour = null;
      if (err.status === 401) return;
      refused = err;
      if (!destroyed) refresh();
    }
  }

  function createTile(camera) {
    const tile = new WallTile(camera, {
      departments: ctx.departments,
      statusOf: (id) => status.get(id)?.state,
      onUnauthorized: unauthorized,
      onOpen: openFocus,
    });
    tiles.set(camera.id, tile);
    tile.setStatus(status.get(camera.id));
    io.observe(tile.el);
    return tile;
  }

  function destroyTile(tile) {
    io.unobserve(tile.el);
    tile.destroy();
    tiles.delete(tile.camera.id);
  }

  let polls = 0;
  async function pollStatus() {
    try {
      if (++polls % 8 === 0) await refreshCameras();
      const list = api.list(await api.get('/api/v1/status'), 'cameras');
      const next = new Map(list.map((s) => [s.id, s]));
      for (const [id, tile] of tiles) {
        const before = status.get(id)?.state;
        const now = next.get(id)?.state;
        setBadge(tile.badge, now);
        if (now === 'online' && before !== 'online') tile.player.kick();
        tile.subStatus(next.get(id)?.sub);
      }
      status = next;
      for (const [id, tile] of tiles) tile.setStatus(status.get(id));
      for (const tile of tiles.values()) {
        updatePlaying(tile);
        if (tile.player.state !== State.Playing) tile.showMessage(tile.player.state);
      }
      if (focus) focus.setStatus(status.get(focus.camera.id)?.state);
    } catch (err) {
      if (err.status === 401) return;
      if (err.status === 0) {
        // the server cannot be reached: the last states are no longer known
        status = new Map();
        for (const tile of tiles.values()) setBadge(tile.badge, 'unknown');
        if (focus) focus.setStatus('unknown');
      }
    } finally {
      if (!destroyed) pollTimer = setTimeout(pollStatus, statusPollMs);
    }
  }

  // refreshCameras picks up cameras added, changed or deleted meanwhile.
  async function refreshCameras() {
    const next = sortCameras(api.list(await api.get('/api/v1/cameras'), 'cameras'));
    if (destroyed || JSON.stringify(next) === JSON.stringify(cameras)) return;
    cameras = next;
    renderDeptOptions();
    refresh();
  }

  // ---- large view (main stream)
  function openFocus(camera) {
    if (focus) closeFocus();
    const video = h('video', { muted: true, autoplay: true, playsInline: true, 'data-stream': 'main' });
    const badge = statusBadge(status.get(camera.id)?.state);
    const msg = h('div', { class: 'tile-msg' }, spinner(), h('span', { text: t('wall.connecting') }));
    const el = h('div', { class: 'focus', 'data-testid': 'focus-view', 'data-camera-id': camera.id, 'data-player': 'idle' },
      h('div', { class: 'focus-bar' },
        h('span', { class: 'tile-name', text: camera.name || camera.id }),
        deptChip(ctx.departments, camera.department),
        sourceBadge(camera),
        badge,
        h('span', { class: 'muted', text: camera.location?.address || '' }),
        h('span', { class: 'toolbar-spacer' }),
        h('span', { class: 'muted hint', text: t('wall.escHint') }),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'focus-close', text: t('common.close'), onclick: closeFocus })),
      h('div', { class: 'focus-video' }, video, msg));
    // PTZ for a camera that has it, for the roles that may move it
    const ptz = hasPTZ(camera) && ctx.can('ptz') ? new PTZControl(camera) : null;
    if (ptz) el.querySelector('.focus-video').appendChild(ptz.el);
    const player = new WhepPlayer(video, {
      cameraId: camera.id, stream: 'main', onUnauthorized: unauthorized,
      onState: (s, detail) => {
        el.dataset.player = s;
        msg.hidden = s === State.Playing;
        if (s === State.Retrying) replace(msg, h('span', { text: t('wall.reconnecting') }), detail ? h('span', { class: 'tile-detail', text: detail }) : null);
      },
    });
    focus = {
      camera, el, player, ptz,
      update: () => (document.hidden ? player.stop() : player.start()),
      setStatus: (s) => setBadge(badge, s),
    };
    el.addEventListener('dblclick', closeFocus);
    page.appendChild(el);
    for (const tile of tiles.values()) updatePlaying(tile);
    focus.update();
  }

  function closeFocus() {
    if (!focus) return;
    focus.ptz?.destroy();
    focus.player.stop();
    focus.el.remove();
    focus = null;
    for (const tile of tiles.values()) updatePlaying(tile);
  }

  // ---- picker
  function openPicker() {
    const chosen = new Set(st.selected);
    const filter = h('input', { type: 'search', placeholder: t('wall.search'), 'data-testid': 'picker-search' });
    const listBox = h('div', { class: 'picker-list' });
    const count = h('span', { class: 'muted' });
    const renderList = () => {
      const q = filter.value.trim().toLowerCase();
      clear(listBox);
      for (const d of [...ctx.departments, { id: '', name: { en: t('wall.otherDepartment'), 'zh-CN': t('wall.otherDepartment') } }]) {
        const cams = cameras.filter((c) => (d.id ? c.department === d.id : !ctx.departments.some((x) => x.id === c.department)))
          .filter((c) => !q || [c.name, c.id, c.location?.address].some((s) => s && s.toLowerCase().includes(q)));
        if (!cams.length) continue;
        listBox.appendChild(h('div', { class: 'picker-group' }, d.id ? deptChip(ctx.departments, d.id) : h('span', { class: 'chip', text: deptName(d) })));
        for (const c of cams) {
          const box = h('input', { type: 'checkbox', checked: chosen.has(c.id), 'data-camera-id': c.id,
            onchange: () => { if (box.checked) chosen.add(c.id); else chosen.delete(c.id); count.textContent = t('wall.pickedN', { n: chosen.size }); } });
          listBox.appendChild(h('label', { class: 'picker-item' }, box,
            h('span', { text: c.name || c.id }), h('span', { class: 'muted', text: c.location?.address || '' })));
        }
      }
    };
    filter.addEventListener('input', renderList);
    count.textContent = t('wall.pickedN', { n: chosen.size });
    renderList();
    const m = modal(t('wall.pickTitle'), [
      h('p', { class: 'muted', text: t('wall.pickHelp') }),
      filter, listBox,
      h('div', { class: 'form-actions' }, count, h('span', { class: 'toolbar-spacer' }),
        h('button', { type: 'button', class: 'btn', 'data-testid': 'picker-auto', text: t('wall.pickAuto'), onclick: () => m.close([]) }),
        h('button', { type: 'button', class: 'btn btn-primary', 'data-testid': 'picker-save', text: t('common.apply'), onclick: () => m.close([...chosen]) })),
    ], { wide: true, testid: 'picker' });
    m.done.then((ids) => {
      if (!ids || destroyed) return;
      // keep the wall's order for cameras already chosen, append new ones
      const keep = st.selected.filter((id) => ids.includes(id));
      st.selected = [...keep, ...ids.filter((id) => !keep.includes(id))];
      st.page = 0;
      if (open) {
        // an open layout: the chosen cameras fill its cells in order
        st.cells = saved.resize(ids.length ? st.selected : [], st.layout);
      } else {
        st.cells = null;
      }
      arranged();
    });
  }

  // ---- keyboard (keys.js): next/previous camera, grid size, full screen, sound
  const unkeys = shortcuts({
    camera: (d) => {
      if (focus) {
        // the large view moves on to the next camera of the wall's list
        const list = visibleCameras();
        const i = list.findIndex((c) => c.id === focus.camera.id);
        if (list.length > 1) openFocus(list[(i + d + list.length) % list.length]);
        return;
      }
      const shown = [...grid.querySelectorAll('[data-testid=tile]')];
      if (!shown.length) return;
      const i = shown.findIndex((el) => el.contains(document.activeElement));
      shown[i < 0 ? (d > 0 ? 0 : shown.length - 1) : (i + d + shown.length) % shown.length].focus();
    },
    layout: (i) => page.querySelectorAll('button[data-layout]')[i]?.click(),
    fullscreen: () => toggleFullscreen(),
    audio: () => {
      const el = document.activeElement?.closest?.('[data-testid=tile]');
      const mine = el && tiles.get(el.dataset.cameraId);
      toggleHeard(mine ? [mine.audio] : [...tiles.values()].map((x) => x.audio));
    },
  });

  // ---- start
  grid.appendChild(h('div', { class: 'wall-loading' }, spinner()));
  (async () => {
    try {
      const [cams, stat] = await Promise.all([
        api.get('/api/v1/cameras'),
        api.get('/api/v1/status').catch(() => []),
      ]);
      if (destroyed) return;
      cameras = sortCameras(api.list(cams, 'cameras'));
      status = new Map(api.list(stat, 'cameras').map((s) => [s.id, s]));
      renderDeptOptions();
      const layoutId = ctx.params.get('layout');
      const tourId = ctx.params.get('tour');
      if (tourId) await startTour(tourId);
      else if (layoutId) await openSaved(layoutId);
      else refresh();
      loadSaved();
      pollTimer = setTimeout(pollStatus, statusPollMs);
    } catch (err) {
      if (destroyed || err.status === 401) return;
      replace(grid, errorBox(err));
    }
  })();

  // a tour's wall is not rearranged: the next step would undo it
  const swapOff = saved.enableSwap(grid, (i, j) => { if (!tour) swap(i, j); });

  return () => {
    destroyed = true;
    tour = null;
    clearTimeout(tourTimer);
    swapOff();
    unkeys();
    clearTimeout(pollTimer);
    closeFocus();
    for (const tile of [...tiles.values()]) destroyTile(tile);
    io.disconnect();
    document.removeEventListener('visibilitychange', onVisibility);
    document.removeEventListener('keydown', onKey);
    document.removeEventListener('fullscreenchange', onFullscreen);
    document.documentElement.classList.remove(...rootClasses);
  };
}

function sortCameras(list) {
  return list.sort((a, b) => (a.department + a.name).localeCompare(b.department + b.name));
}

function layoutIcon(n) {
  const s = saved.columns(n);
  const box = h('span', { class: ['layout-icon', n === 6 && 'layout-icon-6'] });
  box.style.setProperty('--n', String(s));
  for (let i = 0; i < n; i++) box.appendChild(h('i'));
  return box;
}
