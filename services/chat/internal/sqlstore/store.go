// Package sqlstore keeps the room registry and the message log in
// PostgreSQL or, by default, in an embedded SQLite file, through GORM. One
// *Store is both the engine's Registry and its Log. It is the only package
// of the chat service that knows about GORM, SQL and driver errors; it
// speaks the rooms package's types and sentinel errors to the rest.
// Opening, migrating and telling an outage from a bug are sqldb's.
package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
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
	// least. It keeps more: trimming happens every 64 messages of a room,
	// and a chunk that straddles the cut is kept whole.
	Retain int
}

// Store is a GORM-backed registry and message log. It is safe for
// concurrent use; several processes may share one PostgreSQL database
// (the contract suites check it), but the chat service runs one engine
// per database (see Claim), since an engine sequences in memory.
type Store struct {
	pool   *sqldb.DB
	db     *gorm.DB
	sql    *sql.DB     // the same pool, for the log's prepared statements
	stmts  *statements // the log's hot path
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
	if s.sql, err = s.db.DB(); err == nil {
		s.stmts, err = prepareStatements(ctx, s.sql, pool.Dialect())
	}
	if err != nil {
		_ = pool.Close()
		return nil, fmt.Errorf("sqlstore: prepare: %w", classify(ctx, err))
	}
	return s, nil
}

// loadEpoch reads the log's epoch, making it if this is a new database.
// It is made once and kept, so that sequences stay valid across restarts
// for as long as the messages do.
func (s *Store) loadEpoch(ctx context.Context) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	db := s.db.WithContext(ctx)
	// DO NOTHING: when instances start together, the first one's epoch wins.
	err := db.Exec("INSERT INTO meta (key, value) VALUES ('epoch', ?) ON CONFLICT (key) DO NOTHING",
		rooms.NewEpoch()).Error
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

// ownerLockID is the PostgreSQL session lock that Claim holds.
const ownerLockID int64 = 0x63686174_6f776e // "chatown"

// ErrClaimed means another chat instance already writes the history in
// this database.
var ErrClaimed = errors.New("another chat instance uses this database: one instance per database, or several sharing NATS (NATS_URL)")

// ErrClaimLost means the session that held the claim ended (a database
// restart or failover, a network cut, idle_session_timeout): another
// instance may write the history now.
var ErrClaimLost = errors.New("lost the claim on the database (its session ended); another instance may be writing")

// Claim makes this process the only writer of a database's history until
// it is released: one engine sequences a room's messages in memory, so two
// instances over one database would fight over every sequence. On
// PostgreSQL it is a session advisory lock on a connection of its own,
// which Check confirms is still held; an SQLite file is claimed by the
// data directory's lock (internal/store), and its Claim holds nothing.
type Claim struct {
	conn    *sql.Conn // nil on SQLite
	timeout time.Duration
}

// Claim takes the claim, or fails with ErrClaimed.
func (s *Store) Claim(ctx context.Context) (*Claim, error) {
	c := &Claim{timeout: s.pool.Timeout()}
	if s.pool.Dialect() != sqldb.Postgres {
		return c, nil
	}
	sqlDB, err := s.db.DB()
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim: %w", err)
	}
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	conn, err := sqlDB.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("sqlstore: claim: %w", classify(ctx, err))
	}
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", ownerLockID).Scan(&got); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("sqlstore: claim: %w", classify(ctx, err))
	}
	if !got {
		_ = conn.Close()
		return nil, ErrClaimed
	}
	c.conn = conn
	return c, nil
}

// Check confirms that the claim is still held: on its own session, the
// lock is granted. It fails with ErrClaimLost when the session has ended
// or no longer holds the lock; a caller must then stop writing.
func (c *Claim) Check(ctx context.Context) error {
	if c.conn == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	// A bigint advisory key shows in pg_locks as classid (high 32 bits),
	// objid (low 32 bits) and objsubid 1.
	var held bool
	err := c.conn.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND pid = pg_backend_pid() AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1)`,
		ownerLockID>>32, ownerLockID&0xffffffff).Scan(&held)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrClaimLost, err)
	}
	if !held {
		return ErrClaimLost
	}
	return nil
}

// Release gives the claim up. The connection goes back to the pool, so
// the lock is given up explicitly; should that fail, the connection is
// discarded, which ends the session and the lock with it.
func (c *Claim) Release() {
	if c.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
	defer cancel()
	if _, err := c.conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1)", ownerLockID); err != nil {
		_ = c.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	_ = c.conn.Close()
}
