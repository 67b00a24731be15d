// Package alerts tells people about trouble without their looking: every event
// (a camera offline for longer than alerts.offlineAfter, the object store
// failing, the spool filling, …) is a signed JSON POST to each configured
// webhook (contract "Health and alerts").
//
// Events wait in a bounded queue in the database, one per webhook, so that
// they survive a restart and a receiver that is down for hours; each webhook
// has its own sender, so that a dead receiver does not hold back another.
// A sender retries the oldest event with capped exponential backoff and
// jitter, in order, until the receiver answers 2xx. When a webhook's queue is
// full the oldest event is dropped, counted and logged.
//
// In a cluster (PostgreSQL) the queue is shared: every node's senders take
// from it, the head of a webhook's queue locked by the one sending it, so an
// event goes out once and in order; the camera watch runs on one node
// (Options.RunsHere).
//
//	n, err := alerts.New(ctx, db, alerts.Options{Webhooks: hooks})
//	go n.Run(ctx)
//	n.Publish(alerts.Event{Event: alerts.StorageFailing, Message: "…"})
package alerts

import (
	"bytes"
	"context"
	"crypto/hmac"
	crand "crypto/rand"
	"crypto/sha256"
	"database/sql"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/internal/ctxwait"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// The events of the contract.
const (
	CameraOffline      = "camera.offline"      // a camera has been offline for alerts.offlineAfter
	CameraOnline       = "camera.online"       // a camera announced offline is back
	RecordingFailing   = "recording.failing"   // a camera's recording fails
	RecordingRecovered = "recording.recovered" // it records again
	StorageFailing     = "storage.failing"     // the object store does not accept recordings
	StorageRecovered   = "storage.recovered"   // it does again
	SpoolHigh          = "spool.high"          // the spool is nearly full (the store does not keep up)
	DeviceOffline      = "device.offline"      // a GB/T 28181 device stopped its keepalives
	DeviceOnline       = "device.online"       // it is back
	UpstreamFailing    = "upstream.failing"    // registration to an upper platform fails
	UpstreamRecovered  = "upstream.recovered"  // it is registered again
	Alarm              = "alarm"               // a device's own alarm
	// Test is the event of "send test event"; it goes to every webhook
	// whatever its events filter.
	Test = "test"
)

// Events lists the events a webhook may subscribe to (alerts.webhooks[].events).
var Events = []string{
	CameraOffline, CameraOnline, RecordingFailing, RecordingRecovered, StorageFailing, StorageRecovered,
	SpoolHigh, DeviceOffline, DeviceOnline, UpstreamFailing, UpstreamRecovered, Alarm,
}

// Severities.
const (
	Info     = "info"
	Warning  = "warning"
	Critical = "critical"
)

var defaultSeverity = map[string]string{
	CameraOffline: Warning, CameraOnline: Info, RecordingFailing: Critical, RecordingRecovered: Info,
	StorageFailing: Critical, StorageRecovered: Info, SpoolHigh: Warning, DeviceOffline: Warning,
	DeviceOnline: Info, UpstreamFailing: Warning, UpstreamRecovered: Info, Alarm: Critical, Test: Info,
}

// Event is the JSON body of a webhook POST.
type Event struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Event      string    `json:"event"`
	Severity   string    `json:"severity"`
	Camera     string    `json:"camera"`
	Department string    `json:"department"`
	Message    string    `json:"message"`
}

// Webhook is a receiver of events.
type Webhook struct {
	// URL receives the POSTs (http or https).
	URL string
	// Secret signs each body: X-Vigil-Signature: sha256=<hex HMAC-SHA256>.
	// Empty signs with the empty key.
	Secret string
	// Events are the events sent; empty sends all.
	Events []string
}

func (w Webhook) wants(event string) bool {
	return event == Test || len(w.Events) == 0 || slices.Contains(w.Events, event)
}

// ValidateWebhook says what is wrong with a webhook, in words that name the
// field, or nil.
func ValidateWebhook(w Webhook) error {
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("url %q is not an http:// or https:// URL", w.URL)
	}
	for _, e := range w.Events {
		if !slices.Contains(Events, e) {
			return fmt.Errorf("events: %q is not an event (known: %v)", e, Events)
		}
	}
	return nil
}

