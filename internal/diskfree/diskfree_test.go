package diskfree

import (
	"runtime"
	"testing"
)

func TestReserve(t *testing.T) {
	for total, want := range map[uint64]uint64{
		0:          1 << 30,
		10 << 30:   1 << 30,
		100 << 30:  5 << 30,
		2000 << 30: 100 << 30,
	} {
		if got := Reserve(total); got != want {
			t.Errorf("Reserve(%d) = %d, want %d", total, got, want)
		}
	}
}

func TestSpace(t *testing.T) {
	free, total, err := Space(t.TempDir())
	if runtime.GOOS != "linux" {
		if err == nil {
			t.Fatal("Space measured on a system where it is not implemented")
		}
		return
	}
	if err != nil || total == 0 || free > total {
		t.Fatalf("Space: free %d of %d, %v", free, total, err)
	}
	if _, _, err := Space("/does/not/exist"); err == nil {
		t.Fatal("no error for a missing directory")
	}
}
