package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/evidence"
	"github.com/vigil-vms/vigil/gb28181/alarm"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/gb28181/upstream"
	"github.com/vigil-vms/vigil/gb28181/watch"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqldb/dbcopy"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/registry"
)

const dbUsage = `usage:
  vigil db copy --to postgres://USER:PASS@HOST:5432/DB [--config FILE] [--from FILE] [--skip TABLE,…]

Copies this node's SQLite database (database.path, or --from) into an empty
PostgreSQL database, so that the node can grow into a cluster. The target is
first given the schema a node on PostgreSQL uses; then every table is copied
in one transaction (all or nothing) and the row counts are checked. A target
that holds data is refused. Stop the node first: what it writes during the
copy is not copied. The SQLite file is only read.

Afterwards give every node the same key files as this one (vigil.key, which
encrypts the camera passwords, and evidence.key, which signs evidence
packages; both beside the database file), set database.url and
storage.backend: s3, and start the nodes. See "Growing into a cluster" in
the README.
`

// runDB implements "vigil db copy".
func runDB(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 || args[0] != "copy" {
		fmt.Fprint(stdout, dbUsage)
		if len(args) > 0 && (args[0] == "help" || args[0] == "-h" || args[0] == "--help") {
			return nil
		}
		return errors.New("db: copy is the only subcommand")
	}
	cfg, rest, err := loadConfigFlag("db copy", args[1:])
	if err != nil {
		return err
	}
	flags := flag.NewFlagSet("db copy", flag.ContinueOnError)
	flags.SetOutput(io.Discard)
	to := flags.String("to", "", "PostgreSQL URL")
	from := flags.String("from", "", "SQLite database file")
	skip := flags.String("skip", "", "tables not to copy")
	if err := flags.Parse(rest); err != nil {
		fmt.Fprint(stdout, dbUsage)
		return fmt.Errorf("db copy: %w", err)
	}
	if flags.NArg() > 0 {
		return fmt.Errorf("db copy: unexpected arguments %q", flags.Args())
	}
	if *to == "" {
		fmt.Fprint(stdout, dbUsage)
		return errors.New("db copy: --to postgres://… is required")
	}
	path := cmp.Or(*from, cfg.Database.Path)
	// sqldb.Open would create a missing file: a mistyped path must not
	// copy an empty database
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("db copy: no database at %s (database.path; --from names another file)", path)
		}
		return fmt.Errorf("db copy: %w", err)
	}
	src, err := sqldb.Open(ctx, sqldb.Config{Path: path})
	if err != nil {
		return fmt.Errorf("db copy: source: %w", err)
	}
	defer src.Close()
	dst, err := sqldb.Open(ctx, sqldb.Config{URL: *to})
	if err != nil {
		return fmt.Errorf("db copy: %w", err)
	}
	defer dst.Close()
	var skipped []string
	for _, t := range strings.Split(*skip, ",") {
		if t = strings.TrimSpace(t); t != "" {
			skipped = append(skipped, t)
		}
	}
	fmt.Fprintf(stdout, "copying %s into %s\n", path, redactURL(*to))
	rep, err := dbcopy.Copy(ctx, src, dst, dbcopy.Options{
		Migrate: componentMigrations(cfg),
		Skip:    skipped,
		Progress: func(table string, rows int64) {
			fmt.Fprintf(stdout, "  copying %s (%d rows)\n", table, rows)
		},
	})
	if err != nil {
		return fmt.Errorf("db copy: %w", err)
	}
	printCopyReport(stdout, rep)
	dir := filepath.Dir(path)
	fmt.Fprintf(stdout, "\nNow give every node these files, unchanged, beside its database.path:\n  %s\n  %s\n",
		filepath.Join(dir, app.SecretKeyFile), filepath.Join(dir, evidence.KeyFile))
	fmt.Fprintln(stdout, "(a node that lacks them makes new, different keys: then it cannot read the camera passwords and refuses to start)")
	return nil
}

// componentMigrations opens, on the target, every store the server opens
// (see app.New): each migrates its own tables, as at a node's first start.
// Nothing is run; the stores are dropped again. A component that gains a
// table in the database belongs here too.
func componentMigrations(cfg config.Config) []dbcopy.Migrate {
	// The components take database/sql's *sql.DB (db.DB) until they move
	// onto *sqldb.DB (issue 16, CLUSTER-SEAM §1); then each call takes db.
	return []dbcopy.Migrate{
		func(ctx context.Context, db *sqldb.DB) error {
			_, err := registry.Open(ctx, db)
			return err
		},
		func(ctx context.Context, db *sqldb.DB) error {
			_, err := archive.OpenIndex(ctx, db)
			return err
		},
		func(ctx context.Context, db *sqldb.DB) error {
			_, err := availability.New(ctx, db, availability.Options{})
			return err
		},
		func(ctx context.Context, db *sqldb.DB) error {
			_, err := alerts.New(ctx, db, alerts.Options{})
			return err
		},
		// GB/T 28181's stores: their tables are copied whether or not
		// gb28181.enabled, as the SQLite file may hold them
		func(ctx context.Context, db *sqldb.DB) error {
			reg, err := registry.Open(ctx, db)
			if err != nil {
				return err
			}
			devices, err := device.Open(ctx, db, nil)
			if err != nil {
				return err
			}
			if _, err := alarm.Open(ctx, db, alarm.Options{Cameras: reg.Cameras}); err != nil {
				return err
			}
			if _, err := watch.New(ctx, db, watch.Options{Devices: devices, States: &sip.Server{}}); err != nil {
				return err
			}
			_, err = upstream.OpenChannels(ctx, db, cfg.GB28181.Realm)
			return err
		},
	}
}

func printCopyReport(w io.Writer, rep *dbcopy.Report) {
	fmt.Fprintln(w, "\ncopied and counted:")
	width := 0
	for _, t := range rep.Tables {
		width = max(width, len(t.Name))
	}
	for _, t := range rep.Tables {
		var notes []string
		if t.Replaced > 0 {
			notes = append(notes, fmt.Sprintf("replaced the %d rows the schema starts with", t.Replaced))
		}
		if len(t.Dropped) > 0 {
			notes = append(notes, "columns not in PostgreSQL, left out: "+strings.Join(t.Dropped, ", "))
		}
		line := fmt.Sprintf("  %-*s %9d rows", width, t.Name, t.Rows)
		if len(notes) > 0 {
			line += "  (" + strings.Join(notes, "; ") + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "%d rows in %d tables\n", rep.Rows(), len(rep.Tables))
	if len(rep.NotCopied) > 0 {
		fmt.Fprintf(w, "not copied: %s\n", strings.Join(rep.NotCopied, ", "))
	}
}

// redactURL hides the password of a database URL.
func redactURL(u string) string {
	if p, err := url.Parse(u); err == nil {
		return p.Redacted()
	}
	return "the PostgreSQL database"
}