// Sign returns the X-Vigil-Signature value of body.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Options configure a Notifier.
type Options struct {
	// Webhooks receive the events.
	Webhooks []Webhook
	// QueueMax bounds each webhook's queue; past it the oldest event is
	// dropped. It defaults to 10000.
	QueueMax int
	// RetryMin and RetryMax bound the backoff between two attempts to send an
	// event. They default to 1 second and 1 minute.
	RetryMin, RetryMax time.Duration
	// Timeout bounds one POST. It defaults to 10 seconds.
	Timeout time.Duration
	// Client sends the POSTs. It defaults to a client that does not follow
	// redirects (a 3xx is a failure).
	Client *http.Client
	// Log receives deliveries that fail and events dropped. It defaults to
	// discarding.
	Log *slog.Logger
	// RunsHere, when set, tells at each pass of WatchCameras whether this
	// node watches the cameras for the cluster, so that one camera.offline
	// is sent per outage, not one per node (the cluster runtime passes
	// Cluster.Once). nil: always (a single node). Deliveries need no such
	// check: every node's senders take from the shared queue, each event
	// by one of them (see send).
	RunsHere func() bool
	// Node is this node's name in a cluster (cluster.node), "" on a single
	// node: the events of this node's own health checks (the object store
	// as this node reaches it, its spool) say which node they are about.
	Node string
}

// Stats are the figures of /metrics.
type Stats struct {
	Queued    int64 // events put in a webhook's queue (one event to two webhooks counts two)
	Delivered int64 // events a receiver accepted
	Failed    int64 // attempts that failed (each is retried)
	Dropped   int64 // events dropped from a full queue
	Pending   int64 // events waiting now
}

// Notifier queues events and sends them to the webhooks.
type Notifier struct {
	opts  Options
	db    *sqldb.DB
	hooks []*hook
	// poll is how often a sender on PostgreSQL looks at its queue without
	// being woken: another node may have queued events and stopped before
	// sending them, or be sending the head of the queue now.
	poll time.Duration

	queued, delivered, failed, dropped atomic.Int64
}

type hook struct {
	Webhook
	wake chan struct{} // an event was queued
}

//go:embed migrations
var migrationFiles embed.FS

// migrations are the queue's tables. Legacy "alerts": the steps
// sqlitedb.Migrate ran before goose are the SQLite files 00001 and 00002.
var migrations = sqldb.Migrations{Component: "alerts", FS: migrationFiles, Dir: "migrations", Legacy: "alerts"}

// New opens the queue (its table in db) and returns a Notifier; it sends
// nothing until Run. Events queued for a webhook that is no longer configured
// are dropped (logged); in a cluster, only once a day old (another node may
// have the webhook).
func New(ctx context.Context, db *sqldb.DB, opts Options) (*Notifier, error) {
	if opts.QueueMax <= 0 {
		opts.QueueMax = 10000
	}
	if opts.RetryMin <= 0 {
		opts.RetryMin = time.Second
	}
	if opts.RetryMax < opts.RetryMin {
		opts.RetryMax = max(time.Minute, opts.RetryMin)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Client == nil {
		opts.Client = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	for i, w := range opts.Webhooks {
		if err := ValidateWebhook(w); err != nil {
			return nil, fmt.Errorf("alerts: webhook %d: %w", i, err)
		}
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		return nil, err
	}
	n := &Notifier{opts: opts, db: db, poll: 2 * time.Second}
	urls := make([]any, 0, len(opts.Webhooks))
	for _, w := range opts.Webhooks {
		n.hooks = append(n.hooks, &hook{Webhook: w, wake: make(chan struct{}, 1)})
		urls = append(urls, w.URL)
	}
	// Events of a webhook this node does not have: on a single node it was
	// removed from the configuration; in a cluster (RunsHere set) another
	// node may have it and send them, so only those older than
	// unknownHookAge go.
	where, args := `webhook NOT IN (`+placeholders(len(urls))+`)`, urls
	if len(urls) == 0 {
		where = `1 = 1` // (NOT IN (NULL) would match no row)
	}
	if opts.RunsHere != nil {
		where += ` AND created < ?`
		args = append(args[:len(args):len(args)], time.Now().Add(-unknownHookAge).UnixMilli())
	}
	var stale int64
	if err := db.QueryRow(ctx, `SELECT COUNT(*) FROM alert_queue WHERE `+where, args...).Scan(&stale); err != nil {
		return nil, fmt.Errorf("alerts: queue: %w", err)
	}
	if stale > 0 {
		if _, err := db.Exec(ctx, `DELETE FROM alert_queue WHERE `+where, args...); err != nil {
			return nil, fmt.Errorf("alerts: queue: %w", err)
		}
		if opts.RunsHere != nil {
			opts.Log.Warn("alert events dropped: their webhook is configured on no node that sent them in a day", "events", stale)
		} else {
			opts.Log.Warn("alert events dropped: their webhook is no longer configured", "events", stale)
		}
	}
	return n, nil
}

// unknownHookAge: in a cluster, events queued for a webhook that this node
// does not have are kept this long for the nodes that have it.
const unknownHookAge = 24 * time.Hour

func placeholders(n int) string {
	if n == 0 {
		return "NULL"
	}
	b := make([]byte, 0, 2*n)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '?')
	}
	return string(b)
}

