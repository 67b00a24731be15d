package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/evidence"
)

const verifyUsage = "usage: vigil verify PACKAGE.zip [--pubkey HEX|FILE]  or  vigil verify --key [--config FILE]"

// runVerify checks an evidence package offline (vigil verify PACKAGE.zip):
// the signature of its manifest and the SHA-256 of every file. Without a
// pinned key (--pubkey, the hex key or a file holding it, as vigil verify
// --key prints it) it checks that the package is consistent and prints the
// id of the key that signed it, to compare with the server's. vigil verify
// --key prints the server's public key, read from its evidence key file.
func runVerify(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, rest, err := loadConfigFlag("verify", args)
	if err != nil {
		return err
	}
	printKey := false
	var pkg, pin string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		switch {
		case a == "--key" || a == "-key":
			printKey = true
		case a == "--pubkey" || a == "-pubkey":
			if i+1 >= len(rest) {
				return fmt.Errorf("verify: --pubkey needs a key in hex or a file holding it (%s)", verifyUsage)
			}
			pin = rest[i+1]
			i++
		case strings.HasPrefix(a, "--pubkey=") || strings.HasPrefix(a, "-pubkey="):
			pin = a[strings.Index(a, "=")+1:]
		case pkg == "" && len(a) > 0 && a[0] != '-':
			pkg = a
		default:
			return fmt.Errorf("verify: unexpected argument %q (%s)", truncateArg(a), verifyUsage)
		}
	}
	if printKey {
		if pkg != "" || pin != "" {
			return fmt.Errorf("verify: --key prints the server's key and takes no package (%s)", verifyUsage)
		}
		path := filepath.Join(filepath.Dir(cfg.Database.Path), evidence.KeyFile)
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("verify: no evidence key at %s: the server creates it at its first start (check --config)", path)
		}
		key, _, err := evidence.LoadKey(path)
		if err != nil {
			return err
		}
		pub := key.Public()
		fmt.Fprintf(stdout, "%s\nEd25519 key id %s (%s)\n", evidence.FormatPublic(pub), evidence.KeyID(pub), path)
		return nil
	}
	if pkg == "" {
		return fmt.Errorf("verify: name a package (%s)", verifyUsage)
	}
	var pinned ed25519.PublicKey
	if pin != "" {
		if pinned, err = readPin(pin); err != nil {
			return fmt.Errorf("verify: --pubkey: %w", err)
		}
	}
	f, err := os.Open(pkg)
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("verify: %w", err)
	}
	m, err := evidence.Verify(f, st.Size(), pinned)
	if err != nil {
		return fmt.Errorf("%s: NOT VALID: %w", pkg, err)
	}
	fmt.Fprintf(stdout, "%s: valid: the signature and every file's SHA-256 hold\n", pkg)
	fmt.Fprintf(stdout, "signed by Ed25519 key id %s (%s)", m.KeyID, m.PublicKey)
	if pinned != nil {
		fmt.Fprintln(stdout, ", the key pinned")
	} else {
		fmt.Fprintln(stdout, "\ncompare it with the server's: vigil verify --key, or GET /api/v1/evidence/key (or pin it with --pubkey)")
	}
	fmt.Fprintf(stdout, "exported by %s at %s, range %s to %s\n", m.Exporter, fmtTime(m.Exported),
		m.Start.UTC().Format(time.RFC3339Nano), m.End.UTC().Format(time.RFC3339Nano))
	if m.Incident != nil {
		fmt.Fprintf(stdout, "incident %d", *m.Incident)
		if m.Omitted > 0 {
			fmt.Fprintf(stdout, " (%d of its cameras left out)", m.Omitted)
		}
		fmt.Fprintln(stdout)
	}
	for _, c := range m.Cameras {
		file := c.File
		if file == "" {
			file = "nothing recorded"
		}
		fmt.Fprintf(stdout, "  %s (%s, %s): %s, %.3f s recorded, %d gaps\n", c.ID, c.Name, c.Department, file, c.RecordedSeconds, len(c.Gaps))
	}
	for _, fl := range m.Files {
		fmt.Fprintf(stdout, "  %s  %d bytes  sha256 %s\n", fl.Name, fl.Size, fl.SHA256)
	}
	return nil
}

// readPin reads a pinned public key: hex (or base64) on the command line,
// or a file holding it.
func readPin(v string) (ed25519.PublicKey, error) {
	if pub, err := evidence.ParsePublic(v); err == nil {
		return pub, nil
	}
	b, err := os.ReadFile(v)
	if err != nil {
		return nil, fmt.Errorf("%q is neither a public key in hex nor a readable file: %w", truncateArg(v), err)
	}
	return evidence.ParsePublic(string(b))
}
