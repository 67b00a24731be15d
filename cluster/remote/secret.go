package remote

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"fmt"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

//go:embed migrations
var migrationFiles embed.FS

// LoadSecret returns the cluster's secret, which every node reads from the
// shared database: the first node to start makes it (32 random bytes), the
// others find it. It migrates the secret's table first.
func LoadSecret(ctx context.Context, db *sqldb.DB) ([]byte, error) {
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "cluster_remote", FS: migrationFiles, Dir: "migrations"}); err != nil {
		return nil, err
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return nil, err
	}
	// Nodes starting together: one insert wins, every node reads the winner.
	if _, err := db.Exec(ctx, `INSERT INTO cluster_secret(id, secret) VALUES(1, ?) ON CONFLICT (id) DO NOTHING`, hex.EncodeToString(b)); err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	var s string
	if err := db.QueryRow(ctx, `SELECT secret FROM cluster_secret WHERE id = 1`).Scan(&s); err != nil {
		return nil, fmt.Errorf("cluster secret: %w", err)
	}
	secret, err := hex.DecodeString(s)
	if err != nil || len(secret) < 16 {
		return nil, fmt.Errorf("cluster secret: the stored secret is not 16 or more bytes of hex")
	}
	return secret, nil
}