// Publish fills in the event's id, time and severity when empty and queues it
// for every webhook that wants it. It does not wait for delivery; it fails
// only when the database does.
func (n *Notifier) Publish(ctx context.Context, e Event) error {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	if e.Severity == "" {
		e.Severity = defaultSeverity[e.Event]
		if e.Severity == "" {
			e.Severity = Info
		}
	}
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("alerts: %w", err)
	}
	var errs []error
	for _, h := range n.hooks {
		if !h.wants(e.Event) {
			continue
		}
		if err := n.enqueue(ctx, h, body); err != nil {
			errs = append(errs, err)
			continue
		}
		select {
		case h.wake <- struct{}{}:
		default:
		}
	}
	return errors.Join(errs...)
}

func (n *Notifier) enqueue(ctx context.Context, h *hook, body []byte) error {
	tx, err := n.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("alerts: queue: %w", err)
	}
	defer tx.Rollback()
	var count int
	if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM alert_queue WHERE webhook = ?`, h.URL).Scan(&count); err != nil {
		return fmt.Errorf("alerts: queue: %w", err)
	}
	var drop int
	if count >= n.opts.QueueMax {
		drop = count - n.opts.QueueMax + 1
		if _, err := tx.Exec(ctx, `DELETE FROM alert_queue WHERE seq IN
			(SELECT seq FROM alert_queue WHERE webhook = ? ORDER BY seq LIMIT ?)`, h.URL, drop); err != nil {
			return fmt.Errorf("alerts: queue: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO alert_queue(webhook, body, created) VALUES(?, ?, ?)`,
		h.URL, body, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("alerts: queue: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("alerts: queue: %w", err)
	}
	n.queued.Add(1)
	if drop > 0 {
		total := n.dropped.Add(int64(drop))
		n.opts.Log.Warn("alert queue full: oldest events dropped", "webhook", redact(h.URL), "dropped", drop, "droppedTotal", total)
	}
	return nil
}

// Run sends the queued events until ctx ends, one sender per webhook.
func (n *Notifier) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, h := range n.hooks {
		wg.Go(func() { n.send(ctx, h) })
	}
	wg.Wait()
	return nil
}

// send delivers h's queue in order: the oldest event until it is accepted,
// then the next.
//
// The queue is shared by the nodes of a cluster, each with a sender per
// webhook: a sender takes the head of the queue in a transaction that locks
// its row (FOR UPDATE SKIP LOCKED) until the event is delivered and deleted
// or the attempt failed, so one node sends it, once; the others find the
// head taken and wait, so that events still go out in order.
func (n *Notifier) send(ctx context.Context, h *hook) {
	backoff := time.Duration(0)
	for {
		d, busy, err := n.head(ctx, h.URL)
		switch {
		case ctx.Err() != nil:
			d.release(false)
			return
		case err != nil:
			n.opts.Log.Error("alert queue unreadable", "webhook", redact(h.URL), "error", err)
			backoff = n.next(backoff)
		case d == nil:
			backoff = 0
			poll := time.Duration(0) // SQLite: its own Publish wakes it
			if busy || n.db.Dialect == sqldb.Postgres {
				poll = n.poll
			}
			if !h.wait(ctx, poll) {
				return
			}
			continue
		default:
			err := n.post(ctx, h.Webhook, d.body)
			if err != nil && ctx.Err() != nil {
				d.release(false)
				return
			}
			if err == nil {
				backoff = 0
				// delivered: remove it even when stopping, or it is sent again after a restart
				if err := d.release(true); err != nil {
					n.opts.Log.Error("alert delivered but not removed from the queue", "webhook", redact(h.URL), "error", err)
				}
				n.delivered.Add(1)
				continue
			}
			d.release(false)
			n.failed.Add(1)
			backoff = n.next(backoff)
			n.opts.Log.Warn("alert not delivered, retrying", "webhook", redact(h.URL), "retryIn", backoff.Round(time.Millisecond), "error", err)
		}
		if !ctxwait.Sleep(ctx, backoff) {
			return
		}
	}
}

// wait waits until an event is queued here, or for poll when not 0; false
// when ctx ended.
func (h *hook) wait(ctx context.Context, poll time.Duration) bool {
	var tick <-chan time.Time
	if poll > 0 {
		t := time.NewTimer(poll)
		defer t.Stop()
		tick = t.C
	}
	select {
	case <-ctx.Done():
		return false
	case <-h.wake:
	case <-tick:
	}
	return true
}

// next is the wait after a failure: doubled from RetryMin up to RetryMax,
// with up to 25 % jitter either way so that webhooks do not retry in step.
func (n *Notifier) next(prev time.Duration) time.Duration {
	d := prev * 2
	if d < n.opts.RetryMin {
		d = n.opts.RetryMin
	}
	if d > n.opts.RetryMax {
		d = n.opts.RetryMax
	}
	jitter := time.Duration((rand.Float64() - 0.5) * 0.5 * float64(d))
	return d + jitter
}

