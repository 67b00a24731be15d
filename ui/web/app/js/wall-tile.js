// A live-wall tile: one camera's sub-stream over WHEP in a <video>, with its
// name, department and status badge, and a message while it is not playing.
// The wall decides when a tile plays (start/stop: visible, tab shown, no large
// view open); the tile owns its DOM and its player.

import { h, replace, clear } from './dom.js';
import { t, formatTime } from './i18n.js';
import { WhepPlayer, State } from './whep.js';
import { deptChip, deptColor, statusBadge, spinner } from './ui.js';
import { sourceBadge } from './source.js';
import { AudioToggle } from './audio.js';

export class WallTile {
  // opts: departments (for the chip), statusOf(id) → the camera's last known
  // state, onUnauthorized, onOpen(camera) on double-click or Enter.
  // The offline overlay follows the camera's status (setStatus), not the
  // player: a player cycling through reconnects must not make it flicker.
  constructor(camera, opts) {
    this.opts = opts;
    this.video = h('video', { muted: true, autoplay: true, playsInline: true, disablePictureInPicture: true });
    this.badge = statusBadge(opts.statusOf(camera.id));
    this.name = h('span', { class: 'tile-name' });
    this.chipBox = h('span', { class: 'tile-dept' });
    this.sourceBox = h('span', { class: 'tile-source' });
    this.msg = h('div', { class: 'tile-msg' });
    this.offText = h('span', { class: 'tile-offline-text', 'data-testid': 'tile-offline-since' });
    this.off = h('div', { class: 'tile-offline', 'data-testid': 'tile-offline', hidden: true }, this.offText);
    this.offline = null; // the status of an offline camera, null otherwise
    // note says the tile plays the main stream because the sub-stream fails
    this.note = h('div', { class: 'tile-note', 'data-testid': 'tile-note', hidden: true });
    this.audio = new AudioToggle(this.video, 'live'); // one tile heard at a time (audio.js)
    this.el = h('div', { class: 'tile', 'data-testid': 'tile', 'data-camera-id': camera.id, 'data-player': 'idle', tabIndex: 0 },
      this.video,
      this.off,
      h('div', { class: 'tile-bar' }, this.name, this.chipBox, this.sourceBox, this.badge, this.audio.el),
      this.note,
      this.msg);
    this.visible = false;
    this.setCamera(camera);
    this.player = new WhepPlayer(this.video, {
      cameraId: camera.id,
      stream: 'sub',
      onUnauthorized: opts.onUnauthorized,
      onState: (s, detail) => {
        this.el.dataset.player = s;
        this.showMessage(s, detail);
      },
      onServed: (stream) => this.showServed(stream),
    });
    this.el.addEventListener('dblclick', () => opts.onOpen(this.camera));
    this.el.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') opts.onOpen(this.camera); });
    this.showMessage(State.Idle);
  }

  // setCamera shows a camera's changed name, department or address.
  setCamera(c) {
    this.camera = c;
    const el = this.el;
    el.dataset.department = c.department;
    el.title = [c.name, c.location?.address].filter(Boolean).join(' — ');
    this.name.textContent = c.name || c.id;
    replace(this.chipBox, deptChip(this.opts.departments, c.department));
    replace(this.sourceBox, sourceBadge(c));
    el.style.setProperty('--dept', deptColor(c.department));
  }

  // showServed notes when the server plays the main stream for the sub-stream
  // the tile asked for although the camera has one: its sub-stream fails.
  showServed(stream) {
    this.el.dataset.stream = stream;
    const fallback = stream === 'main' && !!this.camera.subUrl;
    this.note.hidden = !fallback;
    this.note.textContent = fallback ? t('wall.subFallback') : '';
  }

  // subStatus follows the camera's sub-stream status: a tile that plays main
  // because its sub-stream failed asks for the sub-stream again once it is
  // back online.
  subStatus(sub) {
    // (idle: it works, and is pulled while watched)
    if (this.player.served === 'main' && this.camera.subUrl && (sub?.state === 'online' || sub?.state === 'idle')) this.player.restart();
  }

  // setStatus follows the camera's status from the wall's poll: an offline
  // camera (main stream, and the sub-stream when it has one) dims the tile
  // and says since when; the player's state does not change that.
  setStatus(st) {
    this.audio.setCodec(st?.audio?.codec);
    const off = isOffline(st) ? st : null;
    const changed = (off?.since || null) !== (this.offline?.since || null);
    this.offline = off;
    this.el.classList.toggle('tile-is-offline', !!off);
    this.off.hidden = !off;
    if (off && changed) this.renderOffline();
    if (!off) this.el.removeAttribute('data-offline-since');
    if (changed) this.showMessage(this.player.state);
  }

  renderOffline() {
    const since = this.offline?.since;
    const at = since && !since.startsWith('0001-') ? formatTime(since) : '';
    this.offText.textContent = at ? t('wall.offlineSince', { time: at }) : t('wall.offline');
    if (since) this.el.dataset.offlineSince = since;
  }

  // showMessage says why the tile shows no picture (connecting, offline,
  // disabled, reconnecting with the reason), or hides the message while playing.
  showMessage(playerState, detail) {
    const s = this.opts.statusOf(this.camera.id);
    const msg = this.msg;
    if (playerState === State.Playing || this.offline) {
      clear(msg);
      msg.hidden = true;
      return;
    }
    msg.hidden = false;
    let text = t('wall.connecting');
    if (s === 'offline') text = t('wall.offline');
    else if (s === 'disabled' || this.camera.enabled === false) text = t('wall.disabled');
    else if (playerState === State.Retrying) text = t('wall.reconnecting');
    replace(msg, playerState === State.Retrying || s === 'offline' || s === 'disabled' ? null : spinner(),
      h('span', { text }),
      detail && playerState === State.Retrying ? h('span', { class: 'tile-detail', text: detail }) : null);
  }


  // destroy stops the player and takes the tile off the page.
  destroy() {
    this.audio.release();
    this.player.stop();
    this.el.remove();
  }
}

// isOffline tells a camera the wall cannot show: its main stream is offline
// and it has no sub-stream online.
export function isOffline(st) {
  return st?.state === 'offline' && st.sub?.state !== 'online';
}
