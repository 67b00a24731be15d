// i18n.js: zh-CN and en dictionaries (i18n/*.json), Chinese by default when
// the browser prefers it, the choice remembered in localStorage.

export const languages = ['zh-CN', 'en'];
const storageKey = 'vigil.lang';
const dicts = {};
let lang = 'en';
const listeners = new Set();

function preferred() {
  try {
    const saved = localStorage.getItem(storageKey);
    if (languages.includes(saved)) return saved;
  } catch {
    // storage unavailable: fall through to the browser's languages
  }
  for (const l of navigator.languages || [navigator.language || '']) {
    const low = String(l).toLowerCase();
    if (low.startsWith('zh')) return 'zh-CN';
    if (low.startsWith('en')) return 'en';
  }
  return 'en';
}

// initI18n loads both dictionaries and picks the language.
export async function initI18n() {
  await Promise.all(languages.map(async (l) => {
    const res = await fetch(`i18n/${l}.json`, { cache: 'no-cache' });
    dicts[l] = res.ok ? await res.json() : {};
  }));
  apply(preferred());
}

function apply(l) {
  lang = l;
  document.documentElement.lang = l;
  document.title = t('app.title');
}

export function getLang() {
  return lang;
}

// setLang switches the language, remembers it and notifies listeners.
export function setLang(l) {
  if (!languages.includes(l) || l === lang) return;
  apply(l);
  try {
    localStorage.setItem(storageKey, l);
  } catch {
    // not remembered, still switched
  }
  for (const fn of listeners) fn(l);
}

export function onLangChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// t translates key, replacing {name} placeholders from vars.
export function t(key, vars) {
  let s = dicts[lang]?.[key] ?? dicts.en?.[key] ?? key;
  if (vars) s = s.replace(/\{(\w+)\}/g, (m, k) => (k in vars ? String(vars[k]) : m));
  return s;
}

// deptName gives a department's name in the current language.
export function deptName(dept) {
  if (!dept) return '';
  const n = dept.name || {};
  return n[lang] || n.en || n['zh-CN'] || dept.id;
}

const dateTimeFormats = new Map();
function fmt(options) {
  const key = lang + JSON.stringify(options);
  if (!dateTimeFormats.has(key)) dateTimeFormats.set(key, new Intl.DateTimeFormat(lang, options));
  return dateTimeFormats.get(key);
}

// formatDateTime shows an instant in local time, to the second.
export function formatDateTime(v) {
  const d = v instanceof Date ? v : new Date(v);
  if (!v || isNaN(d)) return '';
  return fmt({ year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
}

export function formatTime(v, withMs = false) {
  const d = v instanceof Date ? v : new Date(v);
  if (isNaN(d)) return '';
  const s = fmt({ hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(d);
  return withMs ? `${s}.${String(d.getMilliseconds()).padStart(3, '0')}` : s;
}

export function formatDate(v) {
  const d = v instanceof Date ? v : new Date(v);
  if (isNaN(d)) return '';
  return fmt({ year: 'numeric', month: '2-digit', day: '2-digit', weekday: 'short' }).format(d);
}

export function formatNumber(n, digits = 1) {
  return new Intl.NumberFormat(lang, { maximumFractionDigits: digits, minimumFractionDigits: digits }).format(n);
}
