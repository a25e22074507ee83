package sqldb

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Migrations is a server's versioned schema.
type Migrations struct {
	// FS holds one directory per dialect, "sqlite" and "postgres", of
	// files named <version>_<description>.sql, version a positive number.
	// A released version is never edited; a change is a new file with
	// the next version in both directories.
	FS fs.FS
	// Table records the applied versions. Servers that may share one
	// PostgreSQL database need distinct tables: sharing one, each would
	// take the other's versions for its own.
	Table string
	// LockID is the PostgreSQL advisory lock that serialises migrations
	// when several instances start at once; distinct per server.
	LockID int64
}

// identifier is what Table may be, since it is spliced into SQL.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (m Migrations) valid() error {
	if m.FS == nil {
		return errors.New("sqldb: Migrations.FS is nil")
	}
	if !identifier.MatchString(m.Table) {
		return fmt.Errorf("sqldb: Migrations.Table %q is not an SQL identifier", m.Table)
	}
	return nil
}

// Check reads the migrations of both dialects and reports a misnamed
// file, a duplicate version, or a version that one dialect lacks. A
// server's tests call it, so that a migration written for one dialect
// only fails there rather than in a deployment on the other.
func (m Migrations) Check() error {
	if err := m.valid(); err != nil {
		return err
	}
	lite, err := m.load(SQLite)
	if err != nil {
		return err
	}
	pg, err := m.load(Postgres)
	if err != nil {
		return err
	}
	if a, b := versions(lite), versions(pg); !slices.Equal(a, b) {
		return fmt.Errorf("sqldb: migrations differ between dialects: sqlite has versions %v, postgres %v", a, b)
	}
	return nil
}

type migration struct {
	version int64
	name    string
	sql     string
}

func versions(all []migration) []int64 {
	out := make([]int64, len(all))
	for i, m := range all {
		out[i] = m.version
	}
	return out
}

// migrate applies all migrations newer than the recorded version, in one
// transaction: either the schema moves to the latest version or it stays
// where it was.
func (db *DB) migrate(ctx context.Context, m Migrations) error {
	all, err := m.load(db.dialect)
	if err != nil {
		return err
	}
	// Several statements, maybe behind another instance's lock: more
	// time than one call.
	ctx, cancel := context.WithTimeoutCause(ctx, 4*db.timeout, ErrTimeout)
	defer cancel()
	err = db.gorm.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		if db.dialect == Postgres {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", m.LockID).Error; err != nil {
				return err
			}
		}
		if err := tx.Exec(`CREATE TABLE IF NOT EXISTS ` + m.Table + ` (
			version    BIGINT PRIMARY KEY,
			applied_at TIMESTAMP NOT NULL)`).Error; err != nil {
			return err
		}
		var current int64
		if err := tx.Raw("SELECT COALESCE(MAX(version), 0) FROM " + m.Table).Scan(&current).Error; err != nil {
			return err
		}
		for _, mig := range all {
			if mig.version <= current {
				continue
			}
			for _, stmt := range statements(mig.sql) {
				if err := tx.Exec(stmt).Error; err != nil {
					return fmt.Errorf("migration %s: %w", mig.name, err)
				}
			}
			if err := tx.Exec("INSERT INTO "+m.Table+" (version, applied_at) VALUES (?, ?)",
				mig.version, time.Now().UTC()).Error; err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqldb: migrate: %w", Classify(ctx, err))
	}
	return nil
}

// load reads the dialect's migrations, sorted by version.
func (m Migrations) load(dialect string) ([]migration, error) {
	entries, err := fs.ReadDir(m.FS, dialect)
	if err != nil {
		return nil, fmt.Errorf("sqldb: migrations: %w", err)
	}
	var all []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v <= 0 || e.IsDir() {
			return nil, fmt.Errorf("sqldb: migration %s/%s: name must start with a positive version number", dialect, e.Name())
		}
		b, err := fs.ReadFile(m.FS, path.Join(dialect, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("sqldb: migrations: %w", err)
		}
		all = append(all, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(all, func(a, b migration) int { return cmp.Compare(a.version, b.version) })
	for i := 1; i < len(all); i++ {
		if all[i].version == all[i-1].version {
			return nil, fmt.Errorf("sqldb: duplicate migration version %d (%s/%s, %s/%s)",
				all[i].version, dialect, all[i-1].name, dialect, all[i].name)
		}
	}
	return all, nil
}

// statements splits a migration into single statements, because not every
// driver runs several in one call. Migrations hold no ';' in literals or
// comments.
func statements(sql string) []string {
	var out []string
	for _, s := range strings.Split(sql, ";") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
