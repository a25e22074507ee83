package sqlstore

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/services/chat/migrations"
)

// migrationLockID is the PostgreSQL advisory lock that serialises
// migrations when several chat instances start at once.
const migrationLockID = 0x63686174 // "chat"

// versionTable records the applied migrations. It is not the usual
// schema_migrations because the auth service keeps that one, and both
// services may well be pointed at one PostgreSQL database: sharing it,
// each would take the other's versions for its own.
const versionTable = "chat_schema_migrations"

type migration struct {
	version int64
	name    string
	sql     string
}

// migrate applies all embedded migrations newer than the recorded version,
// in one transaction: either the schema moves to the latest version or it
// stays where it was.
func (s *Store) migrate(ctx context.Context) error {
	all, err := load(s.dialect)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, 4*s.timeout, ErrTimeout)
	defer cancel()
	err = s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if s.dialect == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", migrationLockID).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS ` + versionTable + ` (
			version    BIGINT PRIMARY KEY,
			applied_at TIMESTAMP NOT NULL)`).Error; err != nil {
			return err
		}
		var current int64
		if err := tx.Raw("SELECT COALESCE(MAX(version), 0) FROM " + versionTable).Scan(&current).Error; err != nil {
			return err
		}
		for _, m := range all {
			if m.version <= current {
				continue
			}
			for _, stmt := range statements(m.sql) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %s: %w", m.name, err)
				}
			}
			if err := tx.Exec("INSERT INTO "+versionTable+" (version, applied_at) VALUES (?, ?)",
				m.version, time.Now().UTC()).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlstore: migrate: %w", classify(ctx, err))
	}
	return nil
}

// load reads the dialect's migrations, sorted by version.
func load(dialect string) ([]migration, error) {
	entries, err := fs.ReadDir(migrations.FS, dialect)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: migrations: %w", err)
	}
	var all []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("sqlstore: migration %s/%s: name must start with a positive version number", dialect, e.Name())
		}
		b, err := fs.ReadFile(migrations.FS, path.Join(dialect, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqlstore: migrations: %w", err)
		}
		all = append(all, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].version < all[j].version })
	for i := 1; i < len(all); i++ {
		if all[i].version == all[i-1].version {
			return nil, fmt.Errorf("sqlstore: duplicate migration version %d", all[i].version)
		}
	}
	return all, nil
}

// statements splits a migration into single statements, because not every
// driver runs several in one call. Our migrations hold no ';' in literals
// or comments.
func statements(sql string) []string {
	var out []string
	for _, s := range strings.Split(sql, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
