// Package store keeps accounts in PostgreSQL or, by default, in an
// embedded SQLite file, through GORM. It is the only package that knows
// about GORM, SQL and driver errors; it speaks the users package's types
// and sentinel errors to the rest of the service.
package store

import (
	"context"
	"errors"
	"fmt"
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
		if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("store: create data dir: %w", err)
		}
		dialect, dialector = "sqlite", sqlite.Open(sqliteDSN(filepath.Join(cfg.DataDir, "auth.db")))
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
	return s, nil
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

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	sqlDB, err := s.db.DB()
	if err != nil {
		return classify(err)
	}
	return classify(sqlDB.PingContext(ctx))
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
