package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/registry"
)

// loadConfigFlag parses --config FILE out of args and loads the configuration
// (defaults, file, environment, validation); it returns the other arguments.
func loadConfigFlag(name string, args []string) (config.Config, []string, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "", "YAML configuration `file` (default: built-in defaults)")
	// user subcommands carry their own flags: take --config wherever it is
	var rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--config" || a == "-config":
			if i+1 >= len(args) {
				return config.Config{}, nil, fmt.Errorf("--config needs a file")
			}
			*path = args[i+1]
			i++
		case strings.HasPrefix(a, "--config=") || strings.HasPrefix(a, "-config="):
			*path = a[strings.Index(a, "=")+1:]
		default:
			rest = append(rest, a)
		}
	}
	cfg, err := config.Load(*path, os.Environ())
	return cfg, rest, err
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer, demo bool) error {
	name := "serve"
	if demo {
		name = "demo"
	}
	cfg, rest, err := loadConfigFlag(name, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return fmt.Errorf("%s: unexpected arguments %q (only --config FILE)", name, rest)
	}
	log := app.NewLogger(cfg, stderr)
	opts := app.Options{Log: log, AdminPassword: os.Getenv("VIGIL_ADMIN_PASSWORD"), SecretKey: os.Getenv("VIGIL_SECRET_KEY")}

	var sim *camsim.Server
	if demo {
		if !hasFlag(args, "config") {
			demoDefaults(&cfg)
		}
		demoGB28181(&cfg)
		if opts.AdminPassword == "" {
			opts.AdminPassword = randomPassword()
		}
		// the demo prints its admin login at every start
		opts.ResetAdminPassword = true
		sim, err = camsim.New(camsim.Options{Addr: "127.0.0.1:0", Count: demoCameraCount, Codec: "h264", Audio: true, Log: log.With("part", "camsim")})
		if err != nil {
			return err
		}
		if err := sim.Start(); err != nil {
			return fmt.Errorf("demo cameras: %w", err)
		}
		defer sim.Close()
	}

	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		return err
	}
	defer a.Close()
	if demo {
		if err := registerDemoCameras(ctx, a.Registry, sim); err != nil {
			return err
		}
		if err := registerDemoDevice(ctx, a); err != nil {
			return err
		}
	}
	// say where to open it once it serves (requests before then wait, they
	// are not refused)
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	select {
	case <-a.Ready():
	case err := <-runDone:
		return err
	}
	if demo {
		// the simulated GB/T 28181 device registers once the SIP port
		// serves; it stops with ctx
		if err := startDemoDevice(ctx, a, cfg, log.With("part", "gbsim")); err != nil {
			return fmt.Errorf("demo GB/T 28181 device: %w", err)
		}
		fmt.Fprintf(stdout, "\nVigil demo: %d simulated cameras, recording to %s\n", demoCameraCount, cfg.Storage.Local.Dir)
		udp, _ := a.GB28181Addr()
		fmt.Fprintf(stdout, "  GB/T 28181: simulated device %s with %d channels, registered to SIP %s\n", demoGBDevice, len(demoGBChannels), udp)
		fmt.Fprintf(stdout, "  open   %s\n  login  admin / %s\n\n", a.URL(), opts.AdminPassword)
	} else {
		fmt.Fprintf(stdout, "Vigil serving at %s\n", a.URL())
		if pw := a.GeneratedAdminPassword(); pw != "" {
			fmt.Fprintf(stdout, "First start: created user admin with password %s (shown once; change it with `vigil user passwd admin`)\n", pw)
		}
	}
	return <-runDone
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--"+name || a == "-"+name || strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"=") {
			return true
		}
	}
	return false
}

const demoCameraCount = 12

// demoDefaults keeps the demo's data apart from a real installation's. The
// segment length stays the default: the open segment is reviewable already.
func demoDefaults(cfg *config.Config) {
	base := "./data/demo"
	def := config.Default()
	if cfg.Database.Path == def.Database.Path {
		cfg.Database.Path = filepath.Join(base, "vigil.db")
	}
	if cfg.Storage.Local.Dir == def.Storage.Local.Dir {
		cfg.Storage.Local.Dir = filepath.Join(base, "recordings")
	}
	if cfg.Recording.SpoolDir == def.Recording.SpoolDir {
		cfg.Recording.SpoolDir = filepath.Join(base, "spool")
	}
	if cfg.Recording.RetentionDays == def.Recording.RetentionDays {
		cfg.Recording.RetentionDays = 2
	}
	if cfg.HTTP.Listen == def.HTTP.Listen {
		cfg.HTTP.Listen = "127.0.0.1:8080"
	}
}

