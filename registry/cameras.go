package registry

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"strconv"
	"strings"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Limits of a camera's fields.
const (
	MaxNameLen      = 200
	MaxAddressLen   = 500
	MaxURLLen       = 2048
	MaxTags         = 32
	MaxTagLen       = 64
	MaxRetention    = 3650
	RedactedPasswd  = "***"
	defaultTranport = "auto"
)

// FieldError is one thing wrong with one field of one camera. Row is the
// CSV row (the header is row 1), 0 outside an import.
type FieldError struct {
	Row     int    `json:"row,omitempty"`
	Field   string `json:"field"`
	Message string `json:"message"`
	// Taken marks an id that another camera has already: the HTTP layer
	// words it for callers who may not see that camera.
	Taken bool `json:"-"`
}

func (e FieldError) String() string {
	if e.Row > 0 {
		return fmt.Sprintf("row %d: %s: %s", e.Row, e.Field, e.Message)
	}
	return e.Field + ": " + e.Message
}

// ValidationError lists everything wrong with a camera or an import. It is
// of kind apierr.ErrInvalid.
type ValidationError struct {
	Errors []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, 0, len(e.Errors))
	for _, fe := range e.Errors {
		parts = append(parts, fe.String())
	}
	if len(parts) > 20 {
		parts = append(parts[:20], fmt.Sprintf("and %d more", len(parts)-20))
	}
	return "invalid camera: " + strings.Join(parts, "; ")
}

// Unwrap makes the error of kind apierr.ErrInvalid.
func (e *ValidationError) Unwrap() error { return apierr.ErrInvalid }

