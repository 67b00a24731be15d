package secretbox

import (
	"bytes"
	"errors"
	"testing"
)

func TestSealOpen(t *testing.T) {
	b, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.Seal("s3cret", []byte("camera a main"))
	if err != nil || !Sealed(s) {
		t.Fatalf("Seal = %q, %v", s, err)
	}
	if p, err := b.Open(s, []byte("camera a main")); err != nil || p != "s3cret" {
		t.Fatalf("Open = %q, %v", p, err)
	}
	// bound to its additional data: another row's value does not open
	if _, err := b.Open(s, []byte("camera b main")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with other data: %v", err)
	}
	other, _ := New(bytes.Repeat([]byte{8}, KeySize))
	if _, err := other.Open(s, []byte("camera a main")); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with other key: %v", err)
	}
	for _, bad := range []string{"plain", Prefix + "!!", Prefix + "AAAA"} {
		if _, err := b.Open(bad, nil); !errors.Is(err, ErrDamaged) {
			t.Errorf("Open(%q) = %v, want ErrDamaged", bad, err)
		}
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("a short key was taken")
	}
}
