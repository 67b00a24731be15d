// keys.js: keyboard shortcuts, handled once at document level, and their
// help overlay (?). A page registers the actions it has (shortcuts(...));
// a key whose action the page lacks does nothing.
//
// Rules, so that a key never does something the user did not mean:
// - Nothing happens while a text field, select or editable element has the
//   focus (typing a camera name must not seek the video), with Ctrl, Alt or
//   Meta held (browser shortcuts), or while a dialog is open: keys then go
//   to the dialog, as the browser gives them (Esc closes it).
// - Space is play/pause on every page that registers shortcuts, whatever
//   button has the focus: it never clicks the focused button (which could
//   open a dialog or confirm one), on keydown or keyup.
// - Enter keeps its meaning: it activates the focused control (a wall tile
//   opens its large view).
// - A handler that uses a key calls preventDefault, and this module, which
//   listens on window (after every element's and the document's handlers),
//   leaves such keys alone. The PTZ controls (ptz.js: the large view of a
//   PTZ camera) take the arrows and + − that way; while they are on the
//   page the arrows are theirs in any case. Otherwise ← → are the previous
//   and next camera.

import { h } from './dom.js';
import { t } from './i18n.js';
import { modal } from './ui.js';

// The shortcuts in the order the help lists them: keys shown, the action
// (a name in the page's actions) and its argument.
const table = [
  { keys: ['Space', 'K'], action: 'playPause', label: 'keys.playPause' },
  { keys: [',', '.'], action: 'step', label: 'keys.step' },
  { keys: ['[', ']'], action: 'speed', label: 'keys.speed' },
  { keys: ['J', 'L', 'Shift+←', 'Shift+→'], action: 'jump', label: 'keys.jump' },
  { keys: ['←', '→'], action: 'camera', label: 'keys.camera' },
  { keys: ['1 … 6'], action: 'layout', label: 'keys.layout' },
  { keys: ['F'], action: 'fullscreen', label: 'keys.fullscreen' },
  { keys: ['M'], action: 'audio', label: 'keys.audio' },
  { keys: ['?'], action: 'help', label: 'keys.help' },
];

let current = null; // the page's actions
let helpOpen = null;

// shortcuts makes actions the page's shortcuts until the returned function
// is called. actions: playPause(), step(±1), speed(±1), jump(±seconds),
// camera(±1), layout(index from 0), fullscreen(), audio(); any may be absent.
export function shortcuts(actions) {
  current = actions;
  return () => {
    if (current === actions) current = null;
  };
}

function typing(el) {
  if (!el || el === document.body) return false;
  if (el.isContentEditable) return true;
  const tag = el.tagName;
  if (tag === 'TEXTAREA' || tag === 'SELECT') return true;
  if (tag !== 'INPUT') return false;
  return !['button', 'checkbox', 'radio', 'range', 'color', 'submit', 'reset', 'file'].includes(el.type);
}

function dialogOpen() {
  return !!document.querySelector('dialog[open]');
}

// actionOf maps a key event to [action, argument], or null.
function actionOf(ev) {
  const k = ev.key;
  if (k === ' ' || k === 'k' || k === 'K') return ['playPause'];
  if (k === ',') return ['step', -1];
  if (k === '.') return ['step', 1];
  if (k === '[') return ['speed', -1];
  if (k === ']') return ['speed', 1];
  if (k === 'j' || k === 'J' || (k === 'ArrowLeft' && ev.shiftKey)) return ['jump', -10];
  if (k === 'l' || k === 'L' || (k === 'ArrowRight' && ev.shiftKey)) return ['jump', 10];
  if (k === 'ArrowLeft') return ['camera', -1];
  if (k === 'ArrowRight') return ['camera', 1];
  if (/^[1-6]$/.test(k)) return ['layout', Number(k) - 1];
  if (k === 'f' || k === 'F') return ['fullscreen'];
  if (k === 'm' || k === 'M') return ['audio'];
  if (k === '?') return ['help'];
  return null;
}

// ptzShown tells whether PTZ controls are on the page: the arrows move the camera.
function ptzShown() {
  return !!document.querySelector('[data-testid=ptz]');
}

function onKeyDown(ev) {
  if (!current || ev.ctrlKey || ev.altKey || ev.metaKey || ev.isComposing) return;
  if (typing(ev.target) || dialogOpen() || ev.defaultPrevented) return;
  if (ev.key.startsWith('Arrow') && ptzShown()) return;
  const a = actionOf(ev);
  if (!a) return;
  const [name, arg] = a;
  if (name === 'playPause' && ev.key === ' ') ev.preventDefault(); // never click the focused button
  if (name === 'help') {
    ev.preventDefault();
    showHelp();
    return;
  }
  const fn = current[name];
  if (typeof fn !== 'function') return;
  ev.preventDefault();
  fn(arg);
}

// A button clicks on the keyup of Space: swallow it where keydown was ours.
function onKeyUp(ev) {
  if (!current || ev.key !== ' ' || typing(ev.target) || dialogOpen()) return;
  ev.preventDefault();
}

// showHelp lists the shortcuts the current page has.
export function showHelp() {
  if (helpOpen) return;
  const have = (row) => row.action === 'help' || (current && typeof current[row.action] === 'function');
  const rows = table.filter(have).map((row) => h('tr', { 'data-action': row.action },
    h('td', { class: 'keys-keys' }, row.keys.map((k) => h('kbd', { text: k }))),
    h('td', { text: t(row.label) })));
  const m = modal(t('keys.title'), [
    h('table', { class: 'keys-table', 'data-testid': 'keys-table' }, h('tbody', {}, rows)),
    h('p', { class: 'muted small', text: t('keys.note') }),
  ], { testid: 'keys-help' });
  helpOpen = m;
  m.done.then(() => { helpOpen = null; });
}

window.addEventListener('keydown', onKeyDown);
window.addEventListener('keyup', onKeyUp);
