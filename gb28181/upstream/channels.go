package upstream

import (
	"context"
	"embed"
	"fmt"
	"sync"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Kinds of the IDs Channels makes (GB/T 28181-2016 Annex D type codes).
const (
	KindCamera     = 131 // a camera that has no GB/T 28181 ID of its own
	KindVirtualOrg = 216 // a department
)

// migrationFiles are the ID table's migrations (migrations/sqlite,
// migrations/postgres). SQLite file 1 is the step sqlitedb.Migrate ran as
// component "gb28181_upstream" (Legacy): such databases are adopted.
//
//go:embed migrations
var migrationFiles embed.FS

// maxAllocTries bounds the tries of one allocation that lost to others.
const maxAllocTries = 100

// Channels keeps the 20-digit IDs Vigil shows upper platforms for what has
// none of its own: <realm><kind><7-digit serial>, allocated once and kept
// in the database, so that an upper platform's bookmarks survive restarts.
type Channels struct {
	db    *sqldb.DB
	realm string

	mu    sync.Mutex
	cache map[string]string
	back  map[string]string // ID → key
}

// OpenChannels opens (and creates) the table in db; realm is the 10-digit
// prefix of the IDs.
func OpenChannels(ctx context.Context, db *sqldb.DB, realm string) (*Channels, error) {
	if len(realm) != 10 {
		return nil, fmt.Errorf("gb28181 upstream ids: realm %q is not 10 digits", realm)
	}
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "gb28181_upstream", FS: migrationFiles, Dir: "migrations", Legacy: "gb28181_upstream"}); err != nil {
		return nil, fmt.Errorf("gb28181 upstream ids: %w", err)
	}
	c := &Channels{db: db, realm: realm, cache: map[string]string{}, back: map[string]string{}}
	rows, err := db.Query(ctx, `SELECT key, kind, serial FROM gb28181_upstream_ids`)
	if err != nil {
		return nil, fmt.Errorf("gb28181 upstream ids: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var key string
		var kind, serial int
		if err := rows.Scan(&key, &kind, &serial); err != nil {
			return nil, fmt.Errorf("gb28181 upstream ids: %w", err)
		}
		c.put(key, c.format(kind, serial))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("gb28181 upstream ids: %w", err)
	}
	return c, nil
}

func (c *Channels) format(kind, serial int) string {
	return fmt.Sprintf("%s%03d%07d", c.realm, kind, serial)
}

func (c *Channels) put(key, id string) {
	c.cache[key] = id
	c.back[id] = key
}

// Camera returns the channel ID of a camera without a GB/T 28181 ID,
// allocating it the first time.
func (c *Channels) Camera(ctx context.Context, cameraID string) (string, error) {
	return c.id(ctx, "camera:"+cameraID, KindCamera)
}

// Department returns the virtual organisation ID of a department.
func (c *Channels) Department(ctx context.Context, dept string) (string, error) {
	return c.id(ctx, "department:"+dept, KindVirtualOrg)
}

// BusinessGroup is the one business group (type 215) under which Vigil
// lists its departments.
func (c *Channels) BusinessGroup() string { return c.format(215, 1) }

// Lookup returns the key ("camera:<id>" or "department:<id>") an ID was
// allocated for.
func (c *Channels) Lookup(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.back[id]
	return k, ok
}

func (c *Channels) id(ctx context.Context, key string, kind int) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if id, ok := c.cache[key]; ok {
		return id, nil
	}
	// One statement allocates the next serial of the kind, or returns the
	// key's serial when it has one. Two processes sharing a PostgreSQL
	// database may both read the same largest serial: the second insert
	// then breaks UNIQUE(kind, serial) and is tried again, with the serial
	// the first one took now visible (on SQLite the statement holds the
	// write lock: it never happens). Each failure is another allocation's
	// success, so the tries are bounded only against a bug.
	var serial int
	var err error
	for range maxAllocTries {
		err = c.db.QueryRow(ctx, `INSERT INTO gb28181_upstream_ids(key, kind, serial)
			VALUES(?, ?, (SELECT COALESCE(MAX(serial), 0) + 1 FROM gb28181_upstream_ids WHERE kind = ?))
			ON CONFLICT(key) DO UPDATE SET key = excluded.key
			RETURNING serial`, key, kind, kind).Scan(&serial)
		if !c.db.Dialect.IsUniqueViolation(err) {
			break
		}
	}
	if err != nil {
		return "", fmt.Errorf("gb28181 upstream ids: allocate %s: %w", key, err)
	}
	if serial > 9999999 {
		return "", fmt.Errorf("gb28181 upstream ids: allocate %s: all 9999999 serials of type %d are used", key, kind)
	}
	id := c.format(kind, serial)
	c.put(key, id)
	return id, nil
}
