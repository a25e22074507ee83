package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// TestSQLitePragmas checks that every pooled connection, not just the
// first, runs in WAL mode with a busy timeout: without them concurrent
// registrations fail with SQLITE_BUSY instead of a clean 409.
func TestSQLitePragmas(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer s.Close()
	sqlDB, err := s.db.DB()
	require.NoError(t, err)

	ctx := t.Context()
	var conns []interface{ Close() error }
	for range 3 { // hold several connections so that each is a distinct one
		c, err := sqlDB.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
		var mode string
		var timeout int
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout))
		assert.Equal(t, "wal", mode)
		assert.Equal(t, 5000, timeout)
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
}

// TestMigrationsRecordVersions opens the same database twice on each
// backend: the second start applies nothing and keeps the recorded
// versions.
func TestMigrationsRecordVersions(t *testing.T) {
	all, err := load("sqlite")
	require.NoError(t, err)
	pg, err := load("postgres")
	require.NoError(t, err)
	require.Equal(t, len(all), len(pg), "every migration exists for both dialects")
	for i := range all {
		assert.Equal(t, all[i].version, pg[i].version)
	}

	dir := t.TempDir()
	for range 2 {
		s, err := Open(context.Background(), Config{DataDir: dir})
		require.NoError(t, err)
		var versions []int64
		require.NoError(t, s.db.Raw("SELECT version FROM schema_migrations ORDER BY version").Scan(&versions).Error)
		assert.Equal(t, []int64{1}, versions)
		require.NoError(t, s.Close())
	}
}

// sqliteErr stands in for the SQLite driver's error, which has a Code.
type sqliteErr int

func (e sqliteErr) Error() string { return "sqlite error" }
func (e sqliteErr) Code() int     { return int(e) }

// TestClassify pins which driver errors mean "retry later" (503) and which
// are left unclassified (500).
func TestClassify(t *testing.T) {
	live := context.Background()
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"pg connect error", &pgconn.ConnectError{}, true},
		{"conn done", sql.ErrConnDone, true},
		{"bad conn", driver.ErrBadConn, true},
		{"closed pool", errors.New("sql: database is closed"), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"pg admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pg connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"pg too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"pg deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"sqlite busy", sqliteErr(5), true},
		{"sqlite busy snapshot", sqliteErr(517), true},
		{"sqlite locked", sqliteErr(6), true},
		{"deadline", context.DeadlineExceeded, true},
		{"pg undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"pg syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"sqlite error", sqliteErr(1), false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(live, fmt.Errorf("wrapped: %w", tt.err))
			assert.Equal(t, tt.unavailable, errors.Is(err, users.ErrUnavailable), "%v", err)
			assert.ErrorIs(t, err, tt.err)
			assert.NotErrorIs(t, err, ErrTimeout)
		})
	}
	t.Run("own timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeoutCause(live, time.Nanosecond, ErrTimeout)
		defer cancel()
		<-ctx.Done()
		err := classify(ctx, context.DeadlineExceeded)
		assert.ErrorIs(t, err, users.ErrUnavailable)
		assert.ErrorIs(t, err, ErrTimeout)
	})
	t.Run("caller gave up", func(t *testing.T) {
		parent, cancel := context.WithCancel(live)
		cancel()
		ctx, stop := context.WithTimeoutCause(parent, time.Hour, ErrTimeout)
		defer stop()
		err := classify(ctx, context.Canceled)
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, users.ErrUnavailable, "a hang-up is not an outage")
		assert.NotErrorIs(t, err, ErrTimeout)
	})
}

// TestUnexpectedErrorIsNotUnavailable: a broken schema is a bug to fix,
// not an outage to wait out.
func TestUnexpectedErrorIsNotUnavailable(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer s.Close()
	require.NoError(t, s.db.Exec("DROP TABLE users").Error)
	_, err = s.ByName(t.Context(), "alice")
	require.Error(t, err)
	assert.NotErrorIs(t, err, users.ErrUnavailable)
	assert.NotErrorIs(t, err, users.ErrNotFound)
}

// TestSQLiteFilesArePrivate: the database holds password hashes, so the
// directory is 0700 and the files 0600, also when they existed before
// with wider modes.
func TestSQLiteFilesArePrivate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(dir, 0o755))
	db := filepath.Join(dir, "auth.db")
	for range 2 { // fresh, then over files made wide in between
		s, err := Open(context.Background(), Config{DataDir: dir, Timeout: 5 * time.Second})
		require.NoError(t, err)
		_, err = s.Create(t.Context(), "alice"+strconv.Itoa(rand.Int()), "h") // makes the -wal and -shm files
		require.NoError(t, err)
		mode := func(p string) os.FileMode {
			fi, err := os.Stat(p)
			require.NoError(t, err, p)
			return fi.Mode().Perm()
		}
		assert.Equal(t, os.FileMode(0o700), mode(dir))
		for _, f := range []string{db, db + "-wal", db + "-shm"} {
			assert.Equal(t, os.FileMode(0o600), mode(f), f)
		}
		require.NoError(t, s.Close())
		require.NoError(t, os.Chmod(dir, 0o755))
		require.NoError(t, os.Chmod(db, 0o644))
	}
}