// NormalizeCamera fills defaults that an empty field means: transport
// "auto", tags never nil. Names and the address are trimmed.
func NormalizeCamera(c *ingest.Camera) {
	c.Name = strings.TrimSpace(c.Name)
	c.Location.Address = strings.TrimSpace(c.Location.Address)
	c.MainURL = strings.TrimSpace(c.MainURL)
	c.SubURL = strings.TrimSpace(c.SubURL)
	if c.Transport == "" {
		c.Transport = defaultTranport
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	if c.Source == "" {
		c.Source = ingest.SourceRTSP
	}
}

// ValidateCamera returns everything wrong with c (nil when it is valid).
// departmentExists tells whether a department id is registered; nil skips
// that check.
func ValidateCamera(c ingest.Camera, departmentExists func(string) bool) []FieldError {
	var errs []FieldError
	add := func(field, format string, a ...any) {
		errs = append(errs, FieldError{Field: field, Message: fmt.Sprintf(format, a...)})
	}
	if !idRE.MatchString(c.ID) {
		add("id", "must be 1-64 lowercase letters, digits or '-'")
	}
	if msg := checkText(c.Name, 1, MaxNameLen); msg != "" {
		add("name", "%s", msg)
	}
	switch {
	case c.Department == "":
		add("department", "is empty")
	case !idRE.MatchString(c.Department):
		add("department", "is not a department id")
	case departmentExists != nil && !departmentExists(c.Department):
		add("department", "%q does not exist", c.Department)
	}
	switch c.Source {
	case ingest.SourceRTSP, "":
		if c.MainURL == "" {
			add("mainUrl", "is empty")
		} else if msg := checkRTSPURL(c.MainURL); msg != "" {
			add("mainUrl", "%s", msg)
		}
		if c.SubURL != "" {
			if msg := checkRTSPURL(c.SubURL); msg != "" {
				add("subUrl", "%s", msg)
			}
		}
		if gbIDRE.MatchString(c.ID) {
			add("id", "gb-<20 digits> is kept for the channels of GB/T 28181 devices")
		}
		if c.GB28181 != nil {
			add("gb28181", "is only for a camera whose source is gb28181")
		}
	case ingest.SourceGB28181:
		errs = append(errs, validateGB(c)...)
	default:
		add("source", "must be rtsp or gb28181")
	}
	switch c.Transport {
	case "auto", "tcp", "udp":
	default:
		add("transport", "must be auto, tcp or udp")
	}
	if c.RetentionDays < 0 || c.RetentionDays > MaxRetention {
		add("retentionDays", "must be 0 (the configured default) to %d", MaxRetention)
	}
	if math.IsNaN(c.Location.Lat) || c.Location.Lat < -90 || c.Location.Lat > 90 {
		add("location.lat", "must be between -90 and 90")
	}
	if math.IsNaN(c.Location.Lng) || c.Location.Lng < -180 || c.Location.Lng > 180 {
		add("location.lng", "must be between -180 and 180")
	}
	if c.Location.Address != "" {
		if msg := checkText(c.Location.Address, 0, MaxAddressLen); msg != "" {
			add("location.address", "%s", msg)
		}
	}
	if len(c.Tags) > MaxTags {
		add("tags", "more than %d tags", MaxTags)
	} else {
		seen := map[string]bool{}
		for _, t := range c.Tags {
			if msg := checkText(t, 1, MaxTagLen); msg != "" {
				add("tags", "tag %q %s", truncate(t, 80), msg)
			} else if strings.Contains(t, ";") {
				add("tags", "tag %q contains ';'", truncate(t, 80))
			} else if seen[t] {
				add("tags", "tag %q appears twice", t)
			}
			seen[t] = true
		}
	}
	return errs
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// checkRTSPURL returns "" for an rtsp:// or rtsps:// URL with a host, or what
// is wrong. Its messages never quote the URL (it may hold a password).
func checkRTSPURL(raw string) string {
	if len(raw) > MaxURLLen {
		return fmt.Sprintf("is longer than %d characters", MaxURLLen)
	}
	for _, r := range raw {
		if r <= 0x20 || r == 0x7f {
			return "contains a space or control character"
		}
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "is not a valid URL"
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return "must start with rtsp:// or rtsps://"
	}
	if u.Opaque != "" || u.Hostname() == "" {
		return "has no host"
	}
	if p := u.Port(); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil || n < 1 || n > 65535 {
			return "has an invalid port"
		}
	}
	return ""
}

// RedactCamera returns c with the passwords in its URLs replaced by ***,
// as every API response must show it.
func RedactCamera(c ingest.Camera) ingest.Camera {
	c.MainURL = redactURL(c.MainURL)
	c.SubURL = redactURL(c.SubURL)
	c.Tags = append([]string{}, c.Tags...)
	return c
}

func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ingest.RedactURL(raw)
	}
	if u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	user := url.User(u.User.Username()).String()
	u.User = nil
	s := u.String()
	i := strings.Index(s, "://")
	if i < 0 {
		return ingest.RedactURL(raw)
	}
	return s[:i+3] + user + ":" + RedactedPasswd + "@" + s[i+3:]
}

// KeepPassword returns newURL with a *** password replaced by the password
// of the first stored URL that names the same endpoint: the same scheme,
// host, port (554 and 322 when absent) and user. An edited camera whose URL
// was shown redacted keeps its stored password, but a stored password is
// never sent to another host, port, user or over another scheme (an admin
// could otherwise aim *** at a host of their own and read the password
// there). ok is false when newURL holds *** and no stored URL matches.
func KeepPassword(newURL string, stored ...string) (_ string, ok bool) {
	u, err := url.Parse(newURL)
	if err != nil || u.User == nil {
		return newURL, true
	}
	if p, ok := u.User.Password(); !ok || p != RedactedPasswd {
		return newURL, true
	}
	for _, s := range stored {
		o, err := url.Parse(s)
		if err != nil || o.User == nil {
			continue
		}
		op, ok := o.User.Password()
		if !ok || !sameEndpoint(u, o) {
			continue
		}
		u.User = url.UserPassword(u.User.Username(), op)
		return u.String(), true
	}
	return newURL, false
}

// sameEndpoint tells whether a and b reach the same service as the same user.
func sameEndpoint(a, b *url.URL) bool {
	port := func(u *url.URL) string {
		if p := u.Port(); p != "" {
			return p
		}
		if strings.EqualFold(u.Scheme, "rtsps") {
			return "322"
		}
		return "554"
	}
	return strings.EqualFold(a.Scheme, b.Scheme) && strings.EqualFold(a.Hostname(), b.Hostname()) &&
		port(a) == port(b) && a.User.Username() == b.User.Username()
}

