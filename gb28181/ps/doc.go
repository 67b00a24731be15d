// Package ps reads and writes MPEG program streams (ISO/IEC 13818-1 §2.5) as
// GB/T 28181 devices and platforms send them over RTP, and frames RTP over
// TCP (RFC 4571).
//
// # Demuxing
//
// A Demuxer is fed RTP payloads in order, of any size: packs split across
// RTP packets and several packs in one packet are both normal. Lost tells it
// that packets are missing. It gives access units to OnUnit: H.264 and
// H.265 pictures in Annex-B form with a keyframe flag (IDR, or H.265 IRAP),
// AAC (ADTS, as carried) and G.711 A-law/µ-law audio, each with a 90 kHz
// PTS and DTS.
//
// It reads pack headers (MPEG-2, and MPEG-1 as ffmpeg's "mpeg" muxer writes,
// with stuffing), system headers, the program stream map (stream types 0x1B
// H.264, 0x24 H.265, 0x0F AAC, 0x90 G.711A, 0x91 G.711U; descriptors
// skipped; a wrong CRC_32 accepted and counted, as many cameras get it
// wrong) and PES packets in streams 0xE0–0xEF and 0xC0–0xDF. Private
// streams, padding and other stream ids are skipped.
//
// Real devices and muxers differ, and these are handled:
//   - a PSM before every keyframe (Hikvision) or none at all: without one, the
//     codec is inferred from the stream id and the payload (H.264 vs H.265
//     from the parameter set and IDR NAL headers, AAC from the ADTS sync word,
//     otherwise G.711A, GB/T 28181's default audio) and a *NoPSMError says so
//     once per stream;
//   - no system header; stuffing in pack and PES headers; a bare pack start
//     code (00 00 01 BA directly followed by the next start code, seen from
//     Hikvision H.265 cameras);
//   - video PES_packet_length 0 (the packet runs to the next start code);
//   - a picture spread over several PES packets (pictures over 64 KiB must
//     be), and PES packets that end one picture and start the next, as
//     ffmpeg writes them. Video units are cut where the elementary stream
//     starts a new access unit (H.264 7.4.1.2.3, H.265 7.4.2.4.4), and take
//     the PTS of the PES packet in which they start (or, when that packet
//     had none, of the one in which their first slice starts, for cameras that send
//     parameter sets in a PES packet of their own without a PTS); a unit
//     without any gets the previous PTS plus the last step;
//   - lost packets and garbage: the unit being cut is dropped, parsing
//     resumes at the next pack header (00 00 01 BA) with a *ResyncError, and
//     the next unit of each stream carries Discontinuity.
//
// Memory is bounded: an access unit over MaxUnitSize (8 MiB by default) is
// dropped with a *UnitTooLargeError, and header bytes held between writes
// are at most one PSM (64 KiB). Buffers are reused: in a steady stream the
// demuxer does not allocate.
//
// A picture is handed on when the first bytes of the next one arrive, or
// when Flush is called (on the RTP marker bit, for the lowest latency).
//
// # Muxing
//
// A Muxer writes units the way GB/T 28181 cameras do: a pack header before
// every unit, a system header and PSM before every keyframe (and before the
// first unit), video PES packets with PTS (and DTS when it differs) split at
// 64 KiB, audio in one PES packet per unit. Payloads cuts the result into
// RTP payloads.
//
// # Why our own
//
// Go has PS code, but none that Vigil can keep (checked 2026-11-29):
// yapingcat/gomedia's go-mpeg2 PSDemuxer is part of a large multi-format
// module with open and closed reports of slice-bound panics on stream input
// (issues #39, #147) and no fuzz target; Monibuca's m7s.live/plugin/ps
// mpegps is tied to the Monibuca engine's buffers and plugin system;
// im-pingo/liveforge's pkg/ps appeared weeks ago inside a media server.
// GStreamer and ffmpeg read PS, but are C. The format is small; this
// package is about 1,200 lines with comments, fuzzed, and table-tested against streams from
// ffmpeg's vob muxer and GStreamer's mpegpsmux.
//
// Independent producers and consumers seen to agree (testdata/README.md):
// ffmpeg 5.1 "vob" writes H.264 and H.265 but no PSM, no AAC and no G.711;
// GStreamer 1.22 mpegpsmux writes H.264 and AAC with a PSM, not H.265 or
// G.711; ffmpeg's PS demuxer reads this muxer's H.264, H.265 and AAC but
// takes stream type 0x90 (G.711A) for MP2, and GStreamer's mpegpsdemux finds
// no stream in it — G.711 in PS is a GB/T 28181 extension.
package ps
