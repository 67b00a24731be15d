// Package replay serves an upper GB/T 28181 platform's record search and
// recorded video (issue 15, item 4) from Vigil's recordings: RecordInfo
// answers a RecordInfo query, a Session sends an INVITE s=Playback or
// s=Download as MPEG-PS over RTP, and ParseControl reads the MANSRTSP
// bodies of the INFOs that steer a playback. The SIP dialogs, the media
// transport and the audit are the caller's (package gb28181/upstream).
//
// Use from the upstream package:
//
//	p := replay.New(rv) // rv: *review.Review (the recorder's read side)
//
//	// RecordInfo query for channel ch (camera cam), times from the query
//	// converted from the platform's wall clock to instants first:
//	items, err := p.RecordInfo(ctx, cam, start, end)
//	for i := range items { items[i].DeviceID = ch }
//	pages, err := enc.RecordInfoPages(sn, ch, name, items, maxItems, maxBytes)
//
//	// INVITE s=Playback (or s=Download) with t=START END, y=SSRC:
//	start, end, err := replay.ParseTimeRange(tValue) // apierr.ErrInvalid: 400
//	s, err := p.NewSession(ctx, replay.SessionConfig{
//		Camera: cam, Start: start, End: end,
//		SSRC: ssrc, // the y= digits as a number (uint32)
//		Download: isDownload, DownloadSpeed: speed, // a=downloadspeed:N (0: unpaced)
//		Write: func(pkt []byte) error { return conn.send(pkt) }, // UDP, or RFC 4571 framed for TCP
//		OnEnd: func() { sendMediaStatus121(); bye() },
//	})
//	// err before answering: apierr.ErrNotFound (nothing recorded: 404),
//	// apierr.ErrInvalid (bad range: 400), apierr.ErrUnsupported (no
//	// H.264/H.265 in the recording: 488). s.Start() is where it begins.
//	go func() { err := s.Run(dialogCtx); ... }() // after the ACK
//
//	// INFO with Content-Type Application/MANSRTSP:
//	c, err := replay.ParseControl(body) // *ControlError: answer 400
//	err = s.Apply(c)                    // PLAY/PAUSE/TEARDOWN; answer 200 with CSeq c.CSeq
//
//	// BYE from the platform: s.Close() (or cancel dialogCtx).
//
// What is sent: PS packs (gb28181/ps.Muxer: pack header per frame, system
// header and PSM before each keyframe, video 0xE0 Annex-B with SPS/PPS (VPS
// for H.265) before every keyframe, AAC as ADTS or recorded G.711 as A-law
// in 0xC0), cut into RTP packets of at most MaxPayload bytes (payload type
// 96, the SSRC given, marker on the last packet of a frame), timestamps
// 90 kHz. The stream starts at the keyframe at or before the start asked for
// (Session.Start). Gaps in recording are skipped and the timestamps stay
// continuous across them and across seeks (players pace by timestamp and
// stall on a jump; ffprobe then reports a duration equal to the recorded
// time sent); Stats().Position gives the recorded wall-clock time of the
// last frame sent. A Playback is paced in real time at the current scale
// (Play(scale), 0.25 to 8; above 2, keyframes only and no audio; coming
// back to 2 or less, video resumes at the next keyframe), Pause stops it
// after the frame being sent, Seek
// (PLAY with Range: npt=SECONDS-, counted from the range's start) jumps. A
// Download is sent at DownloadSpeed times real time (the offer's
// a=downloadspeed:; use it over UDP), or as fast as Write returns, and no
// faster than MaxBytesPerSecond when set.
package replay