// errKeepPassword is the error of a *** that names no stored password.
func errKeepPassword(field string) error {
	return &ValidationError{Errors: []FieldError{{Field: field,
		Message: "the password *** is kept only for the stored URL's scheme, host, port and user: enter the password"}}}
}

const cameraColumns = `id, name, department, lat, lng, address, main_url, sub_url, transport, record, retention_days, enabled, tags, uid, since_ns,
	source, gb_device, gb_channel, gb_ptz, gb_missing`

type scanner interface{ Scan(dest ...any) error }

func scanCamera(s scanner) (ingest.Camera, error) {
	var c ingest.Camera
	var tags string
	var sinceNS int64
	var gb ingest.GBChannel
	err := s.Scan(&c.ID, &c.Name, &c.Department, &c.Location.Lat, &c.Location.Lng, &c.Location.Address,
		&c.MainURL, &c.SubURL, &c.Transport, &c.Record, &c.RetentionDays, &c.Enabled, &tags, &c.UID, &sinceNS,
		&c.Source, &gb.Device, &gb.Channel, &gb.PTZ, &gb.Missing)
	if err != nil {
		return c, err
	}
	if c.Source == "" {
		c.Source = ingest.SourceRTSP
	}
	if c.Source == ingest.SourceGB28181 {
		c.GB28181 = &gb
	}
	c.Since = nsTime(sinceNS)
	if err := json.Unmarshal([]byte(tags), &c.Tags); err != nil {
		return c, fmt.Errorf("camera %q: tags: %w", c.ID, err)
	}
	if c.Tags == nil {
		c.Tags = []string{}
	}
	return c, nil
}

// Cameras lists every camera by id, with the URLs as stored (passwords
// included: the ingest needs them). Redact before showing them.
func (r *Registry) Cameras(ctx context.Context) ([]ingest.Camera, error) {
	rows, err := r.db.Query(ctx, `SELECT `+cameraColumns+` FROM cameras ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	defer rows.Close()
	out := []ingest.Camera{}
	for rows.Next() {
		c, err := scanCamera(rows)
		if err != nil {
			return nil, fmt.Errorf("list cameras: %w", err)
		}
		if c.MainURL, c.SubURL, err = r.openURLs(c.ID, c.MainURL, c.SubURL); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list cameras: %w", err)
	}
	return out, nil
}

// Camera returns one camera as stored (passwords included).
func (r *Registry) Camera(ctx context.Context, id string) (ingest.Camera, error) {
	return r.getCamera(ctx, r.db, id, "")
}

type querier interface {
	QueryRow(ctx context.Context, query string, args ...any) *sql.Row
}

// getCamera reads one camera; lock is appended to the query (a transaction
// that goes on to change the row passes tx.Dialect.ForUpdate()).
func (r *Registry) getCamera(ctx context.Context, q querier, id, lock string) (ingest.Camera, error) {
	c, err := scanCamera(q.QueryRow(ctx, `SELECT `+cameraColumns+` FROM cameras WHERE id = ?`+lock, id))
	if notFound(err) {
		return c, apierr.New(apierr.ErrNotFound, "camera %q does not exist", truncate(id, 64))
	}
	if err != nil {
		return c, fmt.Errorf("camera %q: %w", id, err)
	}
	if c.MainURL, c.SubURL, err = r.openURLs(c.ID, c.MainURL, c.SubURL); err != nil {
		return ingest.Camera{}, err
	}
	return c, nil
}

func departmentSet(ctx context.Context, tx *sqldb.Tx) (map[string]bool, error) {
	rows, err := tx.Query(ctx, `SELECT id FROM departments`)
	if err != nil {
		return nil, fmt.Errorf("departments: %w", err)
	}
	defer rows.Close()
	set := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("departments: %w", err)
		}
		set[id] = true
	}
	return set, rows.Err()
}

func validateIn(ctx context.Context, tx *sqldb.Tx, c ingest.Camera) error {
	depts, err := departmentSet(ctx, tx)
	if err != nil {
		return err
	}
	if errs := ValidateCamera(c, func(id string) bool { return depts[id] }); len(errs) > 0 {
		return &ValidationError{Errors: errs}
	}
	return nil
}

// newCameraUID returns a random incarnation uid (128 bits, hex), as the
// migration gives the cameras that existed before uids.
func newCameraUID() string {
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// cameraRow gives the columns of c that are not stored as they are: its
// tags as JSON and its URLs sealed.
func (r *Registry) cameraRow(c ingest.Camera) (tags, mainURL, subURL string, err error) {
	b, err := json.Marshal(c.Tags)
	if err != nil {
		return "", "", "", fmt.Errorf("camera %q: %w", c.ID, err)
	}
	mainURL, subURL, err = r.sealURLs(c.ID, c.MainURL, c.SubURL, true)
	return string(b), mainURL, subURL, err
}

// insertCamera adds c as a new incarnation: it sets c.UID and c.Since.
func (r *Registry) insertCamera(ctx context.Context, tx *sqldb.Tx, c *ingest.Camera) error {
	tags, mainURL, subURL, err := r.cameraRow(*c)
	if err != nil {
		return err
	}
	now := r.now().UnixNano()
	c.UID, c.Since = newCameraUID(), nsTime(now)
	gb := gbColumns(*c)
	_, err = tx.Exec(ctx, `INSERT INTO cameras(`+cameraColumns+`, created_ns, updated_ns)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		c.ID, c.Name, c.Department, c.Location.Lat, c.Location.Lng, c.Location.Address,
		mainURL, subURL, c.Transport, c.Record, c.RetentionDays, c.Enabled, tags, c.UID, now,
		c.Source, gb.Device, gb.Channel, gb.PTZ, gb.Missing, now, now)
	if r.isUnique(err) {
		return apierr.New(apierr.ErrConflict, "camera %q already exists", c.ID)
	}
	if isForeignKey(err) {
		return apierr.New(apierr.ErrInvalid, "camera %q: department %q does not exist", c.ID, c.Department)
	}
	if err != nil {
		return fmt.Errorf("create camera %q: %w", c.ID, err)
	}
	return nil
}

