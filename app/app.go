// Package app is the roof of the house: it builds every part of Vigil from a
// configuration and runs them together: the RTSP ingest, the WebRTC relay, the
// recorder, the camera dispatcher, the availability sampler and the HTTP
// server. With app/config (the configuration) and app/metrics (Prometheus)
// it is the wiring; nothing below imports it. It is what `vigil serve` and
// `vigil demo` run, and what end-to-end tests start in-process:
//
//	a, err := app.New(ctx, cfg, app.Options{Log: log})
//	defer a.Close()
//	go a.Run(ctx)            // returns after a graceful stop when ctx ends
//	url := "http://" + a.Addr()
package app

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/app/metrics"
	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/cluster"
	"github.com/vigil-vms/vigil/cluster/remote"
	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/evidence"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/recorder"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/registry"
	"github.com/vigil-vms/vigil/relay"
	"github.com/vigil-vms/vigil/ui"
	"github.com/vigil-vms/vigil/ui/web"
)

// Options are what the configuration file does not say.
type Options struct {
	// Log receives every part's logs. It defaults to discarding.
	Log *slog.Logger
	// AdminPassword is the password of the admin user created on first start
	// (VIGIL_ADMIN_PASSWORD); empty generates one, available from
	// App.GeneratedAdminPassword.
	AdminPassword string
	// ResetAdminPassword sets the admin password at every start (the demo).
	ResetAdminPassword bool
	// SecretKey is the key that encrypts stored camera passwords
	// (VIGIL_SECRET_KEY, 32 bytes in base64 or hex). Empty reads SecretKeyFile
	// next to the database, created with a new key at first start.
	SecretKey string
	// ShutdownGrace bounds the graceful stop. It defaults to 8 seconds, so that
	// the process exits within 10 s of SIGTERM.
	ShutdownGrace time.Duration
	// SessionTTL, when set, replaces auth.sessionTTL, also below its floor
	// of one minute: tests that wait for a login to idle out. It defaults
	// to the configuration's.
	SessionTTL time.Duration
}

// SecretKeyFile is the name of the key file, in the database's directory.
const SecretKeyFile = "vigil.key"

// App is a built Vigil server.
type App struct {
	cfg  config.Config
	opts Options
	log  *slog.Logger

	db       *sqldb.DB
	remote   *remote.Node // in a cluster: what serves cameras other nodes ingest; nil on one node
	Registry *registry.Registry
	Fleet    *ingest.Fleet
	Cameras  *dispatch.Dispatcher // every camera change goes through it
	Relay    *relay.Relay
	Recorder *recorder.Recorder
	Review   *review.Review
	Index    *archive.Index
	Store    archive.Store
	// Evidence signs evidence packages: evidence.KeyFile next to the
	// database, created at first start.
	Evidence evidence.Key
	avail    *availability.Tracker
	Health   *health.Monitor  // GET /api/v1/health
	Alerts   *alerts.Notifier // events to webhooks
	gb       *gbPart          // GB/T 28181; nil when gb28181.enabled is false
	cluster  *cluster.Cluster // this node in the cluster; nil on a single node (database.url empty)
	up       *upPart          // GB/T 28181 upper platforms; nil without any
	metrics  *metrics.Metrics
	http     *http.Server
	ln       net.Listener

	generatedAdmin string
	ready          chan struct{} // closed by Run once it serves
}

