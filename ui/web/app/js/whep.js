// whep.js: a WHEP (RFC 9725) client that plays one camera stream into a
// <video> and keeps it playing: it reconnects with capped, jittered backoff
// when the connection fails, when frames stop arriving, when the network
// returns (window "online") or when told the camera is back (kick()).

import { csrf, camPath } from './api.js';
import { t, getLang } from './i18n.js';

const gatherTimeoutMs = 1500;   // wait at most this long for ICE gathering
const stallMs = 10000;          // no frame for this long while connected: reconnect
const stableMs = 15000;         // a session this old resets the backoff
const backoffMinMs = 1000;
const backoffMaxMs = 30000;

// WhepPlayer states, reported through onState.
export const State = {
  Idle: 'idle',
  Connecting: 'connecting',
  Playing: 'playing',
  Retrying: 'retrying',
};

export class WhepPlayer {
  // video: the <video> element; cameraId; stream: "sub" | "main";
  // onState(state, detail): called on every change; onServed(stream): the
  // stream the server serves for each session (X-Vigil-Stream: main when a
  // sub-stream is missing or failing).
  constructor(video, { cameraId, stream = 'sub', onState = () => {}, onServed = () => {}, onUnauthorized = () => {} }) {
    this.video = video;
    this.cameraId = cameraId;
    this.stream = stream;
    this.served = '';
    this.onState = onState;
    this.onServed = onServed;
    this.onUnauthorized = onUnauthorized;
    this.state = State.Idle;
    this.running = false;
    this.pc = null;
    this.location = '';
    this.attempt = 0;
    this.retryTimer = 0;
    this.watchdog = 0;
    this.lastFrame = 0;
    this.connectedAt = 0;
    this.generation = 0;
    this.onlineHandler = () => this.kick();
    video.muted = true;
    video.autoplay = true;
    video.playsInline = true;
  }

  // start begins playing (idempotent).
  start() {
    if (this.running) return;
    this.running = true;
    this.attempt = 0;
    window.addEventListener('online', this.onlineHandler);
    this.connect();
  }

  // stop ends the session (DELETE on its location) and stays stopped.
  stop() {
    if (!this.running) return;
    this.running = false;
    window.removeEventListener('online', this.onlineHandler);
    clearTimeout(this.retryTimer);
    this.teardown();
    this.setState(State.Idle);
  }

  // kick reconnects now if the player is waiting to retry.
  kick() {
    if (!this.running || this.state === State.Playing || this.state === State.Connecting) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  // restart begins a new session now (to get the stream asked for again
  // after the server served another).
  restart() {
    if (!this.running) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.served = '';
    this.connect();
  }

  setState(s, detail = '') {
    if (this.state === s && !detail) return;
    this.state = s;
    this.onState(s, detail);
  }

  async connect() {
    this.teardown();
    const gen = ++this.generation;
    this.setState(State.Connecting);
    const pc = new RTCPeerConnection({ bundlePolicy: 'max-bundle' });
    this.pc = pc;
    const media = new MediaStream();
    pc.addTransceiver('video', { direction: 'recvonly' });
    pc.addTransceiver('audio', { direction: 'recvonly' });
    pc.ontrack = (ev) => {
      media.addTrack(ev.track);
      if (this.video.srcObject !== media) this.video.srcObject = media;
      this.video.play().catch(() => {});
    };
    pc.onconnectionstatechange = () => {
      if (gen !== this.generation) return;
      const cs = pc.connectionState;
      if (cs === 'connected') {
        this.connectedAt = performance.now();
        this.lastFrame = performance.now();
      } else if (cs === 'failed' || cs === 'closed') {
        this.retry(`connection ${cs}`);
      }
    };
    try {
      const offer = await pc.createOffer();
      await pc.setLocalDescription(offer);
      await waitGathering(pc, gatherTimeoutMs);
      if (gen !== this.generation) return;
      const res = await fetch(`${camPath(this.cameraId, 'whep')}?stream=${encodeURIComponent(this.stream)}`, {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'Content-Type': 'application/sdp', 'X-CSRF-Token': await csrf(), 'Accept-Language': getLang() },
        body: pc.localDescription.sdp,
      });
      if (gen !== this.generation) {
        if (res.ok) deleteSession(new URL(res.headers.get('Location') || '', location.href).href);
        return;
      }
      if (res.status === 401) {
        this.onUnauthorized();
        this.stop();
        return;
      }
      if (res.status !== 201 && res.status !== 200) {
        let msg = res.statusText;
        try {
          const body = await res.json();
          if (body && body.error) msg = body.error;
        } catch {
          // not JSON: keep the status text
        }
        throw new Error(msg || `HTTP ${res.status}`);
      }
      const loc = res.headers.get('Location');
      this.location = loc ? new URL(loc, location.href).href : '';
      this.served = res.headers.get('X-Vigil-Stream') || this.stream;
      this.onServed(this.served);
      const answer = await res.text();
      await pc.setRemoteDescription({ type: 'answer', sdp: answer });
      this.watchFrames(gen);
    } catch (err) {
      if (gen !== this.generation) return;
      // fetch rejects with a TypeError when the server cannot be reached: say
      // that in the user's language, not the browser's "Failed to fetch"
      this.retry(err instanceof TypeError ? t('error.network') : (err && err.message ? err.message : String(err)));
    }
  }

