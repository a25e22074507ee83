// Package sqlstore keeps the room registry and the message log in
// PostgreSQL or, by default, in an embedded SQLite file, through GORM. One
// *Store is both the engine's Registry and its Log. It is the only package
// of the chat service that knows about GORM, SQL and driver errors; it
// speaks the rooms package's types and sentinel errors to the rest.
// Opening, migrating and telling an outage from a bug are sqldb's.
package sqlstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/migrations"
)

// FileName is the SQLite database's name inside Config.DataDir.
const FileName = "chat.db"

// schema is the chat service's. Its version table is not the usual
// schema_migrations because the auth service keeps that one, and both
// services may well be pointed at one PostgreSQL database; the advisory
// lock serialises migrations when several chat instances start at once.
var schema = sqldb.Migrations{FS: migrations.FS, Table: "chat_schema_migrations", LockID: 0x63686174} // "chat"

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
	pool   *sqldb.DB
	db     *gorm.DB
	retain int
	epoch  string
}

// Open connects to the configured database, migrates it to the latest
// schema version and reads the log's epoch, making it on first use.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Retain < 1 {
		return nil, fmt.Errorf("sqlstore: Retain is %d; the log must keep at least one message per room", cfg.Retain)
	}
	pool, err := sqldb.Open(ctx, sqldb.Config{
		DatabaseURL: cfg.DatabaseURL,
		DataDir:     cfg.DataDir,
		FileName:    FileName,
		Timeout:     cfg.Timeout,
		Migrations:  schema,
	})
	if err != nil {
		return nil, unavailable(err)
	}
	s := &Store{pool: pool, db: pool.Gorm(), retain: cfg.Retain}
	if err := s.loadEpoch(ctx); err != nil {
		_ = pool.Close()
		return nil, err
	}
	return s, nil
}

// loadEpoch reads the log's epoch, making it if this is a new database.
// It is made once and kept, so that sequences stay valid across restarts
// for as long as the messages do.
func (s *Store) loadEpoch(ctx context.Context) error {
	ctx, cancel := s.pool.Bound(ctx)
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
func (s *Store) Dialect() string { return s.pool.Dialect() }

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return unavailable(s.pool.Ping(ctx)) }

// Close closes the database. Calls after Close fail with
// rooms.ErrUnavailable.
func (s *Store) Close() error { return s.pool.Close() }
