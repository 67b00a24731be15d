// thumbs.js: timeline thumbnails, decoded in the browser. The server sends
// the recorded keyframe at or before a moment as a tiny fMP4 (GET
// /api/v1/cameras/{id}/thumbnail?t=: an init section and one fragment with
// that one frame, cut from the stored segment without decoding anything);
// this module decodes it into a small canvas — with WebCodecs where the page
// is a secure context (https, or 127.0.0.1), else with a hidden <video>.
//
// Requests run at most maxConcurrent at a time. A pointer sweeping over the
// timeline asks for many: the newest is served first and the oldest queued
// ones are dropped beyond maxQueued. The strip of a zoomed-in timeline asks
// with a tag and waits behind the hover's requests; a new strip cancels the
// old one's. Decoded thumbnails are kept (cacheSize of them, least recently
// used dropped) by camera and keyframe time, and each requested second is
// remembered with the keyframe it gave, so that hovering again costs
// nothing; the HTTP cache keeps the bytes as well (Cache-Control: private).

import * as api from './api.js';

export const thumbWidth = 160;
const maxConcurrent = 2;
const maxQueued = 6;
const cacheSize = 300;

export class Thumbnails {
  constructor() {
    this.frames = new Map();  // "camera|keyframe ms" → canvas (LRU order)
    this.moments = new Map(); // "camera|second" → keyframe ms, or null (nothing recorded)
    this.urgent = [];         // hover requests, newest last
    this.background = [];     // strip requests, oldest first
    this.pending = new Map();   // "camera|second" → the promise of a request queued or running
    this.active = 0;
    this.stats = { requests: 0, bytes: 0, decoded: 0, cached: 0 };
  }

  // get resolves to { canvas, time } (time: the keyframe's wall-clock ms) or
  // null when nothing was recorded there, the codec cannot be decoded here,
  // or the request was dropped. tag: a strip's requests (see cancel).
  get(camera, ms, tag = '') {
    const second = Math.floor(ms / 1000) * 1000;
    const mkey = `${camera}|${second}`;
    if (this.moments.has(mkey)) {
      const kf = this.moments.get(mkey);
      if (kf === null) return Promise.resolve(null);
      const canvas = this.hit(`${camera}|${kf}`);
      if (canvas) {
        this.stats.cached++;
        return Promise.resolve({ canvas, time: kf });
      }
    }
    // the pointer moving within one second asks once
    if (this.pending.has(mkey)) return this.pending.get(mkey);
    const p = new Promise((resolve) => {
      const req = { camera, second, mkey, tag, resolve };
      if (tag) {
        this.background.push(req);
      } else {
        this.urgent.push(req);
        while (this.urgent.length > maxQueued) this.urgent.shift().resolve(null);
      }
      this.pump();
    });
    this.pending.set(mkey, p);
    p.finally(() => this.pending.delete(mkey));
    return p;
  }

  // cancel drops the queued requests made with tag (they resolve to null).
  cancel(tag) {
    this.background = this.background.filter((r) => {
      if (r.tag !== tag) return true;
      r.resolve(null);
      return false;
    });
  }

  hit(key) {
    const c = this.frames.get(key);
    if (c) {
      this.frames.delete(key);
      this.frames.set(key, c);
    }
    return c || null;
  }

  pump() {
    while (this.active < maxConcurrent) {
      const req = this.urgent.pop() || this.background.shift();
      if (!req) return;
      this.active++;
      this.fetchOne(req).then(req.resolve, () => req.resolve(null)).finally(() => {
        this.active--;
        this.pump();
      });
    }
  }

  async fetchOne(req) {
    const src = api.url(api.camPath(req.camera, 'thumbnail'), { t: new Date(req.second).toISOString() });
    this.stats.requests++;
    const res = await fetch(src, { credentials: 'same-origin' });
    if (res.status === 401) {
      api.signalUnauthorized();
      return null;
    }
    if (res.status === 404) {
      // nothing recorded there (near now: not yet, perhaps)
      if (Date.now() - req.second > 120 * 1000) this.moments.set(req.mkey, null);
      return null;
    }
    if (!res.ok) return null;
    const time = parseTime(res.headers.get('X-Vigil-Start'));
    const buf = await res.arrayBuffer();
    this.stats.bytes += buf.byteLength;
    if (!Number.isFinite(time)) return null;
    this.moments.set(req.mkey, time);
    const key = `${req.camera}|${time}`;
    let canvas = this.hit(key);
    if (!canvas) {
      canvas = await decode(buf);
      if (!canvas) return null;
      this.stats.decoded++;
      this.frames.set(key, canvas);
      while (this.frames.size > cacheSize) this.frames.delete(this.frames.keys().next().value);
      if (this.moments.size > cacheSize * 8) this.moments.clear();
    }
    return { canvas, time };
  }
}

// drawInto copies a thumbnail into a canvas of the page, sized like it.
export function drawInto(target, canvas) {
  target.width = canvas.width;
  target.height = canvas.height;
  target.getContext('2d').drawImage(canvas, 0, 0);
}

// decode turns the tiny fMP4 into a canvas thumbWidth wide.
async function decode(buf) {
  if (typeof VideoDecoder === 'function') {
    try {
      const c = await decodeWebCodecs(new Uint8Array(buf));
      if (c) return c;
    } catch {
      // not decodable this way: try the <video> element
    }
  }
  return decodeVideoElement(buf);
}

