// audio.js: the sound of one camera at a time. Every video starts muted; a
// tile or playback cell whose camera has audio the browser can play shows a
// speaker button, and unmuting one mutes whichever other was heard, across
// the page. Which codecs play where:
// - live (WebRTC): Opus and G.711 (PCMU, PCMA); WebRTC cannot carry AAC, so
//   the relay sends no audio for an AAC camera, and its tile says so;
// - playback (MSE/fMP4 in a <video>): AAC and Opus.

import { h } from './dom.js';
import { t } from './i18n.js';

const playable = {
  live: ['Opus', 'PCMU', 'PCMA'],
  playback: ['AAC', 'Opus'],
};

let heard = null; // the AudioToggle unmuted now

// AudioToggle is the speaker button of one video.
export class AudioToggle {
  // kind: 'live' or 'playback'.
  constructor(video, kind) {
    this.video = video;
    this.kind = kind;
    this.codec = '';
    video.muted = true;
    this.el = h('button', { type: 'button', class: 'audio-btn', 'data-testid': 'audio-toggle', 'data-audio': 'off', hidden: true,
      onclick: (ev) => { ev.stopPropagation(); this.toggle(); } });
    this.el.addEventListener('dblclick', (ev) => ev.stopPropagation());
    this.render();
  }

  // setCodec follows the camera's audio codec (status "audio.codec"; "" or
  // null: none): the button shows when there is audio, and is disabled, with
  // the reason, when this browser cannot play that codec here.
  setCodec(codec) {
    codec = codec || '';
    if (codec === this.codec) return;
    this.codec = codec;
    if (!this.canPlay() && heard === this) this.mute();
    this.render();
  }

  canPlay() {
    return playable[this.kind].includes(this.codec);
  }

  toggle() {
    if (!this.canPlay()) return;
    if (heard === this) this.mute();
    else this.unmute();
  }

  unmute() {
    if (heard && heard !== this) heard.mute();
    heard = this;
    this.video.muted = false;
    this.video.volume = 1;
    this.render();
  }

  mute() {
    this.video.muted = true;
    if (heard === this) heard = null;
    this.render();
  }

  render() {
    const b = this.el;
    b.hidden = !this.codec;
    const on = heard === this;
    b.dataset.audio = on ? 'on' : 'off';
    b.dataset.codec = this.codec;
    b.disabled = !this.canPlay();
    b.setAttribute('aria-pressed', String(on));
    b.textContent = '♪'; // in every font (speaker emoji are not); off is struck through (app.css)
    b.title = !this.canPlay() ? t(this.kind === 'live' ? 'audio.notLive' : 'audio.notPlayback', { codec: this.codec })
      : t(on ? 'audio.mute' : 'audio.unmute');
    b.setAttribute('aria-label', b.title);
  }

  // release mutes the video when its tile or cell goes away.
  release() {
    if (heard === this) heard = null;
    this.video.muted = true;
  }
}

// toggleHeard unmutes the first toggle given that can play, or mutes the one
// heard (the M key).
export function toggleHeard(toggles) {
  if (heard && toggles.includes(heard)) {
    heard.mute();
    return;
  }
  const first = toggles.find((a) => a && a.canPlay());
  if (first) first.unmute();
}
