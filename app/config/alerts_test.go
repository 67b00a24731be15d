package config

import (
	"strings"
	"testing"
	"time"
)

func TestAlertsConfig(t *testing.T) {
	var cfg = Default()
	if cfg.Alerts.OfflineAfter.D() != 30*time.Second {
		t.Fatalf("default offlineAfter %s, want 30s", cfg.Alerts.OfflineAfter.D())
	}
	y := `alerts:
  offlineAfter: 45s
  webhooks:
    - url: https://ops.example.org/hook
      events: [camera.offline, storage.failing]
    - url: http://10.0.0.9:8000/x
`
	if err := Parse([]byte(y), &cfg); err != nil {
		t.Fatal(err)
	}
	env := []string{"VIGIL_ALERTS_WEBHOOKS_0_SECRET=s3cret", "VIGIL_ALERTS_WEBHOOKS_1_URL=https://other.example.org/"}
	if err := ApplyEnv(&cfg, env); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	w := cfg.Alerts.AlertWebhooks()
	if cfg.Alerts.OfflineAfter.D() != 45*time.Second || len(w) != 2 || w[0].Secret != "s3cret" ||
		w[1].URL != "https://other.example.org/" || len(w[0].Events) != 2 || len(w[1].Events) != 0 {
		t.Fatalf("alerts: %+v", cfg.Alerts)
	}
	// a secret for a webhook that is not configured is a misspelling
	if err := ApplyEnv(&cfg, []string{"VIGIL_ALERTS_WEBHOOKS_2_SECRET=x"}); err == nil || !strings.Contains(err.Error(), "VIGIL_ALERTS_WEBHOOKS_2_SECRET") {
		t.Fatalf("unknown webhook index: %v", err)
	}
	// the example names every key with its default
	ex, err := Load("../../configs/vigil.yaml", nil)
	if err != nil || ex.Alerts.OfflineAfter != Default().Alerts.OfflineAfter || len(ex.Alerts.Webhooks) != 0 {
		t.Fatalf("configs/vigil.yaml alerts: %+v %v", ex.Alerts, err)
	}
}
