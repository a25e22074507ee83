// Package sqlstore keeps the room registry and the message log in
// PostgreSQL or, by default, in an embedded SQLite file, through GORM. One
// *Store is both the engine's Registry and its Log. It is the only package
// of the chat service that knows about GORM, SQL and driver errors; it
// speaks the rooms package's types and sentinel errors to the rest.
package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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

// FileName is the SQLite database's name inside Config.DataDir.
const FileName = "chat.db"

// Config selects and tunes the database.
type Config struct {
	// DatabaseURL selects PostgreSQL (postgres:// or postgresql://); empty
	// selects SQLite in DataDir/chat.db.
	DatabaseURL string
	// DataDir holds the SQLite database (DATA_DIR); unused with
	// PostgreSQL.
	DataDir string
	// Timeout bounds every database call, so that a dead database turns
	// into an error rather than a hung request; 0 means 5 s.
	Timeout time.Duration
	// Retain is how many of each room's latest messages the log keeps at
	// least; it keeps up to 63 more, since trimming is batched.
	Retain int
}

// Store is a GORM-backed registry and message log. It is safe for
// concurrent use, also by several processes on one PostgreSQL database.
type Store struct {
	db      *gorm.DB
	dialect string // "postgres" or "sqlite"; also the migrations directory
	timeout time.Duration
	retain  int
	epoch   string
}

// Open connects to the configured database, migrates it to the latest
// schema version and reads the log's epoch, making it on first use.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	if cfg.Retain < 1 {
		return nil, fmt.Errorf("sqlstore: Retain is %d; the log must keep at least one message per room", cfg.Retain)
	}
	var (
		dialector gorm.Dialector
		dialect   string
		path      string
	)
	switch {
	case cfg.DatabaseURL == "":
		if cfg.DataDir == "" {
			return nil, errors.New("sqlstore: DATA_DIR is empty; SQLite needs a directory for " + FileName)
		}
		path = filepath.Join(cfg.DataDir, FileName)
		if err := privateFiles(cfg.DataDir, path); err != nil {
			return nil, err
		}
		dialect, dialector = "sqlite", sqlite.Open(sqliteDSN(path))
	case strings.HasPrefix(cfg.DatabaseURL, "postgres://"), strings.HasPrefix(cfg.DatabaseURL, "postgresql://"):
		dialect, dialector = "postgres", postgres.Open(cfg.DatabaseURL)
	default:
		return nil, errors.New("sqlstore: DATABASE_URL must start with postgres:// or postgresql://")
	}

	db, err := gorm.Open(dialector, &gorm.Config{
		Logger: logger.Discard,
		// GORM's own ping has no deadline; ours below honours cfg.Timeout.
		DisableAutomaticPing: true,
		// Writes that need a transaction open one themselves; GORM's
		// implicit one around single statements only adds round trips.
		SkipDefaultTransaction: true,
		NowFunc:                func() time.Time { return time.Now().UTC() },
	})
	if err != nil {
		return nil, fmt.Errorf("sqlstore: open %s: %w", dialect, err)
	}
	s := &Store{db: db, dialect: dialect, timeout: cfg.Timeout, retain: cfg.Retain}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: %w", err)
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
	err = s.Ping(ctx)
	if err == nil {
		err = s.migrate(ctx)
	}
	if err == nil {
		err = s.loadEpoch(ctx)
	}
	if err == nil && dialect == "sqlite" {
		err = privateSidecars(path)
	}
	if err != nil {
		_ = sqlDB.Close()
		return nil, err
	}
	return s, nil
}

// privateFiles makes dir and the database file at path readable by the
// service's user only, since the file holds room password hashes. Modes
// are narrowed, never widened: a directory made read-only on purpose
// stays so, and Open fails on it rather than writing.
func privateFiles(dir, path string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("sqlstore: DATA_DIR %s: %w", dir, err)
	}
	if err := narrow(dir, 0o700); err != nil {
		return fmt.Errorf("sqlstore: DATA_DIR %s: %w", dir, err)
	}
	// SQLite makes its -wal and -shm files next to the database: a
	// directory it cannot write to fails later, and less clearly.
	probe, err := os.CreateTemp(dir, ".chat-probe-*")
	if err != nil {
		return fmt.Errorf("sqlstore: DATA_DIR %s must be writable, for SQLite's journal: %w", dir, err)
	}
	probe.Close()
	if err := os.Remove(probe.Name()); err != nil {
		return fmt.Errorf("sqlstore: DATA_DIR %s: %w", dir, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("sqlstore: database file: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlstore: database file: %w", err)
	}
	if err := narrow(path, 0o600); err != nil {
		return fmt.Errorf("sqlstore: database file: %w", err)
	}
	return nil
}

// privateSidecars narrows SQLite's -wal and -shm files, which it makes
// with the database file's mode but which an older version may have left
// wider.
func privateSidecars(path string) error {
	for _, f := range []string{path + "-wal", path + "-shm"} {
		if err := narrow(f, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlstore: %w", err)
		}
	}
	return nil
}

// narrow clears the permission bits of path outside mask.
func narrow(path string, mask os.FileMode) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&^mask != 0 {
		return os.Chmod(path, perm&mask)
	}
	return nil
}

// sqliteDSN sets the pragmas on every pooled connection: WAL so readers
// don't block the writer, busy_timeout so concurrent writers wait instead
// of failing with SQLITE_BUSY, and immediate transactions so that a
// transaction takes the write lock up front: its reads (a room's head, an
// owner's count) then cannot go stale before it writes.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// loadEpoch reads the log's epoch, making it if this is a new database.
// It is made once and kept, so that sequences stay valid across restarts
// for as long as the messages do.
func (s *Store) loadEpoch(ctx context.Context) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var e [8]byte
	_, _ = rand.Read(e[:]) // crypto/rand.Read never fails (Go 1.24+)
	db := s.db.WithContext(ctx)
	// DO NOTHING: when instances start together, the first one's epoch wins.
	err := db.Exec("INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO NOTHING",
		hex.EncodeToString(e[:])).Error
	if err == nil {
		err = db.Raw("SELECT value FROM meta WHERE key = 'epoch'").Scan(&s.epoch).Error
	}
	if err != nil {
		return fmt.Errorf("sqlstore: epoch: %w", classify(ctx, err))
	}
	return nil
}

// Dialect returns "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.dialect }

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
	if err := sqlDB.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlstore: ping: %w", classify(ctx, err))
	}
	return nil
}

// Close closes the database. Calls after Close fail with
// rooms.ErrUnavailable.
func (s *Store) Close() error {
	sqlDB, err := s.db.DB()
	if err != nil {
		return err
	}
	return sqlDB.Close()
}
