// Camera map: every camera at its latitude and longitude, coloured by its
// state, filtered by department; a click opens its live view (main stream)
// over the map; an admin drags a marker to move the camera (PUT of the
// camera), places cameras that have no position yet, uploads the site map
// (the district's own map image) and ties it to the ground by two reference
// points.
//
// Nothing comes from outside the network unless configured: the map is
// drawn with positioned HTML elements (no map library, no SVG) over
//  - the uploaded site map, placed by its two reference points (north-up:
//    scaled and moved, not rotated), when there is one;
//  - else the tiles of the site's own tile server (ui.mapTiles, Web
//    Mercator {z}/{x}/{y}), when configured;
//  - else a plain grid of latitude and longitude lines (an equirectangular
//    projection scaled by the cosine of the cameras' mean latitude, which
//    over a district is true to a fraction of a percent).
// Why no library (Leaflet): see ui/web/README.md.

import { h, replace, clear, load, save } from '../dom.js';
import * as api from '../api.js';
import { t, deptName } from '../i18n.js';
import { WhepPlayer, State } from '../whep.js';
import { deptChip, deptColor, statusBadge, setBadge, toast, errorText, errorBox, spinner, modal, field, formActions } from '../ui.js';
import { shortcuts } from '../keys.js';

const statusPollMs = 5000;
const storageKey = 'vigil.map';
const dragPx = 4;            // a pointer that moves less is a click
const gridUnit = 1000;       // grid mode: world units per degree
const tileSize = 256;
const maxTileZoom = 19;

// niceSteps are the grid's line spacings, in degrees.
const niceSteps = [0.0001, 0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10];

// placed tells a camera that has a position (0,0 is "not set").
export function placed(c) {
  const l = c.location || {};
  return Number.isFinite(l.lat) && Number.isFinite(l.lng) && (l.lat !== 0 || l.lng !== 0);
}

// stateOf is the marker state of a camera: online, idle (a pushed stream
// that nothing needs now), connecting, offline, disabled, or unknown (no
// status yet).
function stateOf(c, st) {
  if (c.enabled === false) return 'disabled';
  return st?.state || 'unknown';
}

// projection returns {mode, fwd(lat,lng)→{x,y}, inv(x,y)→{lat,lng}} in
// world units for the map's background.
function projection(config, cameras) {
  const img = config.image;
  if (img && img.refs && img.refs.length === 2) {
    const [a, b] = img.refs;
    const kx = (b.x - a.x) / (b.lng - a.lng);
    const ky = (b.y - a.y) / (b.lat - a.lat);
    return {
      mode: 'image',
      fwd: (lat, lng) => ({ x: a.x + (lng - a.lng) * kx, y: a.y + (lat - a.lat) * ky }),
      inv: (x, y) => ({ lat: a.lat + (y - a.y) / ky, lng: a.lng + (x - a.x) / kx }),
    };
  }
  if (img) {
    // an image without reference points: shown for placing them, no cameras
    return { mode: 'image-unplaced', fwd: () => null, inv: () => null };
  }
  if (config.tiles) {
    const r = Math.PI / 180;
    return {
      mode: 'tiles',
      fwd: (lat, lng) => {
        const s = Math.sin(Math.max(-85.05, Math.min(85.05, lat)) * r);
        return { x: ((lng + 180) / 360) * tileSize, y: (0.5 - Math.log((1 + s) / (1 - s)) / (4 * Math.PI)) * tileSize };
      },
      inv: (x, y) => {
        const n = Math.PI - (2 * Math.PI * y) / tileSize;
        return { lat: (Math.atan(Math.sinh(n)) * 180) / Math.PI, lng: (x / tileSize) * 360 - 180 };
      },
    };
  }
  const lats = cameras.filter(placed).map((c) => c.location.lat);
  const lat0 = lats.length ? lats.reduce((s, v) => s + v, 0) / lats.length : 0;
  const k = Math.cos(lat0 * Math.PI / 180) * gridUnit;
  return {
    mode: 'grid', k,
    fwd: (lat, lng) => ({ x: lng * k, y: -lat * gridUnit }),
    inv: (x, y) => ({ lat: -y / gridUnit, lng: x / k }),
  };
}

