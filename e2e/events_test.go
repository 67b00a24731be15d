package e2e

import (
	"context"
	"sync"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/chromedp"
)

// recordEvents collects, until the test ends, what pick keeps of each event
// ev of the tab (nothing, one value or more); the function it returns is
// what was kept so far.
func recordEvents[E, T any](t *testing.T, ctx context.Context, ev cdp.Event[E], pick func(E) []T) func() []T {
	t.Helper()
	ectx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var out []T
	done := make(chan struct{})
	events := chromedp.Events(ectx, ev)
	go func() {
		defer close(done)
		for e, err := range events {
			if err != nil {
				return
			}
			if kept := pick(e); len(kept) > 0 {
				mu.Lock()
				out = append(out, kept...)
				mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return func() []T {
		mu.Lock()
		defer mu.Unlock()
		return append([]T(nil), out...)
	}
}
