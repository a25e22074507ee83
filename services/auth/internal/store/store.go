// Package store keeps accounts in PostgreSQL or, by default, in an
// embedded SQLite file, through GORM. It is the only package that knows
// about GORM, SQL and driver errors; it speaks the users package's types
// and sentinel errors to the rest of the service. Opening, migrating and
// telling an outage from a bug are sqldb's.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
	"github.com/grpcchatter/grpcchatter/services/auth/migrations"
)

// schema is the auth service's. Its version table is the usual
// schema_migrations, which the chat service leaves to it; the advisory
// lock serialises migrations when several auth instances start at once.
var schema = sqldb.Migrations{FS: migrations.FS, Table: "schema_migrations", LockID: 0x61757468} // "auth"

// Config selects and tunes the database.
type Config struct {
	// DatabaseURL selects PostgreSQL (postgres:// or postgresql://); empty
	// selects SQLite in DataDir/auth.db.
	DatabaseURL string
	DataDir     string
	// Timeout bounds every database call, so that a dead database turns
	// into an error rather than a hung request; 0 means 5 s.
	Timeout time.Duration
}

// ErrTimeout is wrapped, together with users.ErrUnavailable, in the
// error of a call that ran out of Config.Timeout (DB_TIMEOUT), as opposed
// to a call whose caller's own context ended first.
var ErrTimeout = sqldb.ErrTimeout

// Store is a GORM-backed account store. It is safe for concurrent use.
type Store struct {
	pool   *sqldb.DB
	db     *gorm.DB
	health writeHealth
}

// Open connects to the configured database and migrates it to the latest
// schema version.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	pool, err := sqldb.Open(ctx, sqldb.Config{
		DatabaseURL: cfg.DatabaseURL,
		DataDir:     cfg.DataDir,
		FileName:    "auth.db",
		Timeout:     cfg.Timeout,
		Migrations:  schema,
	})
	if err != nil {
		return nil, unavailable(err)
	}
	return &Store{pool: pool, db: pool.Gorm(), health: writeHealth{interval: probeInterval}}, nil
}

// Dialect returns "postgres" or "sqlite".
func (s *Store) Dialect() string { return s.pool.Dialect() }

// Ping checks that the database answers and that writes work: after a
// write failed for lack of space (a full disk, SQLITE_FULL, PostgreSQL's
// disk_full) it fails with users.ErrUnavailable until a write succeeds
// again, probing with a write of its own at most once a second meanwhile.
func (s *Store) Ping(ctx context.Context) error {
	if err := unavailable(s.pool.Ping(ctx)); err != nil {
		return err
	}
	return s.writable(ctx)
}

// Close closes the database. Calls after Close fail with
// users.ErrUnavailable.
func (s *Store) Close() error { return s.pool.Close() }

// classify maps driver errors to the users sentinels: a unique violation
// to users.ErrNameTaken, a missing row to users.ErrNotFound, and what
// sqldb.Classify finds to be an outage (our own DB_TIMEOUT, a connection,
// busy or closed database) to users.ErrUnavailable, since retrying later
// is the right answer to it. A caller that gave up gets its
// context.Canceled back; anything else is a bug or a broken schema and
// stays an unclassified error (a 500).
func classify(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case sqldb.Unique(err):
		return fmt.Errorf("%w: %w", users.ErrNameTaken, err)
	case errors.Is(err, gorm.ErrRecordNotFound):
		return users.ErrNotFound
	}
	return unavailable(sqldb.Classify(ctx, err))
}

// unavailable adds users.ErrUnavailable to an error that sqldb found to
// mean "try again later".
func unavailable(err error) error {
	if errors.Is(err, sqldb.ErrUnavailable) {
		return fmt.Errorf("%w: %w", users.ErrUnavailable, err)
	}
	return err
}
