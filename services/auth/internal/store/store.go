// Package store keeps accounts in PostgreSQL or, by default, in an
// embedded SQLite file, through GORM. It is the only package that knows
// about GORM, SQL and driver errors; it speaks the users package's types
// and sentinel errors to the rest of the service.
package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/glebarez/sqlite"
	"gorm.io/driver/postgres"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

// Config selects and tunes the database.
type Config struct {
	// DatabaseURL selects PostgreSQL (postgres:// or postgresql://); empty
	// selects SQLite in DataDir/auth.db.
	DatabaseURL string
	DataDir     string
	// Timeout bounds every database call, so that a dead database turns
	// into an error rather than a hung request.
	Timeout time.Duration
}

// Store is a GORM-backed account store. It is safe for concurrent use.
type Store struct {
	db      *gorm.DB
	dialect string // "postgres" or "sqlite"; also the migrations directory
	timeout time.Duration
}

// Open connects to the configured database and migrates it to the latest
// schema version.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	var (
		dialector gorm.Dialector
		dialect   string
	)
	switch {
	case cfg.DatabaseURL == "":
		path := filepath.Join(cfg.DataDir, "auth.db")
		if err := privateFiles(cfg.DataDir, path); err != nil {
			return nil, err
		}
		dialect, dialector = "sqlite", sqlite.Open(sqliteDSN(path))
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		dialect, dialector = "postgres", postgres.Open(cfg.DatabaseURL)
	default:
		return nil, errors.New("store: DATABASE_URL must start with postgres:// or postgresql://")
	}

	db, err := gorm.Open(dialector, &gorm.Config{
		Logger: logger.Discard,
		// GORM's own ping has no deadline and would wait for the driver's
		// connect timeout; ours below honours cfg.Timeout.
		DisableAutomaticPing: true,
		TranslateError:       true,
		// Every write is a single statement; GORM's implicit transaction
		// around it would only add round trips and SQLite lock upgrades.
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", dialect, err)
	}
	s := &Store{db: db, dialect: dialect, timeout: cfg.Timeout}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	if dialect == "sqlite" {
		// SQLite has one writer at a time; a few connections let reads
		// proceed under WAL while busy_timeout queues the writers.
		sqlDB.SetMaxOpenConns(4)
		sqlDB.SetMaxIdleConns(4)
	} else {
		sqlDB.SetMaxOpenConns(20)
		sqlDB.SetMaxIdleConns(5)
		sqlDB.SetConnMaxIdleTime(5 * time.Minute)
	}
	if err := s.Ping(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if err := s.migrate(ctx); err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	if dialect == "sqlite" {
		// SQLite gives its -wal and -shm files the database file's mode,
		// but files left by an older version may be wider.
		path := filepath.Join(cfg.DataDir, "auth.db")
		for _, f := range []string{path + "-wal", path + "-shm"} {
			if err := os.Chmod(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
				_ = sqlDB.Close()
				return nil, fmt.Errorf("store: %w", err)
			}
		}
	}
	return s, nil
}

// privateFiles makes dir (mode 0700) and the database file at path (mode
// 0600) readable by the service's user only: the file holds password
// hashes. Existing ones are tightened too.
func privateFiles(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store: create data dir: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("store: data dir: %w", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("store: database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store: database file: %w", err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("store: database file: %w", err)
	}
	return nil
}

// sqliteDSN sets the pragmas on every pooled connection: WAL so readers
// don't block the writer, busy_timeout so concurrent writers wait instead
// of failing with SQLITE_BUSY, and immediate transactions so a transaction
// takes the write lock up front instead of failing on upgrade.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)&_txlock=immediate"
}

// Dialect returns "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

// ErrTimeout is wrapped, together with users.ErrUnavailable, in the
// error of a call that ran out of Config.Timeout (DB_TIMEOUT), as opposed
// to a call whose caller's own context ended first.
var ErrTimeout = errors.New("database call exceeded DB_TIMEOUT")

// bound limits one database call to s.timeout; classify tells that
// deadline from the caller's.
func (s *Store) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, s.timeout, ErrTimeout)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err != nil {
		return classify(ctx, err)
	}
	return classify(ctx, sqlDB.PingContext(ctx))
}

// Close closes the database. Calls after Close fail with
// users.ErrUnavailable.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}