// New builds every part and binds the HTTP listener; it starts nothing else.
// On an error, what was already opened is closed again.
func New(ctx context.Context, cfg config.Config, opts Options) (a *App, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 8 * time.Second
	}
	built := &App{cfg: cfg, opts: opts, log: opts.Log, ready: make(chan struct{})}
	a = built
	defer func() {
		if err != nil {
			// "return nil, err" has cleared a: close what was built through built
			built.Close()
			a = nil
		}
	}()

	if a.db, err = sqldb.Open(ctx, sqldb.Config{Path: cfg.Database.Path, URL: cfg.Database.URL}); err != nil {
		return nil, err
	}
	keyPath := filepath.Join(filepath.Dir(cfg.Database.Path), SecretKeyFile)
	key, created, err := registry.LoadKey(keyPath, opts.SecretKey)
	if err != nil {
		return nil, err
	}
	if created {
		a.log.Warn("created the key that encrypts camera passwords: back it up apart from the database", "file", keyPath)
	}
	evPath := filepath.Join(filepath.Dir(cfg.Database.Path), evidence.KeyFile)
	if a.Evidence, created, err = evidence.LoadKey(evPath); err != nil {
		return nil, err
	}
	if created {
		a.log.Warn("created the key that signs evidence packages: back it up apart from the database", "file", evPath,
			"keyId", evidence.KeyID(a.Evidence.Public()))
	}
	if a.Registry, err = registry.OpenWith(ctx, a.db, registry.Options{SecretKey: key}); err != nil {
		return nil, err
	}
	if a.generatedAdmin, err = a.Registry.EnsureAdmin(ctx, opts.AdminPassword); err != nil {
		return nil, err
	}
	if opts.ResetAdminPassword && opts.AdminPassword != "" {
		if err := a.Registry.SetPassword(ctx, "admin", opts.AdminPassword); err != nil {
			return nil, fmt.Errorf("admin password: %w", err)
		}
	}
	if a.Index, err = archive.OpenIndex(ctx, a.db); err != nil {
		return nil, err
	}
	if a.Store, err = OpenStore(ctx, cfg); err != nil {
		return nil, err
	}
	if err := a.openCluster(ctx); err != nil {
		return nil, err
	}

	a.Fleet = ingest.NewFleet(ingest.FleetOptions{Log: a.log.With("part", "ingest"), Sources: a.gbSources(),
		SubLinger: cfg.WebRTC.SubLinger.D()})
	if a.Relay, err = relay.New(relay.Options{
		UDPPort:    cfg.WebRTC.UDPPort,
		ListenIP:   listenIP(cfg.HTTP.Listen),
		PublicIPs:  cfg.WebRTC.PublicIPs,
		ICEServers: cfg.WebRTC.RelayICEServers(),
		Log:        a.log.With("part", "relay"),
	}, a.Fleet); err != nil {
		return nil, err
	}
	if a.Recorder, err = recorder.New(recorder.Options{
		Store:             a.Store,
		Index:             a.Index,
		SegmentDuration:   cfg.Recording.Segment.D(),
		SpoolDir:          cfg.Recording.SpoolDir,
		SpoolMaxBytes:     int64(cfg.Recording.SpoolMaxBytes),
		RetentionDays:     cfg.Recording.RetentionDays,
		MaxBytesPerCamera: int64(cfg.Recording.MaxBytesPerCamera),
		// hundreds of cameras connect together at start: spread their uploads
		StaggerSegments: true,
		Holds:           a.Registry.Holds,
		// the recorder's final uploads must end before the whole stop does;
		// what is not uploaded by then stays in the spool for the next start
		ShutdownGrace: opts.ShutdownGrace - time.Second,
		Log:           a.log.With("part", "recorder"),
		// a cluster node stores no segment of a camera that moved meanwhile
		Fence:    a.recorderFence(),
		RunsHere: a.once("retention"),
	}, a.Fleet); err != nil {
		return nil, err
	}
	a.Cameras = dispatch.New(a.Fleet, a.Recorder)
	a.clusterDispatch()
	if a.cluster != nil {
		a.Index.SetFence(a.cluster.FenceIndex)
	}
	a.Review = review.NewReview(a.Store, a.Index, a.Recorder.Pin)
	a.Review.Spool = a.Recorder // the last minute and the segments waiting for upload are reviewable too
	if a.cluster != nil {       // live view and spool of cameras other nodes ingest
		if a.remote, err = a.buildRemote(ctx, a.cluster); err != nil {
			return nil, err
		}
	}
	if a.avail, err = availability.New(ctx, a.db, availability.Options{
		Statuses: a.cameraStatuses(), // in a cluster, the other nodes' cameras too
		Index:    a.Index,
		Spooled:  a.Recorder.Spooled,
		Log:      a.log.With("part", "availability"),
		RunsHere: a.once("availability"),
	}); err != nil {
		return nil, err
	}
	a.metrics = metrics.New(metrics.Sources{Fleet: a.Fleet, Recorder: a.Recorder, Relay: a.Relay, Registry: a.Registry})
	if err := a.buildOps(ctx); err != nil {
		return nil, err
	}

	if err := a.buildGB28181(ctx, key); err != nil {
		return nil, err
	}
	if err := a.buildUpstream(ctx); err != nil {
		return nil, err
	}

	srv, err := ui.New(ui.Deps{
		GB28181:  a.withUpstream(a.gbDeps()),
		Registry: a.Registry,
		Cameras:  a.Cameras,
		Probe:    ingest.Probe,
		Live:     a.liveFor(a.remote),
		Review:   a.Review,
		Evidence: a.Evidence,
		Availability: func(ctx context.Context, from, to time.Time) (availability.Report, error) {
			cams, err := a.Registry.Cameras(ctx)
			if err != nil {
				return availability.Report{}, err
			}
			return a.avail.Report(ctx, cams, from, to)
		},
		Events:  a.avail.Events,
		Health:  a.Health,
		Alerts:  a.Alerts,
		Metrics: a.metrics.Handler(),
		WebApp:  web.FS,
		Log:     a.log.With("part", "http"),
		Cluster: a.clusterDeps(),
	}, ui.Options{
		SessionTTL:     cmp.Or(opts.SessionTTL, cfg.Auth.SessionTTL.D()),
		SessionMaxAge:  cfg.Auth.SessionMaxAge.D(),
		Secure:         cfg.HTTP.TLS.Cert != "",
		MetricsPublic:  cfg.Metrics.Public,
		TrustedProxies: cfg.HTTP.Proxies(),
		MapTiles:       cfg.UI.MapTiles,
	})
	if err != nil {
		return nil, err
	}
	a.http = ui.NewHTTPServer(cfg.HTTP.Listen, a.metrics.Instrument(a.remote.Handler(srv.Handler())))
	a.http.ErrorLog = slog.NewLogLogger(a.log.Handler(), slog.LevelWarn)
	if cfg.HTTP.TLS.Cert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTP.TLS.Cert, cfg.HTTP.TLS.Key)
		if err != nil {
			return nil, fmt.Errorf("config: http.tls: %w", err)
		}
		a.http.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	if a.ln, err = net.Listen("tcp", cfg.HTTP.Listen); err != nil {
		return nil, fmt.Errorf("http.listen %s: %w", cfg.HTTP.Listen, err)
	}
	a.ln = ui.LimitConnections(a.ln) // HTTP clients cannot take the cameras' descriptors

	return a, nil
}