function canvasFor(w, h) {
  const c = document.createElement('canvas');
  c.width = thumbWidth;
  c.height = Math.max(1, Math.round((thumbWidth * h) / w));
  return c;
}

// codecString is the WebCodecs codec of a sample entry and its decoder
// configuration (ISO/IEC 14496-15 annex E), or '' for another codec.
function codecString(format, cfg) {
  const hex = (v) => v.toString(16).padStart(2, '0');
  if (format === 'avc1' || format === 'avc3') return `avc1.${hex(cfg[1])}${hex(cfg[2])}${hex(cfg[3])}`;
  if ((format !== 'hvc1' && format !== 'hev1') || cfg.length < 13) return '';
  // H.265 (where the browser decodes it): profile, compatibility flags
  // (bit-reversed), tier and level, constraint bytes without trailing zeros
  const space = ['', 'A', 'B', 'C'][cfg[1] >> 6];
  let compat = 0;
  for (let i = 0; i < 32; i++) if (cfg[2 + (i >> 3)] & (0x80 >> (i & 7))) compat |= 1 << i;
  const cons = [...cfg.slice(6, 12)];
  while (cons.length && cons[cons.length - 1] === 0) cons.pop();
  return [`${format}.${space}${cfg[1] & 0x1f}`, (compat >>> 0).toString(16), `${cfg[1] & 0x20 ? 'H' : 'L'}${cfg[12]}`,
    ...cons.map((v) => v.toString(16).toUpperCase())].join('.');
}

// decodeWebCodecs decodes a thumbnail: the avcC (or hvcC) of the init
// section configures a VideoDecoder, the mdat is the one sample.
async function decodeWebCodecs(b) {
  const parts = parseThumb(b);
  const codec = parts ? codecString(parts.format, parts.config) : '';
  if (!codec) return null;
  const cfg = parts.config;
  let decoder = null;
  try {
    const frame = await new Promise((resolve, reject) => {
      decoder = new VideoDecoder({ output: resolve, error: reject });
      decoder.configure({ codec, description: cfg, optimizeForLatency: true });
      decoder.decode(new EncodedVideoChunk({ type: 'key', timestamp: 0, data: parts.sample }));
      decoder.flush().catch(reject);
      setTimeout(() => reject(new Error('decode timed out')), 5000);
    });
    try {
      const c = canvasFor(frame.displayWidth, frame.displayHeight);
      c.getContext('2d').drawImage(frame, 0, 0, c.width, c.height);
      return c;
    } finally {
      frame.close();
    }
  } finally {
    if (decoder && decoder.state !== 'closed') decoder.close();
  }
}

// decodeVideoElement lets a hidden <video> decode the file (where WebCodecs
// is missing: a page served over plain http from another address).
function decodeVideoElement(buf) {
  const url = URL.createObjectURL(new Blob([buf], { type: 'video/mp4' }));
  const v = document.createElement('video');
  v.muted = true;
  v.preload = 'auto';
  return new Promise((resolve) => {
    const done = (c) => {
      clearTimeout(timer);
      v.removeAttribute('src');
      v.load();
      URL.revokeObjectURL(url);
      resolve(c);
    };
    const timer = setTimeout(() => done(null), 5000);
    v.addEventListener('loadeddata', () => {
      if (!v.videoWidth) return done(null);
      const c = canvasFor(v.videoWidth, v.videoHeight);
      c.getContext('2d').drawImage(v, 0, 0, c.width, c.height);
      done(c);
    }, { once: true });
    v.addEventListener('error', () => done(null), { once: true });
    v.src = url;
  });
}

// parseThumb finds, in the thumbnail's boxes, the sample entry's format and
// its decoder configuration (avcC or hvcC) and the one sample (the mdat).
function parseThumb(b) {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const boxes = (from, to) => {
    const out = [];
    for (let p = from; p + 8 <= to;) {
      const size = dv.getUint32(p);
      const type = String.fromCharCode(b[p + 4], b[p + 5], b[p + 6], b[p + 7]);
      if (size < 8 || p + size > to) return out;
      out.push({ type, body: p + 8, end: p + size });
      p += size;
    }
    return out;
  };
  const child = (box, type) => boxes(box.body, box.end).find((x) => x.type === type);
  const top = boxes(0, b.length);
  const moov = top.find((x) => x.type === 'moov');
  const mdat = top.find((x) => x.type === 'mdat');
  if (!moov || !mdat) return null;
  const trak = child(moov, 'trak');
  const stsd = trak && ['mdia', 'minf', 'stbl', 'stsd'].reduce((box, name) => box && child(box, name), trak);
  if (!stsd) return null;
  const [entry] = boxes(stsd.body + 8, stsd.end); // fullbox and entry count
  if (!entry) return null;
  // a visual sample entry's fields take 78 bytes before its child boxes
  const conf = boxes(entry.body + 78, entry.end).find((x) => x.type === 'avcC' || x.type === 'hvcC');
  if (!conf) return null;
  return { format: entry.type, config: b.slice(conf.body, conf.end), sample: b.slice(mdat.body, mdat.end) };
}

// parseTime reads an RFC 3339 time with up to nanoseconds into epoch ms.
function parseTime(v) {
  if (!v) return NaN;
  return Date.parse(v.replace(/(\.\d{3})\d+/, '$1'));
}
