package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// runOwners lists the cameras that have had a camera id and the recordings
// each left (vigil owners CAMERA): how an admin finds a deleted camera's
// footage, which no camera that reuses the id shows. With --keys it lists
// the store keys too, to copy the files (each plays on its own).
func runOwners(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, rest, err := loadConfigFlag("owners", args)
	if err != nil {
		return err
	}
	keys := false
	var camera string
	for _, a := range rest {
		switch {
		case a == "--keys" || a == "-keys":
			keys = true
		case camera == "" && len(a) > 0 && a[0] != '-':
			camera = a
		default:
			return fmt.Errorf("owners: unexpected argument %q (usage: vigil owners CAMERA [--keys] [--config FILE])", truncateArg(a))
		}
	}
	if camera == "" {
		return fmt.Errorf("owners: name a camera id (usage: vigil owners CAMERA [--keys] [--config FILE])")
	}
	db, ix, _, err := app.OpenIndexAndStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	periods, err := ix.Owners(ctx, camera)
	if err != nil {
		return err
	}
	all := time.Unix(0, math.MaxInt64)
	list := func(title, uid string) error {
		segs, err := ix.OwnerSegments(ctx, camera, uid, time.Unix(0, 0), all)
		if err != nil {
			return err
		}
		var bytes int64
		for _, s := range segs {
			bytes += s.Bytes
		}
		fmt.Fprintf(stdout, "%s: %d segments, %d bytes", title, len(segs), bytes)
		if len(segs) > 0 {
			fmt.Fprintf(stdout, ", %s to %s", fmtTime(segs[0].Start), fmtTime(segs[len(segs)-1].End))
		}
		fmt.Fprintln(stdout)
		if keys {
			for _, s := range segs {
				fmt.Fprintf(stdout, "  %s\n", s.Key)
			}
		}
		return nil
	}
	seen := map[string]bool{}
	for _, p := range periods {
		until := "now"
		if !p.Until.IsZero() {
			until = fmtTime(p.Until)
		}
		fmt.Fprintf(stdout, "camera %s incarnation %s: %s, from %s to %s\n", camera, p.UID, p.Department, fmtSince(p.Owner), until)
	}
	for _, p := range periods {
		if seen[p.UID] {
			continue
		}
		seen[p.UID] = true
		state := "deleted"
		if periods[len(periods)-1].UID == p.UID && periods[len(periods)-1].Until.IsZero() {
			state = "current"
		}
		if err := list(fmt.Sprintf("incarnation %s (%s)", p.UID, state), p.UID); err != nil {
			return err
		}
	}
	return list("no camera (orphans)", "")
}

func fmtTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func fmtSince(o archive.Owner) string {
	if o.Since.IsZero() {
		return "the beginning"
	}
	return fmtTime(o.Since)
}

func truncateArg(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
