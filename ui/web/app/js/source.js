// source.js: how a camera's video reaches Vigil, shown where cameras are
// listed. An RTSP camera (pulled) shows nothing; a GB/T 28181 camera (a
// channel of a registered device, pushed to Vigil) a "GB" badge naming its
// device and channel.

import { h } from './dom.js';
import { t } from './i18n.js';

// isGB tells a GB/T 28181 camera.
export function isGB(camera) {
  return camera?.source === 'gb28181';
}

// sourceBadge is the badge of a GB/T 28181 camera, or null.
export function sourceBadge(camera) {
  if (!isGB(camera)) return null;
  const g = camera.gb28181 || {};
  return h('span', { class: 'badge badge-source', 'data-testid': 'source-badge', 'data-source': 'gb28181',
    text: t('source.gb28181'), title: t('source.gb28181Title', { device: g.device || '?', channel: g.channel || '?' }) });
}