export function mount(view, ctx) {
  const admin = ctx.can('admin');
  const saved = load(storageKey, {});
  let dept = typeof saved.dept === 'string' ? saved.dept : '';
  let cameras = [];
  let status = new Map();
  let config = { tiles: '', image: null };
  let proj = projection(config, cameras);
  let vw = { cx: 0, cy: 0, s: 1 }; // world point at the stage's centre, pixels per world unit
  let fitted = false;
  let destroyed = false;
  let pollTimer = 0;
  let placing = null;  // camera being placed by a click (admin)
  let refPoints = null; // reference points being placed on the image (admin)
  let live = null;
  const markers = new Map(); // camera id → marker element
  const tileImgs = new Map(); // "z/x/y" → <img>

  // ---- page
  const deptSel = h('select', { 'data-testid': 'map-dept', 'aria-label': t('wall.department'),
    onchange: () => { dept = deptSel.value; save(storageKey, { dept }); renderMarkers(); renderUnplaced(); } });
  const modeText = h('span', { class: 'muted small', 'data-testid': 'map-mode' });
  const zoomIn = h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'map-zoom-in', 'aria-label': t('timeline.zoomIn'), text: '+', onclick: () => zoomAt(1.5) });
  const zoomOut = h('button', { type: 'button', class: 'btn btn-icon', 'data-testid': 'map-zoom-out', 'aria-label': t('timeline.zoomOut'), text: '−', onclick: () => zoomAt(1 / 1.5) });
  const fitBtn = h('button', { type: 'button', class: 'btn', 'data-testid': 'map-fit', text: t('map.fit'), onclick: () => { fit(); render(); } });
  const fileIn = h('input', { type: 'file', accept: 'image/png,image/jpeg', hidden: true, 'data-testid': 'map-image-file', onchange: () => uploadImage(fileIn.files[0]) });
  const adminTools = admin && ctx.can('accounts') ? [
    h('button', { type: 'button', class: 'btn', 'data-testid': 'map-upload', text: t('map.upload'), title: t('map.uploadHelp'), onclick: () => fileIn.click() }),
    h('button', { type: 'button', class: 'btn', 'data-testid': 'map-refs', text: t('map.refs'), title: t('map.refsHelp'), onclick: startRefs }),
    h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'map-remove', text: t('map.remove'), onclick: removeImage }),
    fileIn,
  ] : [];
  const banner = h('div', { class: 'map-banner', 'data-testid': 'map-banner', hidden: true });
  const layer = h('div', { class: 'map-layer', 'data-testid': 'map-layer' });
  const markerBox = h('div', { class: 'map-markers' });
  const stage = h('div', { class: 'map-stage', 'data-testid': 'map-stage', tabIndex: -1 }, layer, markerBox, banner);
  const legend = h('div', { class: 'map-legend' }, ['online', 'idle', 'connecting', 'offline', 'disabled'].map((s) =>
    h('span', { class: 'map-legend-item' }, h('i', { class: 'map-dot map-state-' + s }), h('span', { text: t('state.' + s) }))));
  const unplacedBox = h('div', { class: 'map-unplaced', 'data-testid': 'map-unplaced' });
  const root = h('section', { class: 'page map-page', 'data-testid': 'map-page' },
    h('div', { class: 'toolbar' },
      h('h1', { class: 'toolbar-title', text: t('map.title') }),
      deptSel, zoomOut, zoomIn, fitBtn, modeText,
      h('span', { class: 'toolbar-spacer' }),
      legend, adminTools),
    h('div', { class: 'map-body' }, stage, unplacedBox));
  replace(view, root);
  document.documentElement.classList.add('wall-fit');

  // ---- geometry
  const size = () => ({ w: stage.clientWidth || 800, h: stage.clientHeight || 500 });
  const toScreen = (p) => {
    const { w, h: hh } = size();
    return { x: (p.x - vw.cx) * vw.s + w / 2, y: (p.y - vw.cy) * vw.s + hh / 2 };
  };
  const toWorld = (sx, sy) => {
    const { w, h: hh } = size();
    return { x: (sx - w / 2) / vw.s + vw.cx, y: (sy - hh / 2) / vw.s + vw.cy };
  };
  const stagePoint = (ev) => {
    const r = stage.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  };

  // scaleLimits bound the zoom: out, so that the grid's lines (at most one
  // per 10°) and the tiles (zoom 0 and up) stay few; in, to a few pixels
  // per metre.
  function scaleLimits() {
    switch (proj.mode) {
      case 'tiles': return [1, 2 ** (maxTileZoom + 1)];
      case 'grid': return [0.01, 1e5];
      default: return [Math.min(1, 100 / Math.max(1, config.image?.width || 1)), 64];
    }
  }

  function shownCameras() {
    return cameras.filter((c) => !dept || c.department === dept);
  }

  // fit shows every placed camera shown (or the whole site map).
  function fit() {
    const { w, h: hh } = size();
    let pts = shownCameras().filter(placed).map((c) => proj.fwd(c.location.lat, c.location.lng)).filter(Boolean);
    if (proj.mode.startsWith('image') && config.image) {
      // the whole site map, and the cameras beyond its edges
      pts = [...pts, { x: 0, y: 0 }, { x: config.image.width, y: config.image.height }];
    }
    if (!pts.length) {
      vw = { cx: 0, cy: 0, s: proj.mode === 'tiles' ? 4 : 1 };
      return;
    }
    const xs = pts.map((p) => p.x);
    const ys = pts.map((p) => p.y);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    const bw = Math.max(x1 - x0, 1e-9);
    const bh = Math.max(y1 - y0, 1e-9);
    let s = Math.min((w * 0.8) / bw, (hh * 0.8) / bh);
    if (pts.length === 1 || !Number.isFinite(s)) {
      s = { grid: 40, tiles: 2 ** 16 / 1, image: 1 }[proj.mode] || 1;
    }
    if (proj.mode === 'tiles') s = Math.min(s, 2 ** maxTileZoom);
    const [lo, hi] = scaleLimits();
    vw = { cx: (x0 + x1) / 2, cy: (y0 + y1) / 2, s: Math.min(hi, Math.max(lo, s)) };
  }

  function zoomAt(factor, sx, sy) {
    const { w, h: hh } = size();
    const px = sx ?? w / 2;
    const py = sy ?? hh / 2;
    const before = toWorld(px, py);
    const [lo, hi] = scaleLimits();
    vw.s = Math.min(hi, Math.max(lo, vw.s * factor));
    const after = toWorld(px, py);
    vw.cx += before.x - after.x;
    vw.cy += before.y - after.y;
    render();
  }

  // ---- drawing
  function render() {
    renderLayer();
    renderMarkers();
  }

  function renderLayer() {
    modeText.textContent = t('map.mode.' + proj.mode);
    stage.dataset.mode = proj.mode;
    if (proj.mode === 'tiles') return renderTiles();
    tileImgs.clear();
    clear(layer);
    if (proj.mode.startsWith('image')) return renderImage();
    renderGrid();
  }

  function renderImage() {
    const img = h('img', { class: 'map-image', 'data-testid': 'map-image', alt: '', draggable: false,
      src: `/api/v1/map/image?v=${encodeURIComponent(config.image.etag)}` });
    const tl = toScreen({ x: 0, y: 0 });
    img.style.left = tl.x + 'px';
    img.style.top = tl.y + 'px';
    img.style.width = config.image.width * vw.s + 'px';
    img.style.height = config.image.height * vw.s + 'px';
    layer.appendChild(img);
    for (const [i, r] of (config.image.refs || []).entries()) {
      const p = toScreen({ x: r.x, y: r.y });
      const m = h('div', { class: 'map-ref', title: `${r.lat}, ${r.lng}`, text: String(i + 1) });
      m.style.left = p.x + 'px';
      m.style.top = p.y + 'px';
      layer.appendChild(m);
    }
  }

  function renderGrid() {
    const { w, h: hh } = size();
    const a = toWorld(0, 0);
    const b = toWorld(w, hh);
    const nw = proj.inv(a.x, a.y); // north-west corner
    const se = proj.inv(b.x, b.y);
    const degPx = vw.s * gridUnit; // pixels per degree of latitude
    const step = niceSteps.find((s) => s * degPx >= 90) || niceSteps[niceSteps.length - 1];
    const digits = Math.max(0, -Math.floor(Math.log10(step)) + 1);
    for (let lng = Math.ceil(nw.lng / step) * step; lng <= se.lng; lng += step) {
      const x = toScreen(proj.fwd(0, lng)).x;
      const line = h('div', { class: 'map-grid-v' }, h('span', { text: lng.toFixed(digits) + '°' }));
      line.style.left = x + 'px';
      layer.appendChild(line);
    }
    for (let lat = Math.ceil(se.lat / step) * step; lat <= nw.lat; lat += step) {
      const y = toScreen(proj.fwd(lat, 0)).y;
      const line = h('div', { class: 'map-grid-h' }, h('span', { text: lat.toFixed(digits) + '°' }));
      line.style.top = y + 'px';
      layer.appendChild(line);
    }
  }

  function renderTiles() {
    clear(layer);
    const { w, h: hh } = size();
    const z = Math.max(0, Math.min(maxTileZoom, Math.round(Math.log2(vw.s))));
    const n = 2 ** z;
    const tw = tileSize / n; // a tile's world size
    const a = toWorld(0, 0);
    const b = toWorld(w, hh);
    const keep = new Map();
    for (let ty = Math.max(0, Math.floor(a.y / tw)); ty <= Math.min(n - 1, Math.floor(b.y / tw)); ty++) {
      for (let tx = Math.floor(a.x / tw); tx <= Math.floor(b.x / tw); tx++) {
        const wx = ((tx % n) + n) % n;
        const key = `${z}/${wx}/${ty}`;
        const img = tileImgs.get(key) || h('img', { class: 'map-tile', alt: '', draggable: false,
          src: config.tiles.replace('{z}', z).replace('{x}', wx).replace('{y}', ty).replace('{s}', 'abc'[(wx + ty) % 3]) });
        const p = toScreen({ x: tx * tw, y: ty * tw });
        img.style.left = p.x + 'px';
        img.style.top = p.y + 'px';
        img.style.width = img.style.height = tw * vw.s + 0.5 + 'px';
        keep.set(key, img);
        layer.appendChild(img);
      }
    }
    tileImgs.clear();
    for (const [k, v] of keep) tileImgs.set(k, v);
  }

  function renderMarkers() {
    const shown = new Set();
    for (const c of shownCameras()) {
      if (!placed(c)) continue;
      const wp = proj.fwd(c.location.lat, c.location.lng);
      if (!wp) continue;
      shown.add(c.id);
      let m = markers.get(c.id);
      if (!m) {
        m = makeMarker(c);
        markers.set(c.id, m);
        markerBox.appendChild(m);
      }
      const st = stateOf(c, status.get(c.id));
      m.dataset.state = st;
      m.className = `map-marker map-state-${st}`;
      m.style.setProperty('--dept', deptColor(c.department));
      m.dataset.lat = String(c.location.lat);
      m.dataset.lng = String(c.location.lng);
      m.title = `${c.name || c.id} — ${t('state.' + (st === 'unknown' ? 'connecting' : st))}${c.location.address ? '\n' + c.location.address : ''}`;
      m.querySelector('.map-marker-label').textContent = c.name || c.id;
      if (m.dataset.dragging !== 'true') place(m, toScreen(wp));
    }
    for (const [id, m] of markers) {
      if (!shown.has(id)) {
        m.remove();
        markers.delete(id);
      }
    }
  }

  function place(m, p) {
    m.style.left = p.x + 'px';
    m.style.top = p.y + 'px';
    m.dataset.x = p.x.toFixed(1);
    m.dataset.y = p.y.toFixed(1);
  }

  function makeMarker(c) {
    const m = h('button', { type: 'button', class: 'map-marker', 'data-testid': 'map-marker', 'data-camera-id': c.id },
      h('i', { class: 'map-dot' }), h('span', { class: 'map-marker-label' }));
    m.addEventListener('pointerdown', (ev) => markerDown(ev, m));
    m.addEventListener('click', (ev) => {
      ev.stopPropagation();
      if (m.dataset.moved === 'true') {
        delete m.dataset.moved;
        return;
      }
      const cam = cameras.find((x) => x.id === m.dataset.cameraId);
      if (cam) openLive(cam);
    });
    return m;
  }

  // ---- unplaced cameras
  function renderUnplaced() {
    const list = shownCameras().filter((c) => !placed(c));
    clear(unplacedBox);
    unplacedBox.hidden = !list.length;
    if (!list.length) return;
    unplacedBox.appendChild(h('h2', { text: t('map.unplaced', { n: list.length }) }));
    if (admin) unplacedBox.appendChild(h('p', { class: 'muted small', text: t('map.placeHelp') }));
    for (const c of list) {
      unplacedBox.appendChild(h('div', { class: ['map-unplaced-item', placing?.id === c.id && 'active'], 'data-camera-id': c.id },
        h('span', { class: 'map-dot map-state-' + stateOf(c, status.get(c.id)) }),
        h('span', { text: c.name || c.id }),
        deptChip(ctx.departments, c.department),
        admin ? h('button', { type: 'button', class: 'btn btn-small', 'data-testid': 'map-place', text: t('map.place'),
          onclick: () => { placing = c; showBanner(t('map.placing', { name: c.name || c.id })); renderUnplaced(); } }) : null));
    }
  }

  function showBanner(text) {
    banner.hidden = !text;
    banner.textContent = text || '';
  }

  // ---- pointer: pan the map, drag a marker (admin), place by a click
  let pan = null;
  stage.addEventListener('pointerdown', (ev) => {
    if (ev.button !== 0 || ev.target.closest('.map-marker')) return;
    pan = { x: ev.clientX, y: ev.clientY, cx: vw.cx, cy: vw.cy, moved: false };
    stage.setPointerCapture(ev.pointerId);
  });
  stage.addEventListener('pointermove', (ev) => {
    if (!pan) return;
    const dx = ev.clientX - pan.x;
    const dy = ev.clientY - pan.y;
    if (!pan.moved && Math.hypot(dx, dy) < dragPx) return;
    pan.moved = true;
    vw.cx = pan.cx - dx / vw.s;
    vw.cy = pan.cy - dy / vw.s;
    render();
  });
  stage.addEventListener('pointerup', (ev) => {
    const p = pan;
    pan = null;
    if (!p || p.moved) return;
    const sp = stagePoint(ev);
    if (placing) placeAt(placing, sp);
    else if (refPoints) refClick(sp);
  });
  stage.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const sp = stagePoint(ev);
    zoomAt(ev.deltaY < 0 ? 1.25 : 0.8, sp.x, sp.y);
  }, { passive: false });

  function markerDown(ev, m) {
    if (ev.button !== 0) return;
    ev.stopPropagation();
    if (!admin) return;
    const start = { x: ev.clientX, y: ev.clientY, left: parseFloat(m.style.left), top: parseFloat(m.style.top) };
    let moved = false;
    m.setPointerCapture(ev.pointerId);
    const move = (e) => {
      const dx = e.clientX - start.x;
      const dy = e.clientY - start.y;
      if (!moved && Math.hypot(dx, dy) < dragPx) return;
      moved = true;
      m.dataset.dragging = 'true';
      place(m, { x: start.left + dx, y: start.top + dy });
    };
    const up = (e) => {
      m.removeEventListener('pointermove', move);
      m.removeEventListener('pointerup', up);
      m.removeEventListener('pointercancel', up);
      if (!moved) return;
      m.dataset.moved = 'true'; // the click that follows is not a click
      setTimeout(() => delete m.dataset.moved, 0);
      const cam = cameras.find((x) => x.id === m.dataset.cameraId);
      const sp = { x: start.left + e.clientX - start.x, y: start.top + e.clientY - start.y };
      moveCamera(cam, sp).finally(() => {
        delete m.dataset.dragging;
        renderMarkers();
      });
    };
    m.addEventListener('pointermove', move);
    m.addEventListener('pointerup', up);
    m.addEventListener('pointercancel', up);
  }

  function placeAt(cam, sp) {
    placing = null;
    showBanner('');
    moveCamera(cam, sp).finally(() => renderUnplaced());
  }

  // moveCamera stores the position under screen point sp as the camera's
  // (the camera API's PUT: audited as camera.update, "location").
  async function moveCamera(cam, sp) {
    if (!cam) return;
    const w = toWorld(sp.x, sp.y);
    const ll = proj.inv(w.x, w.y);
    if (!ll || !Number.isFinite(ll.lat) || !Number.isFinite(ll.lng)) {
      toast(t('map.noProjection'), 'error');
      return;
    }
    const round = (v) => Math.round(v * 1e6) / 1e6; // about 0.1 m
    try {
      const c = await api.get(api.camPath(cam.id));
      const body = {
        id: c.id, name: c.name, department: c.department,
        location: { lat: round(ll.lat), lng: round(ll.lng), address: c.location?.address || '' },
        mainUrl: c.mainUrl, subUrl: c.subUrl || '', transport: c.transport, record: c.record,
        retentionDays: c.retentionDays, enabled: c.enabled, tags: c.tags || [],
      };
      const saved = await api.put(api.camPath(cam.id), body);
      const i = cameras.findIndex((x) => x.id === cam.id);
      if (i >= 0) cameras[i] = saved;
      toast(t('map.moved', { name: saved.name || saved.id }), 'ok');
    } catch (err) {
      if (err.status !== 401) toast(errorText(err), 'error');
    }
    renderMarkers();
  }

  // ---- site map (admins of every department)
  async function uploadImage(file) {
    fileIn.value = '';
    if (!file) return;
    try {
      await api.put('/api/v1/map/image', file, { contentType: file.type || 'application/octet-stream' });
      await loadConfig();
      fitted = false;
      startRefs();
    } catch (err) {
      if (err.status !== 401) toast(errorText(err), 'error');
    }
  }

  async function removeImage() {
    try {
      await api.del('/api/v1/map');
      await loadConfig();
    } catch (err) {
      if (err.status !== 401) toast(errorText(err), 'error');
    }
  }

  // startRefs: the next two clicks on the image are reference points, each
  // given its latitude and longitude in a dialog.
  function startRefs() {
    if (!config.image) {
      toast(t('map.uploadFirst'), 'error');
      return;
    }
    // back to the image's own pixels, so that a click names one
    proj = { mode: 'image-unplaced', fwd: () => null, inv: () => null };
    fit();
    render();
    refPoints = [];
    showBanner(t('map.refClick', { n: 1 }));
  }

  function refClick(sp) {
    const w = toWorld(sp.x, sp.y);
    if (w.x < 0 || w.y < 0 || w.x > config.image.width || w.y > config.image.height) return;
    const lat = h('input', { type: 'number', step: 'any', min: -85, max: 85, required: true, 'data-testid': 'map-ref-lat' });
    const lng = h('input', { type: 'number', step: 'any', min: -180, max: 180, required: true, 'data-testid': 'map-ref-lng' });
    const err = h('div', { class: 'form-error' });
    const form = h('form', { class: 'form', onsubmit: (ev) => {
      ev.preventDefault();
      m.close({ x: Math.round(w.x * 10) / 10, y: Math.round(w.y * 10) / 10, lat: Number(lat.value), lng: Number(lng.value) });
    } },
    h('p', { class: 'muted', text: t('map.refAt', { n: refPoints.length + 1, x: Math.round(w.x), y: Math.round(w.y) }) }),
    field(t('cameras.lat'), lat), field(t('cameras.lng'), lng), err,
    formActions(() => m.close(), 'map-ref-save'));
    const m = modal(t('map.refs'), form, { testid: 'map-ref-dialog' });
    lat.focus();
    m.done.then(async (p) => {
      if (!p || !refPoints) return;
      refPoints.push(p);
      if (refPoints.length < 2) {
        showBanner(t('map.refClick', { n: 2 }));
        return;
      }
      const refs = refPoints;
      refPoints = null;
      showBanner('');
      try {
        await api.put('/api/v1/map', { refs });
        toast(t('map.refsSaved'), 'ok');
      } catch (e) {
        if (e.status !== 401) toast(errorText(e), 'error');
      }
      await loadConfig();
    });
  }

  // ---- live view of a camera, over the map
  function openLive(cam) {
    closeLive();
    const video = h('video', { muted: true, autoplay: true, playsInline: true });
    const badge = statusBadge(status.get(cam.id)?.state);
    const msg = h('div', { class: 'tile-msg' }, spinner(), h('span', { text: t('wall.connecting') }));
    const el = h('div', { class: 'map-live', 'data-testid': 'map-live', 'data-camera-id': cam.id, 'data-player': 'idle' },
      h('div', { class: 'focus-bar' },
        h('span', { class: 'tile-name', text: cam.name || cam.id }),
        deptChip(ctx.departments, cam.department), badge,
        h('span', { class: 'muted', text: cam.location?.address || '' }),
        h('span', { class: 'toolbar-spacer' }),
        ctx.can('playback') ? h('a', { class: 'btn', 'data-testid': 'map-live-playback', href: `#/playback?camera=${encodeURIComponent(cam.id)}`, text: t('nav.playback') }) : null,
        h('button', { type: 'button', class: 'btn', 'data-testid': 'map-live-close', text: t('common.close'), onclick: closeLive })),
      h('div', { class: 'focus-video' }, video, msg));
    const player = new WhepPlayer(video, {
      cameraId: cam.id, stream: 'main', onUnauthorized: () => api.signalUnauthorized(),
      onState: (s, detail) => {
        el.dataset.player = s;
        msg.hidden = s === State.Playing;
        if (s === State.Retrying) replace(msg, h('span', { text: t('wall.reconnecting') }), detail ? h('span', { class: 'tile-detail', text: detail }) : null);
      },
    });
    live = { cam, el, player, badge };
    root.appendChild(el);
    player.start();
  }

  function closeLive() {
    if (!live) return;
    live.player.stop();
    live.el.remove();
    const id = live.cam.id;
    live = null;
    markers.get(id)?.focus();
  }

  const onKey = (ev) => {
    if (ev.key !== 'Escape') return;
    if (live) closeLive();
    else if (placing || refPoints) {
      placing = null;
      refPoints = null;
      showBanner('');
      loadConfig();
    }
  };
  document.addEventListener('keydown', onKey);
  // ←/→ go from marker to marker (Enter opens the focused one), F full screen
  const unkeys = shortcuts({
    camera: (d) => {
      const list = [...markers.values()].sort((a, b) => a.dataset.cameraId.localeCompare(b.dataset.cameraId));
      if (!list.length) return;
      if (live) {
        const i = list.findIndex((m) => m.dataset.cameraId === live.cam.id);
        const next = list[(i + d + list.length) % list.length];
        openLive(cameras.find((c) => c.id === next.dataset.cameraId));
        return;
      }
      const i = list.indexOf(document.activeElement);
      list[i < 0 ? 0 : (i + d + list.length) % list.length].focus();
    },
    fullscreen: () => {
      if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
      else stage.requestFullscreen?.().catch(() => {});
    },
  });

  // ---- data
  function renderDeptOptions() {
    const present = new Set(cameras.map((c) => c.department));
    replace(deptSel, h('option', { value: '', text: t('wall.allDepartments') }),
      ctx.departments.filter((d) => present.has(d.id) || d.id === dept).map((d) => h('option', { value: d.id, text: deptName(d), selected: d.id === dept })));
    deptSel.value = dept;
  }

  async function loadConfig() {
    try {
      config = await api.get('/api/v1/map');
    } catch (err) {
      if (err.status === 401) return;
      config = { tiles: '', image: null };
    }
    if (destroyed) return;
    proj = projection(config, cameras);
    if (proj.mode === 'image-unplaced' && admin && !refPoints) showBanner(t('map.needRefs'));
    fit();
    fitted = true;
    render();
    renderUnplaced();
  }

  async function pollStatus() {
    try {
      const list = api.list(await api.get('/api/v1/status'), 'cameras');
      status = new Map(list.map((s) => [s.id, s]));
      if (live) setBadge(live.badge, status.get(live.cam.id)?.state);
      if (destroyed) return;
      renderMarkers();
      stage.dataset.statusAt = new Date().toISOString();
    } catch {
      // the last states stay; the connection banner says the server is away
    } finally {
      if (!destroyed) pollTimer = setTimeout(pollStatus, statusPollMs);
    }
  }

  const ro = new ResizeObserver(() => { if (fitted) render(); });
  ro.observe(stage);

  stage.appendChild(h('div', { class: 'map-loading' }, spinner()));
  (async () => {
    try {
      const [cams, cfg] = await Promise.all([api.get('/api/v1/cameras'), api.get('/api/v1/map').catch(() => ({ tiles: '', image: null }))]);
      if (destroyed) return;
      cameras = api.list(cams, 'cameras');
      config = cfg;
    } catch (err) {
      if (!destroyed && err.status !== 401) replace(layer, errorBox(err));
      return;
    } finally {
      stage.querySelector('.map-loading')?.remove();
    }
    renderDeptOptions();
    proj = projection(config, cameras);
    if (proj.mode === 'image-unplaced' && admin) showBanner(t('map.needRefs'));
    fit();
    fitted = true;
    render();
    renderUnplaced();
    await pollStatus();
  })();

  return () => {
    destroyed = true;
    clearTimeout(pollTimer);
    unkeys();
    closeLive();
    ro.disconnect();
    document.removeEventListener('keydown', onKey);
    document.documentElement.classList.remove('wall-fit');
  };
}
