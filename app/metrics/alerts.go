package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-vms/vigil/alerts"
)

var (
	alertsQueued    = prometheus.NewDesc("vigil_alert_events_queued_total", "Alert events put in a webhook's queue (an event for two webhooks counts twice).", nil, nil)
	alertsDelivered = prometheus.NewDesc("vigil_alert_events_delivered_total", "Alert events a webhook receiver accepted.", nil, nil)
	alertsFailed    = prometheus.NewDesc("vigil_alert_events_failed_total", "Attempts to deliver an alert event that failed (each is retried).", nil, nil)
	alertsDropped   = prometheus.NewDesc("vigil_alert_events_dropped_total", "Alert events dropped from a full webhook queue.", nil, nil)
	alertsPending   = prometheus.NewDesc("vigil_alert_events_pending", "Alert events waiting for delivery.", nil, nil)
)

// AlertsCollector exports the alerts' figures, read at scrape time; register
// it with Registry().MustRegister.
func AlertsCollector(stats func() alerts.Stats) prometheus.Collector {
	return alertsCollector{stats}
}

type alertsCollector struct{ stats func() alerts.Stats }

func (c alertsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{alertsQueued, alertsDelivered, alertsFailed, alertsDropped, alertsPending} {
		ch <- d
	}
}

func (c alertsCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats()
	ch <- prometheus.MustNewConstMetric(alertsQueued, prometheus.CounterValue, float64(s.Queued))
	ch <- prometheus.MustNewConstMetric(alertsDelivered, prometheus.CounterValue, float64(s.Delivered))
	ch <- prometheus.MustNewConstMetric(alertsFailed, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(alertsDropped, prometheus.CounterValue, float64(s.Dropped))
	ch <- prometheus.MustNewConstMetric(alertsPending, prometheus.GaugeValue, float64(s.Pending))
}
