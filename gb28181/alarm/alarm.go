// Package alarm keeps the alarms GB/T 28181 devices raise (an Alarm NOTIFY:
// a motion, an intrusion line, a tampered lens, a device fault): each becomes
// an event on its camera's timeline (GET /api/v1/cameras/{id}/events, type
// "alarm") and an `alarm` alert to the webhooks.
//
// The SIP server answers the NOTIFY and calls OnAlarm; the store finds the
// camera the alarm is about (the channel gb-<DeviceID>, or every channel of
// the device when the device raised it for itself), writes it to its table
// in Vigil's database and publishes the alert. A device that floods alarms
// is limited per camera (Options.Burst a minute); what is over the limit is
// counted and logged, not stored.
//
//	alarms, err := alarm.Open(ctx, db, alarm.Options{Cameras: reg.Cameras, Alerts: notifier})
//	sipServer.OnAlarm = alarms.OnAlarm
//	ui.GB28181{…, Alarms: alarms.Events}
package alarm

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// EventAlarm is the type of an alarm on a camera's timeline.
const EventAlarm = "alarm"

// Alarm is one alarm of a camera.
type Alarm struct {
	Camera string    // the camera (gb-<channel>)
	Device string    // the device that raised it
	Time   time.Time // when it happened (the device's AlarmTime, else when Vigil heard of it)
	// Priority is 1 (highest) to 4; 0 when the device did not say.
	Priority int
	// Method is where it comes from: 1 phone, 2 device, 3 SMS, 4 GPS,
	// 5 video analysis, 6 device fault, 7 other; 0 when the device did not say.
	Method int
	// Type is the device's AlarmType within the method (e.g. 1 video lost),
	// "" when absent.
	Type        string
	Description string
}

// Publisher is the alerts notifier (alerts.Notifier).
type Publisher interface {
	Publish(ctx context.Context, e alerts.Event) error
}

// Options configure a Store.
type Options struct {
	// Cameras lists the registered cameras (registry.Registry.Cameras), to
	// find an alarm's camera and its department. Required.
	Cameras func(ctx context.Context) ([]ingest.Camera, error)
	// Alerts receives an `alarm` alert for every alarm stored. Optional.
	Alerts Publisher
	// Burst is how many alarms of one camera are stored a minute; more are
	// dropped (counted, logged). It defaults to 30.
	Burst int
	// Retention is how long alarms are kept. It defaults to 90 days.
	Retention time.Duration
	// Log defaults to discarding.
	Log *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Store is the alarm table.
type Store struct {
	db   *sqldb.DB
	opts Options

	mu        sync.Mutex
	recent    map[string][]time.Time // camera → the times of its alarms stored within the last minute
	dropped   int64
	lastPrune time.Time
}

// migrationFiles are the alarm table's migrations (migrations/sqlite,
// migrations/postgres). SQLite file 1 is the step sqlitedb.Migrate ran as
// component "gb28181_alarms" (Legacy): such databases are adopted.
//
//go:embed migrations
var migrationFiles embed.FS

// Open migrates the alarm table in db and returns the store.
func Open(ctx context.Context, db *sqldb.DB, opts Options) (*Store, error) {
	if opts.Cameras == nil {
		return nil, fmt.Errorf("alarm: Options.Cameras is required")
	}
	if opts.Burst <= 0 {
		opts.Burst = 30
	}
	if opts.Retention <= 0 {
		opts.Retention = 90 * 24 * time.Hour
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "gb28181_alarms", FS: migrationFiles, Dir: "migrations", Legacy: "gb28181_alarms"}); err != nil {
		return nil, fmt.Errorf("alarm: %w", err)
	}
	return &Store{db: db, opts: opts, recent: map[string][]time.Time{}}, nil
}

// Limits of what a device may write.
const (
	maxDescription = 256 // characters
	maxType        = 32
	// maxClockSkew is how far a device's AlarmTime may lie from Vigil's
	// clock to be believed (devices take their time from the Date header of
	// the REGISTER answer, so they are close; a device that never set its
	// clock says 1970).
	maxClockSkew = 24 * time.Hour
)