// OpenStore opens the configured recordings store. An S3 server that is
// unreachable at start is not fatal: the recorder spools until it returns.
func OpenStore(ctx context.Context, cfg config.Config) (archive.Store, error) {
	switch cfg.Storage.Backend {
	case "s3":
		s := cfg.Storage.S3
		return archive.NewS3Store(ctx, archive.S3Options{
			Endpoint: s.Endpoint, Bucket: s.Bucket, Region: s.Region,
			AccessKey: s.AccessKey, SecretKey: s.SecretKey, TLS: s.TLS,
		})
	default:
		return archive.NewLocalStore(cfg.Storage.Local.Dir)
	}
}

// listenIP is the address part of the HTTP listen address, used for the
// WebRTC port as well ("" for all interfaces).
func listenIP(listen string) string {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return ""
	}
	return host
}

// Ready is closed once Run serves HTTP with every part ready to answer (the
// relay listens, so a WHEP offer is not refused). The listener is bound from
// New on: a request that comes earlier waits for this moment; it is not
// refused.
func (a *App) Ready() <-chan struct{} { return a.ready }

// Addr is the HTTP address the server listens at ("127.0.0.1:8080").
func (a *App) Addr() string { return a.ln.Addr().String() }

// URL is the web app's URL.
func (a *App) URL() string {
	scheme := "http"
	if a.cfg.HTTP.TLS.Cert != "" {
		scheme = "https"
	}
	host, port, _ := net.SplitHostPort(a.Addr())
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + "://" + net.JoinHostPort(host, port) + "/"
}

// GeneratedAdminPassword is the admin password generated on first start, or
// "" when admin already existed or its password was given.
func (a *App) GeneratedAdminPassword() string { return a.generatedAdmin }

