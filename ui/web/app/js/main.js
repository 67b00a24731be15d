// main.js: boots the app — language, session, the shell (top bar) and the
// hash router (#/wall, #/playback?camera=..&t=.., #/admin/cameras ...).

import { h, replace } from './dom.js';
import * as api from './api.js';
import { initI18n, t, getLang, setLang, languages, onLangChange } from './i18n.js';
import { notAllowed, errorText } from './ui.js';
import * as loginPage from './pages/login.js';
import * as wallPage from './pages/wall.js';
import * as playbackPage from './pages/playback.js';
import * as incidentsPage from './pages/incidents.js';
import * as auditPage from './pages/audit.js';
import * as reportsPage from './pages/reports.js';
import * as camerasPage from './pages/admin-cameras.js';
import * as departmentsPage from './pages/admin-departments.js';
import * as usersPage from './pages/admin-users.js';
import * as displaysPage from './pages/admin-displays.js';
import * as healthPage from './pages/health.js';
import * as gb28181Page from './pages/admin-gb28181.js';
import * as health from './health.js';
import * as accountPage from './pages/account.js';
import * as mapPage from './pages/map.js';
import { showHelp } from './keys.js';

// What each role may do; the server enforces the same rules.
const permissions = {
  live: ['admin', 'operator', 'responder', 'viewer', 'display'],
  playback: ['admin', 'operator', 'responder'],
  export: ['admin', 'responder'],
  incidents: ['admin', 'responder'],
  reports: ['admin', 'operator', 'responder'],
  admin: ['admin'],
  health: ['admin', 'operator'],
  ptz: ['admin', 'operator', 'responder'],
  account: ['admin', 'operator', 'responder', 'viewer'],
};

// Routes in menu order. nav: the label key when shown in the menu.
const routes = [
  { path: '/wall', page: wallPage, perm: 'live', nav: 'nav.wall' },
  { path: '/map', page: mapPage, perm: 'live', nav: 'nav.map' },
  { path: '/playback', page: playbackPage, perm: 'playback', nav: 'nav.playback' },
  { path: '/incidents', page: incidentsPage, perm: 'incidents', nav: 'nav.incidents' },
  { path: '/reports', page: reportsPage, perm: 'reports', nav: 'nav.reports' },
  { path: '/health', page: healthPage, perm: 'health', nav: 'nav.health' },
  { path: '/audit', page: auditPage, perm: 'admin', nav: 'nav.audit' },
  { path: '/admin/cameras', page: camerasPage, perm: 'admin', nav: 'nav.cameras' },
  { path: '/admin/departments', page: departmentsPage, perm: 'accounts', nav: 'nav.departments' },
  { path: '/admin/users', page: usersPage, perm: 'accounts', nav: 'nav.users' },
  { path: '/admin/displays', page: displaysPage, perm: 'accounts', nav: 'nav.displays' },
  { path: '/admin/gb28181', page: gb28181Page, perm: 'admin', nav: 'nav.gb28181' },
  // no menu entry: the user's name in the top bar links to it
  { path: '/account', page: accountPage, perm: 'account' },
];

const root = document.getElementById('app');
let session = null;
let departments = [];
let cleanup = null;
let healthBannerOff = null;

function parseHash() {
  const raw = location.hash.replace(/^#/, '') || '/wall';
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : raw.slice(q + 1));
  return { path: path || '/wall', params };
}

function navigate(hash, { replace: rep = false } = {}) {
  const target = hash.startsWith('#') ? hash : '#' + hash;
  if (location.hash === target) {
    render();
  } else if (rep) {
    history.replaceState(null, '', target);
    render();
  } else {
    location.hash = target;
  }
}

function can(perm) {
  if (perm === 'accounts') {
    // users and departments decide who sees what: admins of every department only
    return !!session && session.role === 'admin' && !(session.departments || []).length;
  }
  return !!session && (permissions[perm] || []).includes(session.role);
}

async function loadDepartments() {
  try {
    departments = api.list(await api.get('/api/v1/departments'), 'departments');
  } catch (err) {
    if (err.status !== 401) departments = [];
  }
  return departments;
}

function unmount() {
  if (cleanup) {
    try {
      cleanup();
    } catch (err) {
      console.error('page cleanup', err);
    }
    cleanup = null;
  }
}

function toLogin() {
  const { path } = parseHash();
  if (path === '/login') return;
  const expired = session !== null;
  session = null;
  const next = location.hash || '#/wall';
  navigate('/login?next=' + encodeURIComponent(next) + (expired ? '&expired=1' : ''), { replace: true });
}

function langSwitch() {
  const sel = h('select', { class: 'lang', 'data-testid': 'lang-switch', 'aria-label': t('common.language'),
    onchange: () => setLang(sel.value) },
  languages.map((l) => h('option', { value: l, text: l === 'zh-CN' ? '中文' : 'English', selected: l === getLang() })));
  return sel;
}