// CreateCamera validates and adds a camera; it returns the camera as stored.
func (r *Registry) CreateCamera(ctx context.Context, c ingest.Camera) (ingest.Camera, error) {
	NormalizeCamera(&c)
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		if err := validateIn(ctx, tx, c); err != nil {
			return err
		}
		return r.insertCamera(ctx, tx, &c)
	})
	return c, err
}

// ReplaceCamera validates and replaces the camera c.ID. A URL whose password
// is *** (as the API shows it) keeps the stored password. It returns the
// camera as stored and the previous one.
//
// Of a GB/T 28181 camera, an admin may change what Vigil decides (name,
// location, record, retention, enabled, tags) but not what its device
// decides: its source, device and channel (the body may omit them or repeat
// them), its PTZ flag (kept) and its department, which is the device's
// (see KeepGB).
func (r *Registry) ReplaceCamera(ctx context.Context, c ingest.Camera) (now, before ingest.Camera, err error) {
	return r.replaceCamera(ctx, c, false)
}

// UpdateGBCamera replaces a GB/T 28181 camera as its device's catalog
// says: unlike ReplaceCamera it writes the department and the gb28181
// fields. It is for the dispatcher's catalog sync only.
func (r *Registry) UpdateGBCamera(ctx context.Context, c ingest.Camera) (now, before ingest.Camera, err error) {
	if c.Source != ingest.SourceGB28181 {
		return c, before, fmt.Errorf("camera %q: UpdateGBCamera of a camera whose source is %q", c.ID, c.Source)
	}
	return r.replaceCamera(ctx, c, true)
}