// demoCameras places the simulated cameras in the four departments.
var demoCameras = []struct {
	id, name, dept, address string
	lat, lng                float64
	tags                    []string
}{
	{"flood-01", "East River Sluice Gate", "flood-control", "East River Embankment No. 3", 22.941, 113.392, []string{"river", "sluice"}},
	{"flood-02", "North Canal Pump Station", "flood-control", "North Canal Rd 18", 22.952, 113.371, []string{"pump"}},
	{"flood-03", "Riverside Underpass", "flood-control", "Riverside Ave underpass", 22.933, 113.388, []string{"underpass", "waterlogging"}},
	{"police-01", "Station Rd / Market St", "police", "Station Rd & Market St", 22.937, 113.384, []string{"junction"}},
	{"police-02", "Central Square North", "police", "Central Square", 22.939, 113.380, []string{"square"}},
	{"police-03", "Bus Terminal Gate", "police", "Bus Terminal, Gate 2", 22.945, 113.376, []string{"transport"}},
	{"cold-01", "Cold Store A Loading Bay", "cold-storage", "Logistics Park Bldg A", 22.921, 113.402, []string{"loading"}},
	{"cold-02", "Cold Store A Freezer Aisle", "cold-storage", "Logistics Park Bldg A", 22.921, 113.403, []string{"freezer"}},
	{"cold-03", "Cold Store B Gate", "cold-storage", "Logistics Park Bldg B", 22.919, 113.405, []string{"gate"}},
	{"rental-01", "Lane 12 Entrance", "rental-housing", "Xinhe Village Lane 12", 22.958, 113.361, []string{"entrance"}},
	{"rental-02", "Block 7 Stairwell", "rental-housing", "Xinhe Village Block 7", 22.959, 113.362, []string{"stairwell"}},
	{"rental-03", "Block 9 Bicycle Shed", "rental-housing", "Xinhe Village Block 9", 22.960, 113.359, []string{"e-bike"}},
}

// registerDemoCameras registers (or re-points, since the simulator's port
// changes at every start) the demo cameras.
func registerDemoCameras(ctx context.Context, reg *registry.Registry, sim *camsim.Server) error {
	for i, d := range demoCameras {
		c := ingest.Camera{
			ID: d.id, Name: d.name, Department: d.dept,
			Location:  ingest.Location{Lat: d.lat, Lng: d.lng, Address: d.address},
			MainURL:   sim.URL(i+1, false),
			SubURL:    sim.URL(i+1, true),
			Transport: "auto", Record: true, Enabled: true, Tags: d.tags,
		}
		if old, err := reg.Camera(ctx, c.ID); err == nil {
			c.Location = old.Location // where an admin moved it on the map
			if _, _, err := reg.ReplaceCamera(ctx, c); err != nil {
				return fmt.Errorf("demo camera %s: %w", c.ID, err)
			}
			continue
		}
		if _, err := reg.CreateCamera(ctx, c); err != nil {
			return fmt.Errorf("demo camera %s: %w", c.ID, err)
		}
	}
	return nil
}

func randomPassword() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}

func runCamsim(ctx context.Context, args []string, stdout io.Writer) error {
	if gbsim.HasFlag(args) {
		return gbsim.Main(ctx, args, stdout)
	}
	return camsim.Main(ctx, args, stdout)
}

func runReindex(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, rest, err := loadConfigFlag("reindex", args)
	if err != nil {
		return err
	}
	adopt := false
	if len(rest) == 1 && (rest[0] == "--adopt-orphans" || rest[0] == "-adopt-orphans") {
		adopt, rest = true, nil
	}
	if len(rest) > 0 {
		return fmt.Errorf("reindex: unexpected arguments %q (only --config FILE and --adopt-orphans)", rest)
	}
	db, ix, store, err := app.OpenIndexAndStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	n, err := archive.Reindex(ctx, store, ix)
	if err != nil {
		return fmt.Errorf("reindex: %w (after %d segments)", err, n)
	}
	fmt.Fprintf(stdout, "reindexed %d segments in %s\n", n, time.Since(start).Round(time.Millisecond))
	if adopt {
		k, err := ix.AdoptOrphans(ctx)
		if err != nil {
			return fmt.Errorf("reindex: %w", err)
		}
		fmt.Fprintf(stdout, "%d segments of no camera given to the cameras that now have their ids\n", k)
	}
	orphans, err := ix.Orphans(ctx)
	if err != nil {
		return fmt.Errorf("reindex: %w", err)
	}
	if orphans > 0 {
		fmt.Fprintf(stdout, "%d segments belong to no camera (recorded under a camera id when no camera that exists now had it): "+
			"no camera shows them; they stay in the store until retention deletes them. After losing the database, "+
			"register the cameras again and run vigil reindex --adopt-orphans to give them back.\n", orphans)
	}
	return nil
}