// Run runs every part until ctx ends, then stops them gracefully: no new
// viewers, sessions ended, open segments closed and uploaded, within the
// shutdown grace. It returns the first part's failure, if any.
func (a *App) Run(ctx context.Context) error {
	cams, err := a.Registry.Cameras(ctx)
	if err != nil {
		return err
	}
	a.Cameras.Load(cams)
	// the node in the cluster: it takes its cameras' leases now, and gives
	// them up first at shutdown, so that the others take over at once
	clusterCtx, stopCluster := context.WithCancel(context.WithoutCancel(ctx))
	defer stopCluster()
	clusterDone, clusterErr := a.runCluster(clusterCtx)
	var clusterFailed <-chan struct{} // nil (never) on a single node
	if a.cluster != nil {
		clusterFailed = clusterDone
	}

	// Parts run under their own context, cancelled in order at shutdown: the
	// HTTP server first (no new viewers), then the relay and the recorder (which
	// flushes its open segments), then the ingest.
	partsCtx, stopParts := context.WithCancel(context.WithoutCancel(ctx))
	defer stopParts()
	ingestCtx, stopIngest := context.WithCancel(context.WithoutCancel(ctx))
	defer stopIngest()

	g, gctx := errgroup.WithContext(partsCtx)
	var ingestErr error
	ingestDone := make(chan struct{})
	go func() {
		defer close(ingestDone)
		ingestErr = a.Fleet.Run(ingestCtx)
	}()
	g.Go(func() error { return a.Relay.Run(gctx) })
	g.Go(func() error { return a.Recorder.Run(gctx) })
	g.Go(func() error { return a.avail.Run(gctx) })
	g.Go(func() error { return a.runOps(gctx) })
	// GB/T 28181 (SIP, media, the gateway) stops after the ingest, whose
	// sessions hang up over SIP
	gbCtx, stopGB := context.WithCancel(context.WithoutCancel(ctx))
	defer stopGB()
	var gbErr error
	gbDone := make(chan struct{})
	var gbFailed <-chan struct{} // nil (never) without GB/T 28181
	if a.gb != nil {
		go func() {
			defer close(gbDone)
			gbErr = a.gb.run(gbCtx)
		}()
		gbFailed = gbDone
	} else {
		close(gbDone)
	}
	if a.up != nil {
		g.Go(func() error { return a.up.svc.Serve(gctx, a.up.udp, a.up.tcp) })
	}

	// Serve once the relay listens: a WHEP offer that comes in the first
	// moment (it waits on the bound listener until then) is answered, not
	// refused with 503.
	// On a cluster node, it serves once its first lease round has started
	// the cameras it took: their live views are not refused as unknown.
	serving := false
	select {
	case <-a.Relay.Ready():
		serving = true
	case <-ctx.Done():
	case <-gctx.Done():
	}
	if serving && a.cluster != nil {
		select {
		case <-a.cluster.Started():
		case <-ctx.Done():
			serving = false
		case <-gctx.Done():
			serving = false
		case <-clusterDone:
		}
	}
	if serving {
		g.Go(func() error {
			var err error
			if a.http.TLSConfig != nil {
				err = a.http.ServeTLS(a.ln, "", "")
			} else {
				err = a.http.Serve(a.ln)
			}
			if errors.Is(err, http.ErrServerClosed) {
				return nil
			}
			return fmt.Errorf("http: %w", err)
		})
		close(a.ready)
		a.log.Info("vigil started", "url", a.URL(), "cameras", len(cams), "storage", a.cfg.Storage.Backend)
	}

	// wait for the signal, or for a part to fail
	select {
	case <-ctx.Done():
		a.log.Info("shutting down", "grace", a.opts.ShutdownGrace)
	case <-gctx.Done():
		a.log.Error("a part failed, shutting down")
	case <-gbFailed:
		a.log.Error("GB/T 28181 failed, shutting down", "error", gbErr)
	case <-clusterFailed:
		a.log.Error("the cluster node failed, shutting down", "error", *clusterErr)
	}
	stopCluster()
	<-clusterDone // the leases are released: the other nodes take over now
	deadline := time.Now().Add(a.opts.ShutdownGrace)
	shutCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := a.http.Shutdown(shutCtx); err != nil {
		a.http.Close() // streams still running past the grace: cut them
	}
	stopParts()
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	var runErr error
	select {
	case runErr = <-done:
	case <-shutCtx.Done():
		runErr = errors.New("shutdown: parts still running after the grace period")
	}
	stopIngest()
	<-ingestDone
	stopGB()
	<-gbDone
	if runErr == nil && gbErr != nil && !errors.Is(gbErr, context.Canceled) {
		runErr = fmt.Errorf("gb28181: %w", gbErr)
	}
	if runErr == nil && *clusterErr != nil {
		runErr = *clusterErr
	}
	if runErr == nil && ingestErr != nil && !errors.Is(ingestErr, context.Canceled) {
		runErr = ingestErr
	}
	a.log.Info("stopped")
	return runErr
}

// Close releases what New opened (after Run has returned, or instead of it).
func (a *App) Close() error {
	if a.ln != nil {
		a.ln.Close()
	}
	if a.gb != nil {
		a.gb.close()
	}
	if a.up != nil {
		a.up.close()
	}
	if a.remote != nil {
		a.remote.Close() // ends the pins this node holds on other nodes' spools
	}
	if closer, ok := a.Store.(io.Closer); ok {
		closer.Close()
	}
	if a.db != nil {
		return a.db.Close()
	}
	return nil
}

// NewLogger builds the process logger from the configuration.
func NewLogger(cfg config.Config, w io.Writer) *slog.Logger {
	if w == nil {
		w = os.Stderr
	}
	var level slog.Level
	_ = level.UnmarshalText([]byte(cfg.Log.Level))
	opts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// OpenIndexAndStore opens the database's recordings index and the configured
// store, for offline tools (`vigil reindex`). Close the database when done.
func OpenIndexAndStore(ctx context.Context, cfg config.Config) (*sqldb.DB, *archive.Index, archive.Store, error) {
	db, err := sqldb.Open(ctx, sqldb.Config{Path: cfg.Database.Path, URL: cfg.Database.URL})
	if err != nil {
		return nil, nil, nil, err
	}
	ix, err := archive.OpenIndex(ctx, db)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	store, err := OpenStore(ctx, cfg)
	if err != nil {
		db.Close()
		return nil, nil, nil, err
	}
	return db, ix, store, nil
}