function shell(current) {
  const nav = h('nav', { class: 'nav', 'data-testid': 'nav' },
    routes.filter((r) => r.nav && can(r.perm)).map((r) => h('a', {
      href: '#' + r.path,
      class: ['nav-link', current === r.path && 'active'],
      'data-testid': 'nav-' + r.path.replace(/^\//, '').replace('/', '-'),
      text: t(r.nav),
    })));
  const view = h('main', { class: 'view', id: 'view' });
  const top = h('header', { class: 'topbar' },
    h('a', { class: 'brand', href: '#/wall' }, h('span', { class: 'brand-mark' }), h('span', { text: t('app.name') })),
    nav,
    h('div', { class: 'topbar-right' },
      h('button', { type: 'button', class: 'btn btn-ghost btn-icon', 'data-testid': 'keys-help-open', text: '?', title: t('keys.title'), 'aria-label': t('keys.title'), onclick: showHelp }),
      langSwitch(),
      h(can('account') ? 'a' : 'span', { class: 'user', 'data-testid': 'current-user', href: can('account') ? '#/account' : undefined, title: t('nav.account') },
        h('span', { class: 'user-name', text: session.username }),
        h('span', { class: 'user-role', text: t('role.' + session.role) })),
      h('button', { type: 'button', class: 'btn btn-ghost', 'data-testid': 'logout', text: t('nav.logout'), onclick: logout })));
  const banner = h('div', { class: 'conn-banner', 'data-testid': 'connection-lost', role: 'alert', hidden: true,
    text: t('app.connectionLost') });
  const update = () => { banner.hidden = api.serverReachable() && navigator.onLine; };
  api.connection.addEventListener('change', update);
  window.addEventListener('offline', update);
  window.addEventListener('online', update);
  update();
  if (healthBannerOff) healthBannerOff();
  const hb = health.banner();
  healthBannerOff = hb.cleanup;
  replace(root, top, banner, hb.el, view);
  return view;
}

async function logout() {
  unmount();
  try {
    await api.logout();
  } catch {
    // logged out locally anyway
  }
  session = null;
  health.stop();
  navigate('/login', { replace: true });
}

async function render() {
  unmount();
  const { path, params } = parseHash();
  if (path === '/login') {
    cleanup = loginPage.mount(root, {
      params,
      langSwitch,
      async onLogin(s) {
        session = s;
        await loadDepartments();
        const next = params.get('next');
        navigate(next && next.startsWith('#/') && !next.startsWith('#/login') ? next : '/wall', { replace: true });
      },
    }) || null;
    return;
  }
  if (path === '/display') {
    await signInDisplay(params.get('code') || '', params);
    return;
  }
  if (!session) {
    try {
      session = await api.getSession();
      await loadDepartments();
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        toLogin();
      } else {
        replace(root, h('div', { class: 'boot boot-error', text: errorText(err) }));
      }
      return;
    }
    // The hash may have changed while we waited.
    if (parseHash().path !== path) return;
  }
  health.start(session);
  const route = routes.find((r) => r.path === path);
  if (!route) {
    navigate('/wall', { replace: true });
    return;
  }
  const view = shell(route.path);
  if (!can(route.perm)) {
    view.appendChild(notAllowed());
    return;
  }
  const ctx = {
    session,
    get departments() { return departments; },
    params,
    navigate,
    can,
    loadDepartments,
  };
  try {
    cleanup = route.page.mount(view, ctx) || null;
  } catch (err) {
    console.error('page mount', err);
    view.appendChild(h('div', { class: 'error-box', text: errorText(err) }));
  }
}

// signInDisplay trades a display's one-time code (the link an admin made
// on the Displays page) for a login that never idles out, and opens the
// wall in kiosk mode.
// A layout or tour in the link (&layout=ID or &tour=ID) opens on the wall.
async function signInDisplay(code, params) {
  try {
    const res = await fetch('/api/v1/displays/signin', {
      method: 'POST', credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json', 'Accept-Language': getLang() },
      body: JSON.stringify({ code }),
    });
    const data = await res.json().catch(() => null);
    if (!res.ok) throw new api.ApiError(res.status, (data && data.error) || res.statusText, data);
    session = await api.getSession();
    await loadDepartments();
    const wall = new URLSearchParams({ kiosk: '1' });
    for (const k of ['layout', 'tour']) if (params.get(k)) wall.set(k, params.get(k));
    navigate('/wall?' + wall.toString(), { replace: true });
  } catch (err) {
    replace(root, h('div', { class: 'boot boot-error', 'data-testid': 'display-signin-error' },
      h('p', { text: t('displays.signinFailed') }), h('p', { text: errorText(err) }),
      h('a', { href: '#/login', text: t('login.submit') })));
  }
}

async function boot() {
  await initI18n();
  api.onUnauthorized(toLogin);
  onLangChange(() => render());
  window.addEventListener('hashchange', () => render());
  // Closing the tab ends the page's sessions now (keepalive DELETEs), not
  // when the server's ICE timeout notices.
  window.addEventListener('pagehide', unmount);
  render();
}

boot();
