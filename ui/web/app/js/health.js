// health.js: the health report (GET /api/v1/health), polled while an
// operator or admin is logged in, and the banner at the top of every page
// that names what is degraded or failing, since when, with a link to the
// health page. A role without access (403) sees no banner and is not polled
// again until the next login.

import { h, replace } from './dom.js';
import * as api from './api.js';
import { t, formatTime } from './i18n.js';

// pollMs is how often the report is asked for.
export const pollMs = 10000;

const changes = new EventTarget();
let report = null; // the last report, null while unknown or not allowed
let timer = null;
let polling = false;
let inflight = null;
let generation = 0; // bumped by stop(): an answer asked for before is dropped

// current returns the last report (null when none).
export function current() {
  return report;
}

// onChange calls fn whenever a new report arrives; it returns the unsubscribe.
export function onChange(fn) {
  changes.addEventListener('change', fn);
  return () => changes.removeEventListener('change', fn);
}

function set(r) {
  report = r;
  changes.dispatchEvent(new Event('change'));
}

// refresh asks for the report now.
export async function refresh() {
  if (inflight) return inflight;
  const gen = generation;
  inflight = (async () => {
    try {
      const r = await api.get('/api/v1/health');
      if (gen === generation) set(r);
    } catch (err) {
      if (gen !== generation) return;
      if (err.status === 403 || err.status === 401) {
        stop();
        set(null);
      }
      // Other failures (server unreachable, 503): keep the last report; the
      // connection banner says the server is gone.
    } finally {
      if (gen === generation) inflight = null;
    }
  })();
  return inflight;
}

// start polls for a session whose role may read the report; it is a no-op
// while already polling.
export function start(session) {
  if (!session || !['admin', 'operator'].includes(session.role)) {
    stop();
    set(null);
    return;
  }
  if (polling) return;
  polling = true;
  const tick = async () => {
    await refresh();
    if (polling) timer = setTimeout(tick, pollMs);
  };
  tick();
}

// stop ends polling (logout).
export function stop() {
  generation++;
  inflight = null;
  polling = false;
  clearTimeout(timer);
  timer = null;
}

const rank = { ok: 0, degraded: 1, failing: 2 };

// checkLabel names a check in the user's language: "storage" → "Object
// store", "camera/police-7/sub" → "Camera police-7 sub-stream".
export function checkLabel(name) {
  const parts = String(name || '').split('/');
  if (parts[0] === 'camera' && parts.length >= 2) {
    const sub = parts.length > 2 && parts[parts.length - 1] === 'sub';
    const cam = (sub ? parts.slice(1, -1) : parts.slice(1)).join('/');
    return t(sub ? 'health.check.cameraSub' : 'health.check.camera', { camera: cam });
  }
  const key = 'health.check.' + name;
  const s = t(key);
  return s === key ? name : s;
}

// worst returns the checks of the worst status (failing before degraded),
// the oldest first.
export function worst(r) {
  const bad = (r?.checks || []).filter((c) => rank[c.status] > 0);
  if (!bad.length) return [];
  const top = Math.max(...bad.map((c) => rank[c.status] || 0));
  return bad.filter((c) => rank[c.status] === top)
    .sort((a, b) => String(a.since || '').localeCompare(String(b.since || '')));
}

// banner returns the banner element, kept up to date until the returned
// element leaves the page (its cleanup is the returned function).
export function banner() {
  const el = h('div', { class: 'health-banner', 'data-testid': 'health-banner', role: 'alert', hidden: true });
  const update = () => {
    const r = report;
    if (!r || !rank[r.status]) {
      el.hidden = true;
      el.dataset.status = r ? r.status : '';
      replace(el);
      return;
    }
    const bad = worst(r);
    const shown = bad.slice(0, 2);
    el.hidden = false;
    el.dataset.status = r.status;
    el.className = 'health-banner health-banner-' + r.status;
    replace(el,
      h('strong', { class: 'health-banner-status', text: t('health.banner.' + r.status) }),
      h('span', { class: 'health-banner-causes' },
        shown.map((c) => h('span', { class: 'health-banner-cause', 'data-check': c.name },
          h('span', { class: 'health-banner-name', text: checkLabel(c.name) + ': ' }),
          h('span', { text: c.message || '' }),
          c.since ? h('span', { class: 'health-banner-since', text: ' — ' + t('health.sinceTime', { time: formatTime(c.since) }) }) : null)),
        bad.length > shown.length ? h('span', { class: 'health-banner-more', text: t('health.banner.more', { n: bad.length - shown.length }) }) : null),
      h('a', { href: '#/health', class: 'health-banner-link', 'data-testid': 'health-banner-link', text: t('health.banner.details') }));
  };
  const off = onChange(update);
  update();
  return { el, cleanup: off };
}