// OnAlarm records the alarm of a NOTIFY that device deviceID sent (the
// sip.Server.OnAlarm hook): the alarm of channel DeviceID is its camera's
// gb-<DeviceID>; an alarm the device raised for itself goes on every camera
// of the device. It logs what it cannot record.
func (s *Store) OnAlarm(deviceID string, n *manscdp.Notify) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	a := FromNotify(deviceID, n, s.opts.Now())
	cams, err := s.camerasOf(ctx, deviceID, n.DeviceID)
	if err != nil {
		s.opts.Log.Error("gb28181 alarm lost: the cameras cannot be read", "device", deviceID, "error", err)
		return
	}
	if len(cams) == 0 {
		s.opts.Log.Warn("gb28181 alarm of no camera: channel gb-"+clip(n.DeviceID, 32)+" is not registered",
			"device", deviceID, "channel", clip(n.DeviceID, 32), "description", a.Description)
		return
	}
	for _, cam := range cams {
		a.Camera = cam.ID
		if err := s.record(ctx, a, cam); err != nil {
			s.opts.Log.Error("gb28181 alarm lost", "device", deviceID, "camera", cam.ID, "error", err)
		}
	}
}

// FromNotify reads an alarm from a NOTIFY body received at now (Camera is
// left empty). Text is clipped and the time kept only when it is plausible.
func FromNotify(deviceID string, n *manscdp.Notify, now time.Time) Alarm {
	a := Alarm{Device: deviceID, Time: now, Description: clip(strings.TrimSpace(n.AlarmDescription), maxDescription)}
	fmt.Sscan(n.AlarmPriority, &a.Priority)
	fmt.Sscan(n.AlarmMethod, &a.Method)
	if a.Priority < 0 || a.Priority > 4 {
		a.Priority = 0
	}
	if a.Method < 0 || a.Method > 7 {
		a.Method = 0
	}
	if n.AlarmInfo != nil {
		a.Type = clip(strings.TrimSpace(n.AlarmInfo.AlarmType), maxType)
	}
	if n.AlarmTime != nil {
		// The device's local time, which it took from Vigil's Date header:
		// Vigil's own zone.
		v := n.AlarmTime.Time
		t := time.Date(v.Year(), v.Month(), v.Day(), v.Hour(), v.Minute(), v.Second(), v.Nanosecond(), time.Local)
		if d := t.Sub(now); d < maxClockSkew && d > -maxClockSkew {
			a.Time = t
		}
	}
	return a
}

// camerasOf finds the cameras an alarm of channel of device is about.
func (s *Store) camerasOf(ctx context.Context, device, channel string) ([]ingest.Camera, error) {
	all, err := s.opts.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	var out []ingest.Camera
	for _, c := range all {
		if c.ID == "gb-"+channel {
			return []ingest.Camera{c}, nil
		}
		if channel == device && c.GB28181 != nil && c.GB28181.Device == device {
			out = append(out, c)
		}
	}
	return out, nil
}

// Record stores an alarm of a registered camera and publishes its alert.
func (s *Store) Record(ctx context.Context, a Alarm) error {
	all, err := s.opts.Cameras(ctx)
	if err != nil {
		return fmt.Errorf("alarm: cameras: %w", err)
	}
	for _, c := range all {
		if c.ID == a.Camera {
			return s.record(ctx, a, c)
		}
	}
	return fmt.Errorf("alarm: camera %q is not registered", a.Camera)
}

func (s *Store) record(ctx context.Context, a Alarm, cam ingest.Camera) error {
	now := s.opts.Now()
	if !s.admit(cam.ID, now) {
		return nil
	}
	s.prune(ctx, now)
	if _, err := s.db.Exec(ctx, `INSERT INTO gb28181_alarms(camera, time_ms, device, priority, method, type, description)
		VALUES(?, ?, ?, ?, ?, ?, ?)`, cam.ID, a.Time.UnixMilli(), a.Device, a.Priority, a.Method, a.Type, a.Description); err != nil {
		return fmt.Errorf("alarm: store: %w", err)
	}
	s.opts.Log.Info("gb28181 alarm", "camera", cam.ID, "device", a.Device, "priority", a.Priority, "method", a.Method, "description", a.Description)
	if s.opts.Alerts == nil {
		return nil
	}
	e := alerts.Event{Event: alerts.Alarm, Time: a.Time.UTC(), Camera: cam.ID, Department: cam.Department,
		Message: fmt.Sprintf("camera %s (%s): %s", cam.ID, cam.Name, a.Text())}
	if a.Priority >= 3 {
		e.Severity = alerts.Warning
	}
	if err := s.opts.Alerts.Publish(ctx, e); err != nil {
		return fmt.Errorf("alarm: alert: %w", err)
	}
	return nil
}

