// Small DOM helpers. Everything is built with createElement and text nodes,
// never from HTML strings, so names from cameras or users cannot inject markup.

// h creates an element. attrs: class, text, dataset-like "data-*" keys, any
// DOM property (value, checked, type...), and "on<event>" functions, which
// are attached with addEventListener (CSP forbids inline handlers).
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = Array.isArray(v) ? v.filter(Boolean).join(' ') : v;
    else if (k === 'text') el.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'for' ||
             k === 'list' || k === 'form' || k === 'download') el.setAttribute(k, v === true ? '' : String(v));
    else if (k in el) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else if (c instanceof Node) el.appendChild(c);
    else el.appendChild(document.createTextNode(String(c)));
  }
}

// clear removes every child of el.
export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

// replace puts children in place of el's current content.
export function replace(el, ...children) {
  clear(el);
  append(el, children);
  return el;
}

// debounce delays fn until calls stop for ms milliseconds.
export function debounce(fn, ms) {
  let timer = 0;
  const d = (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
  d.cancel = () => clearTimeout(timer);
  return d;
}

// load/save keep small UI preferences in localStorage, ignoring storage
// errors (private windows, full quota): a preference is never worth a crash.
export function load(key, fallback) {
  try {
    const v = localStorage.getItem(key);
    return v === null ? fallback : JSON.parse(v);
  } catch {
    return fallback;
  }
}

export function save(key, value) {
  try {
    localStorage.setItem(key, JSON.stringify(value));
  } catch {
    // ignored: see load
  }
}