  // watchFrames marks the player playing on the first frame and reconnects
  // when frames stop (camera gone, path broken without ICE noticing yet).
  watchFrames(gen) {
    const v = this.video;
    const onFrame = () => {
      if (gen !== this.generation) return;
      this.lastFrame = performance.now();
      if (this.state !== State.Playing) this.setState(State.Playing);
      if ('requestVideoFrameCallback' in v) v.requestVideoFrameCallback(onFrame);
    };
    if ('requestVideoFrameCallback' in v) v.requestVideoFrameCallback(onFrame);
    else v.addEventListener('playing', onFrame, { once: true });
    this.lastFrame = performance.now();
    this.watchdog = setInterval(() => {
      if (gen !== this.generation) return;
      const now = performance.now();
      if (this.state === State.Playing && this.connectedAt && now - this.connectedAt > stableMs) this.attempt = 0;
      if (document.hidden) return; // frame callbacks pause in hidden tabs
      if (now - this.lastFrame > stallMs) this.retry(t('wall.noVideo'));
    }, 2000);
  }

  retry(reason) {
    if (!this.running) return;
    this.teardown();
    const base = Math.min(backoffMaxMs, backoffMinMs * 2 ** this.attempt);
    const delay = base / 2 + Math.random() * base / 2;
    this.attempt++;
    this.setState(State.Retrying, reason);
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
  }

  teardown() {
    this.generation++;
    clearInterval(this.watchdog);
    this.watchdog = 0;
    this.connectedAt = 0;
    if (this.location) {
      deleteSession(this.location);
      this.location = '';
    }
    if (this.pc) {
      this.pc.ontrack = null;
      this.pc.onconnectionstatechange = null;
      this.pc.close();
      this.pc = null;
    }
    if (this.video.srcObject) {
      for (const tr of this.video.srcObject.getTracks()) tr.stop();
      this.video.srcObject = null;
    }
  }
}

function waitGathering(pc, timeoutMs) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener('icegatheringstatechange', check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === 'complete') done();
    }
    pc.addEventListener('icegatheringstatechange', check);
  });
}

// deleteSession ends a WHEP session; keepalive lets it finish while the page unloads.
async function deleteSession(href) {
  if (!href) return;
  try {
    await fetch(href, { method: 'DELETE', credentials: 'same-origin', keepalive: true, headers: { 'X-CSRF-Token': await csrf() } });
  } catch {
    // the server ends idle sessions itself
  }
}
