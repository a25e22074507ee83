package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"
)

var (
	// ErrUnavailable is wrapped in the error of a call that the database
	// could not serve now but may later: it is unreachable, closed,
	// restarting, overloaded, busy or out of space. A store wraps its
	// domain's own "unavailable" sentinel around it.
	ErrUnavailable = errors.New("database unavailable")
	// ErrTimeout is wrapped, together with ErrUnavailable, in the error
	// of a call that ran out of Config.Timeout (DB_TIMEOUT), as opposed
	// to a call whose caller's own context ended first.
	ErrTimeout = errors.New("database call exceeded DB_TIMEOUT")
)

// Classify tells an outage from a bug in err, the result of a call made
// under ctx (from Bound): when ctx ran out of Config.Timeout it wraps
// ErrUnavailable and ErrTimeout; when the caller gave up
// (context.Canceled) it returns err as it is, since a hang-up is not an
// outage; when Unavailable(err) it wraps ErrUnavailable. Anything else is
// a bug or a broken schema and is returned as it is. Constraint
// violations are the store's to map, with Unique: only it knows what a
// constraint means.
func Classify(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrUnavailable): // classified already, by an inner call
		return err
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrTimeout):
		return fmt.Errorf("%w: %w: %w", ErrUnavailable, ErrTimeout, err)
	case errors.Is(err, context.Canceled):
		return err
	case Unavailable(err):
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	default:
		return err
	}
}

// Unavailable reports whether err means the database cannot serve now but
// may later: it is unreachable, closed, restarting, overloaded, busy or
// full. Retrying later is the right answer to these.
func Unavailable(err error) bool {
	var (
		pg   interface{ SQLState() string }
		lite interface{ Code() int }
		conn *pgconn.ConnectError
		nerr net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.As(err, &conn), errors.As(err, &nerr),
		pgconn.Timeout(err),
		// database/sql has no sentinel for this one.
		strings.Contains(err.Error(), "sql: database is closed"):
		return true
	case errors.As(err, &pg):
		switch state := pg.SQLState(); {
		case strings.HasPrefix(state, "08"), // connection exception
			strings.HasPrefix(state, "53"),                       // insufficient resources
			state == "57P01", state == "57P02", state == "57P03", // shutting down, starting up
			state == "57014",                                     // statement timeout
			state == "40001", state == "40P01", state == "55P03": // serialization, deadlock, lock not available
			return true
		}
	case errors.As(err, &lite):
		// The primary code, without the extended code's upper bits.
		switch lite.Code() & 0xff {
		case 5, 6, 10, 13, 14: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
			return true
		}
	}
	return false
}

// Unique reports whether err is a unique or primary key violation, on
// either dialect.
func Unique(err error) bool {
	var pg interface{ SQLState() string }
	var lite interface{ Code() int }
	return errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.As(err, &pg) && pg.SQLState() == "23505" ||
		// SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
		errors.As(err, &lite) && (lite.Code() == 2067 || lite.Code() == 1555)
}
