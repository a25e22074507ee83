// Package sqldb opens the database a server keeps its state in:
// PostgreSQL when DATABASE_URL names one, otherwise an embedded SQLite
// file in DATA_DIR. It tunes the pool, bounds every call by DB_TIMEOUT,
// applies the server's embedded migrations and tells an unavailable
// database from a bug.
//
// It speaks its own sentinel errors (ErrUnavailable, ErrTimeout) and
// predicates (Unique); each store maps them to its domain's errors, and
// keeps its GORM row types to itself.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// The dialects, as Dialect reports them; each also names the directory of
// its migrations.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// DefaultTimeout bounds a database call when Config.Timeout is 0.
const DefaultTimeout = 5 * time.Second

// Config selects and tunes the database.
type Config struct {
	// DatabaseURL (DATABASE_URL) selects PostgreSQL; it must start with
	// postgres:// or postgresql://. Empty selects SQLite in DataDir.
	DatabaseURL string
	// DataDir (DATA_DIR) holds the SQLite file; unused with PostgreSQL.
	DataDir string
	// FileName is the SQLite file's name inside DataDir, e.g. "auth.db".
	FileName string
	// Timeout (DB_TIMEOUT) bounds every call made through Bound, so that
	// a dead database turns into an error rather than a hung request; 0
	// means DefaultTimeout.
	Timeout time.Duration
	// Migrations is the schema Open migrates the database to.
	Migrations Migrations
}

// DB is an open, migrated database. It is safe for concurrent use.
type DB struct {
	gorm    *gorm.DB
	sql     *sql.DB
	dialect string
	timeout time.Duration
}

// Open connects to the configured database, checks that it answers
// within cfg.Timeout and migrates it to the latest schema version. An
// error that means "try again later" wraps ErrUnavailable.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if err := cfg.Migrations.valid(); err != nil {
		return nil, err
	}
	var (
		dialector gorm.Dialector
		dialect   string
		path      string
	)
	switch {
	case cfg.DatabaseURL == "":
		if cfg.FileName == "" {
			return nil, errors.New("sqldb: Config.FileName is empty")
		}
		if cfg.DataDir == "" {
			return nil, errors.New("sqldb: DATA_DIR is empty; SQLite needs a directory for " + cfg.FileName)
		}
		path = filepath.Join(cfg.DataDir, cfg.FileName)
		if err := privateFiles(cfg.DataDir, path); err != nil {
			return nil, err
		}
		dialect, dialector = SQLite, sqlite.Open(sqliteDSN(path))
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		dialect, dialector = Postgres, postgres.Open(cfg.DatabaseURL)
	default:
		return nil, errors.New("sqldb: DATABASE_URL must start with postgres:// or postgresql://")
	}

	g, err := gorm.Open(dialector, &gorm.Config{
		Logger: logger.Discard,
		// GORM's own ping has no deadline and would wait for the driver's
		// connect timeout; ours below honours cfg.Timeout.
		DisableAutomaticPing: true,
		// Writes that need a transaction open one themselves; GORM's
		// implicit one around single statements only adds round trips
		// and SQLite lock upgrades.
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("sqldb: open %s: %w", dialect, err)
	}
	sqlDB, err := g.DB()
	if err != nil {
		return nil, fmt.Errorf("sqldb: open %s: %w", dialect, err)
	}
	if dialect == SQLite {
		// SQLite has one writer at a time; a few connections let reads
		// proceed under WAL while busy_timeout queues the writers.
		sqlDB.SetMaxOpenConns(4)
		sqlDB.SetMaxIdleConns(4)
	} else {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(5)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	db := &DB{gorm: g, sql: sqlDB, dialect: dialect, timeout: cfg.Timeout}
	err = db.Ping(ctx)
	if err == nil {
		err = db.migrate(ctx, cfg.Migrations)
	}
	if err == nil && dialect == SQLite {
		err = privateSidecars(path)
	}
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return db, nil
}

// Gorm returns the GORM handle, for the store's queries. Bound each call
// with Bound and pass its errors through Classify.
func (db *DB) Gorm() *gorm.DB { return db.gorm }

// Dialect returns SQLite or Postgres.
func (db *DB) Dialect() string { return db.dialect }

// Timeout returns the bound of one call (Config.Timeout), for a store
// that gives a long one-off a multiple of it.
func (db *DB) Timeout() time.Duration { return db.timeout }

// Bound limits one database call to Config.Timeout, with ErrTimeout as
// the deadline's cause, so that Classify tells it from the caller's own.
func (db *DB) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, db.timeout, ErrTimeout)
}

// Ping checks that the database answers within Config.Timeout.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := db.Bound(ctx)
	defer cancel()
	if err := db.sql.PingContext(ctx); err != nil {
		return fmt.Errorf("sqldb: ping: %w", Classify(ctx, err))
	}
	return nil
}

// Close closes the pool. Calls after Close fail with ErrUnavailable.
func (db *DB) Close() error { return db.sql.Close() }
