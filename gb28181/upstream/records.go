package upstream

import (
	"context"
	"time"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// Recording is a stretch of a camera's recordings (Service.Recordings).
type Recording struct {
	Start, End time.Time
	Bytes      int64
}

// recordGap is the largest gap between two recordings that RecordInfo
// still reports as one.
const recordGap = time.Second

// answerRecordInfo answers a RecordInfo query for a shared channel with its
// recordings in the asked range (merged where contiguous), paged; a channel
// not shared, or without Service.Recordings, has none.
func (s *Service) answerRecordInfo(ctx context.Context, p *platform, q *manscdp.Query, cs manscdp.Charset) {
	var items []manscdp.RecordItem
	name := ""
	ch, ok, err := s.find(ctx, p, q.DeviceID)
	if err != nil {
		s.Log.Error("gb28181 upstream: record info", "platform", p.cfg.ID, "error", err)
		return
	}
	if ok && s.Recordings != nil && q.StartTime != nil && q.EndTime != nil {
		name = ch.Cam.Name
		// MANSCDP times are wall clocks without a zone: Vigil's own
		start := time.Date(q.StartTime.Year(), q.StartTime.Month(), q.StartTime.Day(), q.StartTime.Hour(), q.StartTime.Minute(), q.StartTime.Second(), 0, time.Local)
		end := time.Date(q.EndTime.Year(), q.EndTime.Month(), q.EndTime.Day(), q.EndTime.Hour(), q.EndTime.Minute(), q.EndTime.Second(), 0, time.Local)
		recs, err := s.Recordings(ctx, ch.Cam.ID, p.cfg.Departments, start, end)
		if err != nil {
			s.Log.Error("gb28181 upstream: record info", "platform", p.cfg.ID, "camera", ch.Cam.ID, "error", err)
			return
		}
		zero := 0
		for _, r := range merge(recs) {
			st, en := manscdp.Time{Time: r.Start.Local()}, manscdp.Time{Time: r.End.Local()}
			items = append(items, manscdp.RecordItem{DeviceID: ch.ID, Name: ch.Cam.Name, StartTime: &st, EndTime: &en,
				Secrecy: &zero, Type: "time", FileSize: r.Bytes})
		}
	}
	maxBytes := 0
	if s.transport(p) == "UDP" {
		maxBytes = s.maxUDPBody(p)
	}
	pages, err := manscdp.Encoder{Charset: cs, Fallback: true}.RecordInfoPages(q.SN, q.DeviceID, name, items, 0, maxBytes)
	if err != nil {
		s.Log.Error("gb28181 upstream: record info", "platform", p.cfg.ID, "error", err)
		return
	}
	for _, b := range pages {
		if err := s.message(ctx, p, b); err != nil {
			s.Log.Warn("gb28181 upstream: record info not taken", "platform", p.cfg.ID, "error", err)
			return
		}
	}
}

// merge joins recordings (oldest first) that follow each other within recordGap.
func merge(recs []Recording) []Recording {
	var out []Recording
	for _, r := range recs {
		if n := len(out); n > 0 && !r.Start.After(out[n-1].End.Add(recordGap)) {
			out[n-1].End = maxTime(out[n-1].End, r.End)
			out[n-1].Bytes += r.Bytes
			continue
		}
		out = append(out, r)
	}
	return out
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
