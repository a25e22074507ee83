package sqlstore

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

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// ErrTimeout is wrapped, together with rooms.ErrUnavailable, in the error
// of a call that ran out of Config.Timeout, as opposed to a call whose
// caller's own context ended first.
var ErrTimeout = errors.New("database call exceeded its timeout")

// domain are the sentinels that a store method decides itself; they pass
// through classify unchanged.
var domain = []error{rooms.ErrNotFound, rooms.ErrNotOwner, rooms.ErrCodeTaken, rooms.ErrTooManyRooms, rooms.ErrSeqConflict}

// classify maps a database error to what the engine can act on: a
// context that ended to its own error, with rooms.ErrUnavailable and
// ErrTimeout when it was our own Config.Timeout and without
// ErrUnavailable when the caller gave up (context.Canceled); connection,
// busy and closed-database errors to rooms.ErrUnavailable, since retrying
// later is the right answer to them. Anything else is a bug or a broken
// schema and stays an unclassified error. Constraint violations are
// mapped by the callers, which know what the constraint means.
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	for _, d := range domain {
		if errors.Is(err, d) {
			return err
		}
	}
	switch {
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrTimeout):
		return fmt.Errorf("%w: %w: %w", rooms.ErrUnavailable, ErrTimeout, err)
	case errors.Is(err, context.Canceled):
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %w", rooms.ErrUnavailable, err)
	default:
		return err
	}
}

// unique reports whether err is a unique or primary key violation.
func unique(err error) bool {
	var pg interface{ SQLState() string }
	var lite interface{ Code() int }
	return errors.Is(err, gorm.ErrDuplicatedKey) ||
		errors.As(err, &pg) && pg.SQLState() == "23505" ||
		// SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
		errors.As(err, &lite) && (lite.Code() == 2067 || lite.Code() == 1555)
}

// unavailable reports whether err means the database cannot serve now but
// may later: it is unreachable, closed, restarting, overloaded or busy.
func unavailable(err error) bool {
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
		switch lite.Code() & 0xff {
		case 5, 6, 10, 13, 14: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_FULL, SQLITE_CANTOPEN
			return true
		}
	}
	return false
}
