package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// TestSQLitePragmas checks that every pooled connection, not just the
// first, runs in WAL mode with a busy timeout: without them concurrent
// creates and appends fail with SQLITE_BUSY.
func TestSQLitePragmas(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Retain: 1})
	require.NoError(t, err)
	defer s.Close()
	sqlDB, err := s.db.DB()
	require.NoError(t, err)

	ctx := t.Context()
	var conns []*sql.Conn
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

// TestMigrationsRecordVersions: both dialects have the same versions, and
// a second start applies nothing.
func TestMigrationsRecordVersions(t *testing.T) {
	lite, err := load("sqlite")
	require.NoError(t, err)
	pg, err := load("postgres")
	require.NoError(t, err)
	require.Equal(t, len(lite), len(pg), "every migration exists for both dialects")
	for i := range lite {
		assert.Equal(t, lite[i].version, pg[i].version)
	}

	dir := t.TempDir()
	for range 2 {
		s, err := Open(context.Background(), Config{DataDir: dir, Retain: 1})
		require.NoError(t, err)
		var versions []int64
		require.NoError(t, s.db.Raw("SELECT version FROM "+versionTable+" ORDER BY version").Scan(&versions).Error)
		assert.Equal(t, []int64{1}, versions)
		require.NoError(t, s.Close())
	}
}

// sqliteErr stands in for the SQLite driver's error, which has a Code.
type sqliteErr int

func (e sqliteErr) Error() string { return "sqlite error" }
func (e sqliteErr) Code() int     { return int(e) }

// TestClassify pins which driver errors mean "retry later"
// (rooms.ErrUnavailable) and which are left unclassified.
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
		{"pg too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"pg deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"sqlite busy", sqliteErr(5), true},
		{"sqlite busy snapshot", sqliteErr(517), true},
		{"sqlite full", sqliteErr(13), true},
		{"deadline", context.DeadlineExceeded, true},
		{"pg undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"pg unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"sqlite error", sqliteErr(1), false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(live, fmt.Errorf("wrapped: %w", tt.err))
			assert.Equal(t, tt.unavailable, errors.Is(err, rooms.ErrUnavailable), "%v", err)
			assert.ErrorIs(t, err, tt.err)
			assert.NotErrorIs(t, err, ErrTimeout)
		})
	}
	t.Run("domain errors pass", func(t *testing.T) {
		for _, d := range domain {
			err := classify(live, fmt.Errorf("x: %w", d))
			assert.ErrorIs(t, err, d)
			assert.NotErrorIs(t, err, rooms.ErrUnavailable)
		}
	})
	t.Run("own timeout", func(t *testing.T) {
		ctx, cancel := context.WithTimeoutCause(live, time.Nanosecond, ErrTimeout)
		defer cancel()
		<-ctx.Done()
		err := classify(ctx, context.DeadlineExceeded)
		assert.ErrorIs(t, err, rooms.ErrUnavailable)
		assert.ErrorIs(t, err, ErrTimeout)
	})
	t.Run("caller gave up", func(t *testing.T) {
		parent, cancel := context.WithCancel(live)
		cancel()
		ctx, stop := context.WithTimeoutCause(parent, time.Hour, ErrTimeout)
		defer stop()
		err := classify(ctx, context.Canceled)
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, rooms.ErrUnavailable, "a hang-up is not an outage")
	})
}

func TestUnique(t *testing.T) {
	assert.True(t, unique(fmt.Errorf("x: %w", &pgconn.PgError{Code: "23505"})))
	assert.True(t, unique(sqliteErr(1555)))
	assert.True(t, unique(sqliteErr(2067)))
	assert.False(t, unique(sqliteErr(19)), "another constraint")
	assert.False(t, unique(&pgconn.PgError{Code: "23503"}), "foreign key")
}

func TestCeil(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 5000, time.UTC)
	assert.Equal(t, at, ceil(at), "already whole microseconds")
	assert.Equal(t, at.Add(time.Microsecond), ceil(at.Add(1)))
	assert.Equal(t, time.UTC, ceil(at.In(time.FixedZone("X", 3600))).Location())
}