func (r *Registry) replaceCamera(ctx context.Context, c ingest.Camera, catalog bool) (now, before ingest.Camera, err error) {
	err = r.inTx(ctx, func(tx *sqldb.Tx) error {
		old, err := r.getCamera(ctx, tx, c.ID, tx.Dialect.ForUpdate())
		if err != nil {
			return err
		}
		before = old
		if !catalog {
			if err := KeepGB(&c, old); err != nil {
				return err
			}
		} else if old.Source != ingest.SourceGB28181 {
			return apierr.New(apierr.ErrConflict, "camera %q already exists", c.ID)
		}
		NormalizeCamera(&c)
		c.UID, c.Since = old.UID, old.Since // the same incarnation
		var ok bool
		if c.MainURL, ok = KeepPassword(c.MainURL, old.MainURL, old.SubURL); !ok {
			return errKeepPassword("mainUrl")
		}
		// The sub-stream usually shares the main stream's credentials.
		if c.SubURL, ok = KeepPassword(c.SubURL, old.SubURL, old.MainURL); !ok {
			return errKeepPassword("subUrl")
		}
		if err := validateIn(ctx, tx, c); err != nil {
			return err
		}
		tags, mainURL, subURL, err := r.cameraRow(c)
		if err != nil {
			return err
		}
		gb := gbColumns(c)
		_, err = tx.Exec(ctx, `UPDATE cameras SET name = ?, department = ?, lat = ?, lng = ?, address = ?,
			main_url = ?, sub_url = ?, transport = ?, record = ?, retention_days = ?, enabled = ?, tags = ?, updated_ns = ?,
			source = ?, gb_device = ?, gb_channel = ?, gb_ptz = ?, gb_missing = ?
			WHERE id = ?`,
			c.Name, c.Department, c.Location.Lat, c.Location.Lng, c.Location.Address,
			mainURL, subURL, c.Transport, c.Record, c.RetentionDays, c.Enabled, tags, r.now().UnixNano(),
			c.Source, gb.Device, gb.Channel, gb.PTZ, gb.Missing, c.ID)
		if err != nil {
			return fmt.Errorf("update camera %q: %w", c.ID, err)
		}
		return nil
	})
	return c, before, err
}

// DeleteCamera removes a camera and returns it as it was.
func (r *Registry) DeleteCamera(ctx context.Context, id string) (ingest.Camera, error) {
	var c ingest.Camera
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		var err error
		if c, err = r.getCamera(ctx, tx, id, tx.Dialect.ForUpdate()); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM cameras WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete camera %q: %w", id, err)
		}
		return nil
	})
	return c, err
}

// ImportCameras adds all cameras or none. rows[i] is the CSV row of
// cams[i] for error messages (nil: 1-based positions). A camera whose id
// exists already is an error of its row. prior are errors found before
// (ReadCamerasCSV's): they are reported with the others, sorted by row.
func (r *Registry) ImportCameras(ctx context.Context, cams []ingest.Camera, rows []int, prior ...FieldError) error {
	rowOf := func(i int) int {
		if i < len(rows) {
			return rows[i]
		}
		return i + 1
	}
	return r.inTx(ctx, func(tx *sqldb.Tx) error {
		depts, err := departmentSet(ctx, tx)
		if err != nil {
			return err
		}
		var errs []FieldError
		seen := map[string]int{}
		for i := range cams {
			NormalizeCamera(&cams[i])
			c := cams[i]
			for _, fe := range ValidateCamera(c, func(id string) bool { return depts[id] }) {
				fe.Row = rowOf(i)
				errs = append(errs, fe)
			}
			if c.ID == "" {
				continue
			}
			if prev, dup := seen[c.ID]; dup {
				errs = append(errs, FieldError{Row: rowOf(i), Field: "id", Message: fmt.Sprintf("%q is also on row %d", c.ID, prev)})
				continue
			}
			seen[c.ID] = rowOf(i)
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM cameras WHERE id = ?`, c.ID).Scan(&n); err != nil {
				return fmt.Errorf("import: %w", err)
			}
			if n > 0 {
				errs = append(errs, FieldError{Row: rowOf(i), Field: "id", Message: fmt.Sprintf("camera %q already exists", c.ID), Taken: true})
			}
		}
		if len(errs)+len(prior) > 0 {
			return &ValidationError{Errors: byRow(append(prior, errs...))}
		}
		for i := range cams {
			if err := r.insertCamera(ctx, tx, &cams[i]); err != nil {
				return fmt.Errorf("import: %w", err)
			}
		}
		return nil
	})
}
