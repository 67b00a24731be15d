package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/app/metrics"
	"github.com/vigil-vms/vigil/health"
)

// buildOps builds the health monitor and the alerts over the parts already
// built (the database, the store, the recorder, the registry, the dispatcher).
func (a *App) buildOps(ctx context.Context) error {
	a.Health = health.New(health.Options{Log: a.log.With("part", "health")})
	a.Health.AddProbe("database", health.Database(a.db))
	a.Health.AddProbe(alerts.HealthStorage, health.Store(storeChecker(a.Store, a.cfg.Storage.Local.Dir), a.storeName()))
	a.Health.AddProbe(alerts.HealthSpool, health.Spool(health.SpoolOptions{
		Dir:      a.cfg.Recording.SpoolDir,
		MaxBytes: int64(a.cfg.Recording.SpoolMaxBytes),
		Used:     func() int64 { return a.Recorder.Status().SpoolBytes },
	}))
	a.Health.AddSource(health.Cameras(a.Registry.Cameras, a.Cameras))

	var err error
	if a.Alerts, err = alerts.New(ctx, a.db, alerts.Options{
		Webhooks: a.cfg.Alerts.AlertWebhooks(),
		RunsHere: a.once("alerts"),
		Node:     a.nodeName(),
		Log:      a.log.With("part", "alerts"),
	}); err != nil {
		return err
	}
	a.metrics.Registry().MustRegister(metrics.AlertsCollector(a.Alerts.Stats))
	return nil
}

// runOps runs the health checks, the alert senders and the camera watch
// until ctx ends.
func (a *App) runOps(ctx context.Context) error {
	a.Health.OnChange(a.Alerts.FollowHealth(ctx))
	done := make(chan struct{}, 2)
	go func() { a.Health.Run(ctx); done <- struct{}{} }()
	go func() { a.Alerts.Run(ctx); done <- struct{}{} }()
	err := a.Alerts.WatchCameras(ctx, alerts.CameraWatchOptions{
		Cameras:      a.Registry.Cameras,
		Statuses:     a.Cameras,
		OfflineAfter: a.cfg.Alerts.OfflineAfter.D(),
	})
	<-done
	<-done
	return err
}

func (a *App) storeName() string {
	if a.cfg.Storage.Backend == "s3" {
		return fmt.Sprintf("the S3 bucket %q on %s", a.cfg.Storage.S3.Bucket, a.cfg.Storage.S3.Endpoint)
	}
	return "the recordings directory " + a.cfg.Storage.Local.Dir
}

// storeChecker is the store's own check (the S3 store: reachable, credentials
// accepted, bucket present), or for a directory: it can be written.
func storeChecker(store any, dir string) health.Checker {
	if c, ok := store.(health.Checker); ok {
		return c
	}
	return dirChecker(dir)
}

type dirChecker string

func (d dirChecker) Check(context.Context) error {
	f, err := os.CreateTemp(string(d), ".health-*")
	if err != nil {
		return fmt.Errorf("the recordings directory %s cannot be written: %w", string(d), err)
	}
	name := f.Name()
	f.Close()
	if err := os.Remove(name); err != nil {
		return fmt.Errorf("the recordings directory %s: %w", filepath.Dir(name), err)
	}
	return nil
}
