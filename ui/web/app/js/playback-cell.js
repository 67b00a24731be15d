// A playback cell: one camera's <video> on the playback page, loaded a
// 10-minute chunk at a time from GET /playback. The page owns the shared
// clock (play, pause, speed, seek, step) and tells every cell; a cell owns
// its video, its message and the mapping from its video's currentTime to
// wall-clock time.
//
// Each load is a new GET /playback?start=..&duration=.. The clip begins at
// the keyframe at or before start, with its timeline reset to 0: a HEAD of
// the same URL first (answered from the index, without reading video) gives
// that keyframe's wall-clock time in X-Vigil-Start, and wallTime maps the
// video's currentTime from there. (A <video src> cannot read the headers of
// its own response; fetch+MSE could, but would have to pace and evict a
// 10-minute chunk itself.)

import { h, replace } from './dom.js';
import * as api from './api.js';
import { t } from './i18n.js';
import { deptColor, spinner } from './ui.js';
import { sourceBadge } from './source.js';
import { AudioToggle } from './audio.js';

const chunkSeconds = 600;   // each playback request covers this much
const liveEdgeMs = 90 * 1000; // a clip that ends this close to now may have more soon
const liveEdgeRetryMs = 2000; // wait before asking again at the live edge
export const frameStep = 1 / 25;   // step = one frame at 25 fps

export class PlaybackCell {
  // page is what the cell asks of the playback page:
  //   playing, speed, destroyed: the page's clock and life (read each time);
  //   timeline: recordedAt(id, ms) and spansOf(id);
  //   isCurrent(cell): the cell is still on the page (not removed meanwhile);
  //   updateReadout(), loadRecordings().
  constructor(cam, page) {
    this.page = page;
    this.id = cam.id;
    const video = h('video', { playsInline: true, muted: true, preload: 'auto', 'data-camera-id': cam.id });
    const msg = h('div', { class: 'pb-msg', hidden: true });
    // the recording's sound, where the camera has audio (the page sets the codec)
    this.audio = new AudioToggle(video, 'playback');
    this.el = h('div', { class: 'pb-cell', 'data-testid': 'pb-cell', 'data-camera-id': cam.id },
      video, h('div', { class: 'tile-bar' }, h('span', { class: 'tile-name', text: cam.name || cam.id }), sourceBadge(cam), this.audio.el), msg);
    this.el.style.setProperty('--dept', deptColor(cam.department));
    this.video = video;
    this.msg = msg;
    this.base = NaN;  // wall-clock ms of the clip's first frame
    this.t0 = 0;      // media time of that frame
    this.shown = NaN; // media time of the frame a step paused on
    this.loading = false;
    this.seq = 0;     // bumped by every load: an older load's answer is dropped

    video.addEventListener('loadedmetadata', () => {
      this.t0 = video.buffered.length ? video.buffered.start(0) : (video.seekable.length ? video.seekable.start(0) : 0);
      this.loading = false;
      msg.hidden = true;
      video.playbackRate = page.speed;
      if (page.playing) video.play().catch(() => {});
      else page.updateReadout();
    });
    video.addEventListener('timeupdate', () => { if (!page.playing) page.updateReadout(); });
    video.addEventListener('error', () => {
      this.loading = false;
      if (!video.getAttribute('src')) return;
      this.showMsg(t('playback.noRecording'));
    });
    video.addEventListener('ended', () => this.continueAfterEnd());
  }

  // continueAfterEnd goes on with the next chunk, skipping a gap in recording.
  continueAfterEnd() {
    const page = this.page;
    const timeline = page.timeline;
    if (!page.playing || !Number.isFinite(this.base)) return;
    const next = this.wallTime() + 1;
    if (timeline.recordedAt(this.id, next)) {
      this.load(next);
      return;
    }
    const after = timeline.spansOf(this.id).filter((s) => s.start > next).sort((a, b) => a.start - b.start)[0];
    if (after) {
      this.load(after.start);
    } else if (Date.now() - next < liveEdgeMs) {
      // At the live edge the recording is still growing (the open segment is
      // reviewable): fetch the spans again and go on with what was added.
      setTimeout(async () => {
        if (!page.playing || page.destroyed) return;
        await page.loadRecordings();
        if (timeline.recordedAt(this.id, next)) this.load(next);
        else this.showMsg(t('playback.end'));
      }, liveEdgeRetryMs);
    } else {
      this.showMsg(t('playback.end'));
    }
  }