// admit tells whether an alarm of camera fits in its Burst a minute.
func (s *Store) admit(camera string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.recent[camera]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= time.Minute {
		i++
	}
	ts = ts[i:]
	if len(ts) >= s.opts.Burst {
		s.dropped++
		if s.dropped == 1 || s.dropped%100 == 0 {
			s.opts.Log.Warn("gb28181 alarms dropped: more than the burst a minute", "camera", camera, "burst", s.opts.Burst, "dropped", s.dropped)
		}
		s.recent[camera] = ts
		return false
	}
	s.recent[camera] = append(ts, now)
	for id, ts := range s.recent {
		if len(ts) > 0 && now.Sub(ts[len(ts)-1]) >= time.Minute {
			delete(s.recent, id)
		}
	}
	return true
}

// Dropped counts the alarms over the burst limit, not stored.
func (s *Store) Dropped() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dropped
}

// prune deletes alarms older than Retention, at most once an hour.
func (s *Store) prune(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := now.Sub(s.lastPrune) >= time.Hour
	if due {
		s.lastPrune = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if _, err := s.db.Exec(ctx, `DELETE FROM gb28181_alarms WHERE time_ms < ?`, now.Add(-s.opts.Retention).UnixMilli()); err != nil {
		s.opts.Log.Warn("gb28181 alarms: old alarms cannot be deleted", "error", err)
	}
}

// Events returns camera's alarms within [from, to), the oldest first, as
// timeline events (start = end = the alarm's time).
func (s *Store) Events(ctx context.Context, camera string, from, to time.Time) ([]availability.Event, error) {
	return sqldb.QueryList(ctx, s.db, fmt.Sprintf("alarm: alarms of %q", camera), func(rows *sql.Rows, e *availability.Event) error {
		var a Alarm
		var ms int64
		if err := rows.Scan(&ms, &a.Device, &a.Priority, &a.Method, &a.Type, &a.Description); err != nil {
			return err
		}
		at := time.UnixMilli(ms).UTC()
		*e = availability.Event{Type: EventAlarm, Start: at, End: &at, Message: a.Text()}
		return nil
	}, `SELECT time_ms, device, priority, method, type, description FROM gb28181_alarms
		WHERE camera = ? AND time_ms >= ? AND time_ms < ? ORDER BY time_ms, id`,
		camera, from.UnixMilli(), to.UnixMilli())
}

// methods names the alarm methods of GB/T 28181-2016 A.2.5.
var methods = map[int]string{1: "phone", 2: "device", 3: "SMS", 4: "GPS", 5: "video analysis", 6: "device fault", 7: "other"}

// Text says what an alarm is: "intrusion at gate (priority 1, device alarm,
// type 2, from device 440113…)".
func (a Alarm) Text() string {
	var b strings.Builder
	if a.Description != "" {
		b.WriteString(a.Description)
	} else {
		b.WriteString("alarm")
	}
	var parts []string
	if a.Priority > 0 {
		parts = append(parts, fmt.Sprintf("priority %d", a.Priority))
	}
	if m, ok := methods[a.Method]; ok {
		parts = append(parts, m+" alarm")
	}
	if a.Type != "" {
		parts = append(parts, "type "+a.Type)
	}
	if a.Device != "" {
		parts = append(parts, "from device "+a.Device)
	}
	if len(parts) > 0 {
		b.WriteString(" (" + strings.Join(parts, ", ") + ")")
	}
	return b.String()
}

// clip cuts s to at most n characters, on a rune boundary, dropping
// invalid UTF-8.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n])
}
