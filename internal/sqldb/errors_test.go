package sqldb_test

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
	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
)

// sqliteErr stands in for the SQLite driver's error, which has a Code.
type sqliteErr int

func (e sqliteErr) Error() string { return "sqlite error" }
func (e sqliteErr) Code() int     { return int(e) }

// TestClassify pins which driver errors mean "retry later" and which are
// left unclassified, for a bug to show as one.
func TestClassify(t *testing.T) {
	live := context.Background()
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"connection reset", syscall.ECONNRESET, true},
		{"pg connect error", &pgconn.ConnectError{}, true},
		{"conn done", sql.ErrConnDone, true},
		{"bad conn", driver.ErrBadConn, true},
		{"closed pool", errors.New("sql: database is closed"), true},
		{"unexpected EOF", io.ErrUnexpectedEOF, true},
		{"pg admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"pg connection failure", &pgconn.PgError{Code: "08006"}, true},
		{"pg too many connections", &pgconn.PgError{Code: "53300"}, true},
		{"pg statement timeout", &pgconn.PgError{Code: "57014"}, true},
		{"pg deadlock", &pgconn.PgError{Code: "40P01"}, true},
		{"pg serialization failure", &pgconn.PgError{Code: "40001"}, true},
		{"sqlite busy", sqliteErr(5), true},
		{"sqlite busy snapshot", sqliteErr(517), true},
		{"sqlite locked", sqliteErr(6), true},
		{"sqlite ioerr", sqliteErr(10), true},
		{"sqlite full", sqliteErr(13), true},
		{"sqlite cantopen", sqliteErr(14), true},
		{"deadline", context.DeadlineExceeded, true},
		{"pg undefined table", &pgconn.PgError{Code: "42P01"}, false},
		{"pg syntax error", &pgconn.PgError{Code: "42601"}, false},
		{"pg unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"sqlite error", sqliteErr(1), false},
		{"sqlite constraint", sqliteErr(2067), false},
		{"no row", gorm.ErrRecordNotFound, false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sqldb.Classify(live, fmt.Errorf("wrapped: %w", tt.err))
			assert.Equal(t, tt.unavailable, sqldb.Unavailable(tt.err))
			assert.Equal(t, tt.unavailable, errors.Is(err, sqldb.ErrUnavailable), "%v", err)
			assert.ErrorIs(t, err, tt.err)
			assert.NotErrorIs(t, err, sqldb.ErrTimeout)
		})
	}
	t.Run("nil", func(t *testing.T) {
		assert.NoError(t, sqldb.Classify(live, nil))
	})
	t.Run("own timeout", func(t *testing.T) {
		err := sqldb.Classify(sqldbtest.TimedOut(t), errors.New("driver's words for it"))
		assert.ErrorIs(t, err, sqldb.ErrUnavailable)
		assert.ErrorIs(t, err, sqldb.ErrTimeout)
	})
	t.Run("caller gave up", func(t *testing.T) {
		parent, cancel := context.WithCancel(live)
		cancel()
		ctx, stop := context.WithTimeoutCause(parent, time.Hour, sqldb.ErrTimeout)
		defer stop()
		err := sqldb.Classify(ctx, context.Canceled)
		assert.ErrorIs(t, err, context.Canceled)
		assert.NotErrorIs(t, err, sqldb.ErrUnavailable, "a hang-up is not an outage")
		assert.NotErrorIs(t, err, sqldb.ErrTimeout)
	})
	t.Run("classified once", func(t *testing.T) {
		inner := sqldb.Classify(live, sql.ErrConnDone)
		assert.Same(t, inner, sqldb.Classify(live, inner))
	})
}

func TestUnique(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		unique bool
	}{
		{"pg unique violation", &pgconn.PgError{Code: "23505"}, true},
		{"sqlite unique", sqliteErr(2067), true},
		{"sqlite primary key", sqliteErr(1555), true},
		{"gorm's translation", gorm.ErrDuplicatedKey, true},
		{"pg foreign key", &pgconn.PgError{Code: "23503"}, false},
		{"sqlite another constraint", sqliteErr(19), false},
		{"anything else", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.unique, sqldb.Unique(fmt.Errorf("x: %w", tt.err)))
		})
	}
}

// TestDriverErrors checks the predicates against what the real drivers
// return, not stand-ins.
func TestDriverErrors(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := open(t, b.config(t)).Gorm()
			insert := func(table, value string) error {
				return db.WithContext(ctx(t)).Exec("INSERT INTO "+table+" VALUES (?)", value).Error
			}
			require.NoError(t, insert("tags", "a"))
			assert.True(t, sqldb.Unique(insert("tags", "a")), "primary key")
			require.NoError(t, db.Exec("INSERT INTO notes (body) VALUES ('a')").Error)
			assert.True(t, sqldb.Unique(db.Exec("INSERT INTO notes (body) VALUES ('a')").Error), "unique index")

			err := db.Exec("SELECT * FROM missing").Error
			require.Error(t, err)
			assert.False(t, sqldb.Unique(err))
			assert.False(t, sqldb.Unavailable(err), "a broken schema is a bug, not an outage: %v", err)
		})
	}
}