  showMsg(text) {
    this.msg.hidden = false;
    replace(this.msg, h('span', { text }));
  }

  unload() {
    this.video.removeAttribute('src');
    this.video.removeAttribute('data-start');
    this.video.load();
  }

  // load plays the cell from the keyframe at or before ms. base becomes the
  // wall-clock time of the clip's first frame (X-Vigil-Start), so that
  // currentTime t0 is that instant, not the instant asked for.
  async load(ms) {
    const page = this.page;
    const seq = ++this.seq;
    this.shown = NaN;
    this.base = NaN;
    this.t0 = 0;
    if (page.timeline.spansOf(this.id).length && !page.timeline.recordedAt(this.id, ms)) {
      // Nothing recorded here: say so instead of asking for a 404.
      this.unload();
      this.showMsg(t('playback.noRecording'));
      return;
    }
    this.unload(); // the old clip's picture and times no longer apply
    this.loading = true;
    this.msg.hidden = false;
    replace(this.msg, spinner());
    const src = api.url(api.camPath(this.id, 'playback'), { start: new Date(ms).toISOString(), duration: `${chunkSeconds}s` });
    let res = null;
    try {
      res = await fetch(src, { method: 'HEAD', credentials: 'same-origin' });
    } catch {
      // network error: the <video> below reports it
    }
    if (page.destroyed || seq !== this.seq || !page.isCurrent(this)) return; // a later seek won
    if (res && res.status === 401) {
      this.loading = false;
      api.signalUnauthorized();
      return;
    }
    if (res && !res.ok) {
      this.loading = false;
      this.unload();
      this.showMsg(res.status === 404 ? t('playback.noRecording') : `${res.status} ${res.statusText}`);
      return;
    }
    const first = res ? parseStart(res.headers.get('X-Vigil-Start')) : NaN;
    this.base = Number.isFinite(first) ? first : ms;
    this.video.dataset.start = new Date(this.base).toISOString();
    this.video.defaultPlaybackRate = page.speed;
    this.video.src = src;
  }

  // wallTime maps the video's position to wall-clock milliseconds.
  wallTime() {
    if (!Number.isFinite(this.base)) return NaN;
    const ct = this.video.paused && Number.isFinite(this.shown) ? this.shown : this.video.currentTime;
    return this.base + Math.max(0, ct - this.t0) * 1000;
  }

  // playUntil plays the paused cell until the frame at media time want is
  // shown, then pauses it there.
  playUntil(want) {
    const page = this.page;
    const v = this.video;
    const seq = this.seq;
    if (v.currentTime >= want - frameStep / 2) return Promise.resolve();
    return new Promise((resolve) => {
      let timer = 0;
      const finish = () => {
        clearTimeout(timer);
        if (this.seq === seq && !page.playing) {
          v.pause();
          v.playbackRate = page.speed;
        }
        resolve();
      };
      const onFrame = (_now, meta) => {
        if (this.seq !== seq || page.playing) return finish();
        // the first frame within half a frame of want: frame times need not
        // fall on want exactly
        if (meta.mediaTime >= want - frameStep / 2) {
          this.shown = meta.mediaTime; // paused a little after the frame: name the frame
          return finish();
        }
        // the last frames at 1×: faster, the screen may skip the one wanted
        if (want - meta.mediaTime < 0.3) v.playbackRate = 1;
        v.requestVideoFrameCallback(onFrame);
      };
      // more than a few frames to go (from a keyframe): faster, still frame by frame on screen
      v.playbackRate = want - v.currentTime > 0.3 ? 2 : 1;
      v.requestVideoFrameCallback(onFrame);
      timer = setTimeout(finish, 5000);
      v.play().catch(finish);
    });
  }

  // close stops the video and lets go of its connection.
  close() {
    this.audio.release();
    this.video.pause();
    this.video.removeAttribute('src');
    this.video.load();
  }
}

// parseStart reads an RFC 3339 time with up to nanoseconds into epoch ms.
function parseStart(v) {
  if (!v) return NaN;
  return Date.parse(v.replace(/(\.\d{3})\d+/, '$1'));
}