// delivery is the head of a webhook's queue, taken for sending.
type delivery struct {
	db   *sqldb.DB
	tx   *sqldb.Tx // PostgreSQL: holds the row's lock until release
	seq  int64
	body []byte
}

// release deletes the event (sent) or leaves it at the head of the queue
// for the next attempt, and lets the row go. The deletion is not cancelled
// with the sender: a delivered event must not be sent again.
func (d *delivery) release(sent bool) error {
	if d == nil {
		return nil
	}
	ctx := context.Background()
	if d.tx == nil {
		if !sent {
			return nil
		}
		_, err := d.db.Exec(ctx, `DELETE FROM alert_queue WHERE seq = ?`, d.seq)
		return err
	}
	if !sent {
		return d.tx.Rollback()
	}
	if _, err := d.tx.Exec(ctx, `DELETE FROM alert_queue WHERE seq = ?`, d.seq); err != nil {
		d.tx.Rollback()
		return err
	}
	return d.tx.Commit()
}

// head takes the oldest event of a webhook's queue: nil when there is none,
// or when another node is sending it (busy). On SQLite (a single node) it
// is read without a transaction, which would hold the database's write lock
// for the whole POST; on PostgreSQL its row stays locked until release.
func (n *Notifier) head(ctx context.Context, webhook string) (d *delivery, busy bool, err error) {
	d = &delivery{db: n.db}
	if n.db.Dialect != sqldb.Postgres {
		err := n.db.QueryRow(ctx, `SELECT seq, body FROM alert_queue WHERE webhook = ? ORDER BY seq LIMIT 1`, webhook).Scan(&d.seq, &d.body)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, err
		}
		return d, false, nil
	}
	// not cancelled with ctx: database/sql would roll back a delivered
	// event's deletion when the sender stops
	if d.tx, err = n.db.Begin(context.WithoutCancel(ctx)); err != nil {
		return nil, false, err
	}
	// the head only: the next event waits until the head is delivered,
	// whichever node sends it
	err = d.tx.QueryRow(ctx, `SELECT seq, body FROM alert_queue
		WHERE webhook = ?1 AND seq = (SELECT MIN(seq) FROM alert_queue WHERE webhook = ?1)`+n.db.Dialect.SkipLocked(),
		webhook).Scan(&d.seq, &d.body)
	if err == nil {
		return d, false, nil
	}
	d.tx.Rollback()
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, false, err
	}
	if err := n.db.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alert_queue WHERE webhook = ?)`, webhook).Scan(&busy); err != nil {
		return nil, false, err
	}
	return nil, busy, nil
}

// post sends one body; nil when the receiver answered 2xx.
func (n *Notifier) post(ctx context.Context, w Webhook, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	var head struct{ Event string }
	_ = json.Unmarshal(body, &head)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Vigil")
	req.Header.Set("X-Vigil-Event", head.Event)
	req.Header.Set("X-Vigil-Signature", Sign(w.Secret, body))
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		return fmt.Errorf("the receiver %s cannot be reached: %w", redact(w.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("the receiver %s answered %s", redact(w.URL), resp.Status)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// TestResult says whether a webhook accepted the test event.
type TestResult struct {
	URL       string `json:"url"`
	Delivered bool   `json:"delivered"`
	Error     string `json:"error,omitempty"`
}

// SendTest sends a test event to every webhook now, not through the queue,
// and says for each whether it was delivered.
func (n *Notifier) SendTest(ctx context.Context, by string) []TestResult {
	e := Event{ID: newID(), Time: time.Now().UTC(), Event: Test, Severity: Info,
		Message: "test event sent by " + by + " from Vigil"}
	body, _ := json.Marshal(e)
	out := make([]TestResult, len(n.hooks))
	var wg sync.WaitGroup
	for i, h := range n.hooks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := TestResult{URL: redact(h.URL), Delivered: true}
			if err := n.post(ctx, h.Webhook, body); err != nil {
				r.Delivered, r.Error = false, err.Error()
			}
			out[i] = r
		}()
	}
	wg.Wait()
	return out
}

// Stats returns the figures of /metrics.
func (n *Notifier) Stats() Stats {
	s := Stats{Queued: n.queued.Load(), Delivered: n.delivered.Load(), Failed: n.failed.Load(), Dropped: n.dropped.Load()}
	_ = n.db.QueryRow(context.Background(), `SELECT COUNT(*) FROM alert_queue`).Scan(&s.Pending)
	return s
}

// redact hides a password and the query (which may carry a token) of a
// webhook URL in logs and answers.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(invalid URL)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "***")
	}
	if u.RawQuery != "" {
		u.RawQuery = "***"
	}
	return u.String()
}

func newID() string {
	var b [16]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
