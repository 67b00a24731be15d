// ptz.js: pan, tilt and zoom controls for a GB/T 28181 camera that has PTZ
// (its catalog says so): arrows and zoom buttons over the large view, and
// the keyboard (arrow keys, + and −) while it is open.
//
// A move is a speed, and the server stops a camera by itself 1 s after the
// last move it got (so that a camera never turns for ever when a browser
// goes away). While a button or key is held the control therefore repeats
// the move every repeatMs; on release it sends a stop. Commands go one at a
// time, in order, so that a stop never overtakes the move it ends; a repeat
// due while the previous command is still on its way is skipped, and a move
// that failed (the device is offline, say) is not repeated.

import { h } from './dom.js';
import * as api from './api.js';
import { t } from './i18n.js';
import { errorText } from './ui.js';

export const repeatMs = 400;

// hasPTZ tells whether a camera can be moved.
export function hasPTZ(camera) {
  return camera?.source === 'gb28181' && !!camera.gb28181?.ptz;
}

// direction → [pan, tilt, zoom] signs
const moves = {
  up: [0, 1, 0], down: [0, -1, 0], left: [-1, 0, 0], right: [1, 0, 0],
  'zoom-in': [0, 0, 1], 'zoom-out': [0, 0, -1],
};
const keyMoves = {
  ArrowUp: 'up', ArrowDown: 'down', ArrowLeft: 'left', ArrowRight: 'right',
  '+': 'zoom-in', '=': 'zoom-in', Add: 'zoom-in', '-': 'zoom-out', _: 'zoom-out', Subtract: 'zoom-out',
};
const arrows = { up: '▲', down: '▼', left: '◀', right: '▶', 'zoom-in': '+', 'zoom-out': '−' };

export class PTZControl {
  constructor(camera) {
    this.camera = camera;
    this.held = null; // the direction held
    this.timer = 0;
    this.chain = Promise.resolve();
    this.inflight = 0;
    this.destroyed = false;
    this.speed = h('input', { type: 'range', min: 0.1, max: 1, step: 0.1, value: 0.5, class: 'ptz-speed',
      'data-testid': 'ptz-speed', 'aria-label': t('ptz.speed'), title: t('ptz.speed') });
    this.err = h('div', { class: 'ptz-error', 'data-testid': 'ptz-error', role: 'alert', hidden: true });
    this.buttons = new Map();
    const btn = (dir) => {
      const b = h('button', { type: 'button', class: 'ptz-btn ptz-' + dir, 'data-testid': 'ptz-' + dir, 'data-dir': dir,
        'aria-label': t('ptz.' + dir), title: t('ptz.' + dir), text: arrows[dir] });
      b.addEventListener('pointerdown', (ev) => {
        if (ev.button !== 0) return;
        ev.preventDefault();
        b.setPointerCapture?.(ev.pointerId);
        this.press(dir);
      });
      for (const type of ['pointerup', 'pointercancel', 'lostpointercapture']) b.addEventListener(type, () => this.release(dir));
      // a click from the keyboard (Enter or space on the focused button)
      b.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); this.press(dir); }
      });
      b.addEventListener('keyup', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') this.release(dir);
      });
      this.buttons.set(dir, b);
      return b;
    };
    this.el = h('div', { class: 'ptz', 'data-testid': 'ptz', 'data-camera-id': camera.id, role: 'group', 'aria-label': t('ptz.label') },
      h('div', { class: 'ptz-pad' },
        h('span'), btn('up'), h('span'),
        btn('left'), h('span', { class: 'ptz-center', text: t('ptz.short') }), btn('right'),
        h('span'), btn('down'), h('span')),
      h('div', { class: 'ptz-zoom' }, btn('zoom-in'), btn('zoom-out')),
      this.speed,
      h('div', { class: 'ptz-hint muted', text: t('ptz.keys') }),
      this.err);
    this.el.addEventListener('dblclick', (ev) => ev.stopPropagation());
    this.onKeyDown = (ev) => {
      const dir = keyMoves[ev.key];
      if (!dir || ev.ctrlKey || ev.metaKey || ev.altKey || (ev.shiftKey && ev.key.startsWith('Arrow')) || isTyping(ev.target) || document.querySelector('dialog[open]')) return;
      ev.preventDefault();
      this.press(dir);
    };
    this.onKeyUp = (ev) => {
      const dir = keyMoves[ev.key];
      if (dir) this.release(dir);
    };
    this.onHide = () => { if (document.hidden) this.release(); };
    this.onBlur = () => this.release();
    // Capturing on window: before the page's shortcuts (keys.js, on
    // document), which leave a key alone once it is taken (← → would move
    // the large view to another camera).
    window.addEventListener('keydown', this.onKeyDown, true);
    window.addEventListener('keyup', this.onKeyUp, true);
    document.addEventListener('visibilitychange', this.onHide);
    window.addEventListener('blur', this.onBlur);
  }

  // press starts moving in dir (a key's auto-repeat is ignored).
  press(dir) {
    if (this.destroyed || this.held === dir) return;
    if (this.held) this.buttons.get(this.held)?.classList.remove('active');
    this.held = dir;
    this.buttons.get(dir)?.classList.add('active');
    this.el.dataset.moving = dir;
    clearInterval(this.timer);
    this.send(dir);
    this.timer = setInterval(() => { if (!this.inflight) this.send(dir); }, repeatMs);
  }

  // release stops the movement (of dir, when given: releasing another key
  // than the one held changes nothing).
  release(dir) {
    if (!this.held || (dir && dir !== this.held)) return;
    this.buttons.get(this.held)?.classList.remove('active');
    this.held = null;
    delete this.el.dataset.moving;
    clearInterval(this.timer);
    this.send(null);
  }

  send(dir) {
    const [p, tl, z] = dir ? moves[dir] : [0, 0, 0];
    const s = Number(this.speed.value) || 0.5;
    const body = { pan: p * s, tilt: tl * s, zoom: z * s };
    this.inflight++;
    this.chain = this.chain.then(async () => {
      try {
        await api.post(api.camPath(this.camera.id, 'ptz'), body);
        this.err.hidden = true;
      } catch (err) {
        if (err.status === 401) return;
        this.err.hidden = false;
        this.err.textContent = errorText(err);
        // a command the device did not take is not repeated; the release
        // still sends the stop
        if (dir && this.held === dir) clearInterval(this.timer);
      } finally {
        this.inflight--;
      }
    });
  }

  // destroy stops a movement still held and removes the listeners.
  destroy() {
    this.release();
    this.destroyed = true;
    window.removeEventListener('keydown', this.onKeyDown, true);
    window.removeEventListener('keyup', this.onKeyUp, true);
    document.removeEventListener('visibilitychange', this.onHide);
    window.removeEventListener('blur', this.onBlur);
    this.el.remove();
  }
}

function isTyping(el) {
  return el && (el.tagName === 'INPUT' && el.type !== 'range' || el.tagName === 'TEXTAREA' || el.tagName === 'SELECT' || el.isContentEditable);
}
