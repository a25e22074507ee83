package store

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
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// userRow is the GORM mapping of the users table.
type userRow struct {
	ID           int64     `gorm:"column:id;primaryKey;autoIncrement"`
	Name         string    `gorm:"column:name"`
	NameKey      string    `gorm:"column:name_key"`
	PasswordHash string    `gorm:"column:password_hash"`
	CreatedAt    time.Time `gorm:"column:created_at"`
	UpdatedAt    time.Time `gorm:"column:updated_at"`
}

// TableName tells GORM the table, which the migrations own.
func (userRow) TableName() string { return "users" }

func (r userRow) user() users.User {
	return users.User{ID: r.ID, Name: r.Name, PasswordHash: r.PasswordHash, CreatedAt: r.CreatedAt.UTC()}
}

// Create stores a new account. It fails with users.ErrNameTaken when an
// account with the same name in any case exists, relying on the unique
// index rather than a prior lookup so that concurrent registrations of
// one name cannot both succeed.
func (s *Store) Create(ctx context.Context, name, passwordHash string) (users.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	// Microseconds: the finest precision both databases keep, so the
	// returned time equals the one read back later.
	now := time.Now().UTC().Truncate(time.Microsecond)
	row := userRow{Name: name, NameKey: users.Key(name), PasswordHash: passwordHash, CreatedAt: now, UpdatedAt: now}
	if err := s.db.WithContext(ctx).Create(&row).Error; err != nil {
		return users.User{}, fmt.Errorf("create user: %w", classify(ctx, err))
	}
	return row.user(), nil
}

// ByName returns the account whose name equals name in any case.
func (s *Store) ByName(ctx context.Context, name string) (users.User, error) {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	var row userRow
	err := s.db.WithContext(ctx).Where("name_key = ?", users.Key(name)).Take(&row).Error
	if err != nil {
		return users.User{}, fmt.Errorf("user by name: %w", classify(ctx, err))
	}
	return row.user(), nil
}

// UpdateHash replaces the password hash of account id.
func (s *Store) UpdateHash(ctx context.Context, id int64, passwordHash string) error {
	ctx, cancel := s.bound(ctx)
	defer cancel()
	res := s.db.WithContext(ctx).Model(&userRow{}).Where("id = ?", id).
		Updates(map[string]any{"password_hash": passwordHash, "updated_at": time.Now().UTC()})
	if res.Error != nil {
		return fmt.Errorf("update hash: %w", classify(ctx, res.Error))
	}
	if res.RowsAffected == 0 {
		return fmt.Errorf("update hash of user %d: %w", id, users.ErrNotFound)
	}
	return nil
}

// classify maps driver errors to the users sentinels: constraint and
// missing-row errors to theirs; a context that ended to its own error,
// with users.ErrUnavailable and ErrTimeout when it was our own DB_TIMEOUT
// and without ErrUnavailable when the caller gave up (context.Canceled);
// connection, busy and closed-database errors to users.ErrUnavailable,
// since retrying later is the right answer to them. Anything else is a
// bug or a broken schema and stays an unclassified error (a 500).
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var pg interface{ SQLState() string }
	var lite interface{ Code() int }
	switch {
	case errors.Is(err, gorm.ErrDuplicatedKey),
		errors.As(err, &pg) && pg.SQLState() == "23505",
		// SQLITE_CONSTRAINT_UNIQUE, SQLITE_CONSTRAINT_PRIMARYKEY
		errors.As(err, &lite) && (lite.Code() == 2067 || lite.Code() == 1555):
		return fmt.Errorf("%w: %w", users.ErrNameTaken, err)
	case errors.Is(err, gorm.ErrRecordNotFound):
		return users.ErrNotFound
	case ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrTimeout):
		return fmt.Errorf("%w: %w: %w", users.ErrUnavailable, ErrTimeout, err)
	case errors.Is(err, context.Canceled):
		return err
	case unavailable(err):
		return fmt.Errorf("%w: %w", users.ErrUnavailable, err)
	default:
		return err
	}
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
		case 5, 6, 10, 14: // SQLITE_BUSY, SQLITE_LOCKED, SQLITE_IOERR, SQLITE_CANTOPEN
			return true
		}
	}
	return false
}
