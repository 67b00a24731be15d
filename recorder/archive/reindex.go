package archive

import (
	"context"
	"errors"
	"fmt"
)

// Reindex rebuilds the index rows of every segment in the store by parsing
// each object (init section and fragments). Objects that are not segments
// are skipped; a segment that cannot be parsed is reported in the returned
// error after the others are indexed. It returns the number of rows written.
func Reindex(ctx context.Context, store Store, ix *Index) (n int, err error) {
	var errs []error
	err = store.List(ctx, "", func(o ObjectInfo) error {
		if !IsSegmentKey(o.Key) {
			return nil
		}
		seg, err := scanObject(ctx, store, o.Key)
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		if err := ix.Add(ctx, seg); err != nil {
			return err
		}
		n++
		return nil
	})
	if err != nil {
		return n, fmt.Errorf("reindex: %w", err)
	}
	if len(errs) > 0 {
		return n, fmt.Errorf("reindex: %d segments not indexed: %w", len(errs), errors.Join(errs...))
	}
	return n, nil
}

// scanObject reads and parses one stored segment.
func scanObject(ctx context.Context, store Store, key string) (Segment, error) {
	rc, err := store.Get(ctx, key, 0, -1)
	if err != nil {
		return Segment{}, err
	}
	defer rc.Close()
	sc, err := ScanSegment(rc)
	if err != nil {
		return Segment{}, fmt.Errorf("segment %s: %w", key, err)
	}
	if len(sc.Fragments) == 0 {
		return Segment{}, fmt.Errorf("segment %s: no fragment", key)
	}
	return SegmentRow(key, sc)
}
