package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// TestSchema: every migration exists for both dialects, and the applied
// versions stay in schema_migrations, the table auth has always used:
// under another name every migration would run again on an existing
// database, and fail.
func TestSchema(t *testing.T) {
	require.NoError(t, schema.Check())
	assert.Equal(t, "schema_migrations", schema.Table)
}

// TestClassify pins how database errors become the users sentinels, and
// so HTTP statuses: 409, 404, 503, or an unclassified 500. Which driver
// errors are outages is sqldb's, and tested there.
func TestClassify(t *testing.T) {
	timedOut := sqldbtest.TimedOut(t)
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want error // the one users sentinel err becomes; nil for a 500
	}{
		{"unique violation", context.Background(), &pgconn.PgError{Code: "23505"}, users.ErrNameTaken},
		{"no row", context.Background(), gorm.ErrRecordNotFound, users.ErrNotFound},
		{"outage", context.Background(), sql.ErrConnDone, users.ErrUnavailable},
		{"own timeout", timedOut, context.DeadlineExceeded, users.ErrUnavailable},
		{"broken schema", context.Background(), &pgconn.PgError{Code: "42P01"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := classify(tt.ctx, fmt.Errorf("wrapped: %w", tt.err))
			require.Error(t, err)
			for _, s := range []error{users.ErrNameTaken, users.ErrNotFound, users.ErrUnavailable} {
				assert.Equal(t, s == tt.want, errors.Is(err, s), "%v is %v", err, s)
			}
		})
	}
	assert.ErrorIs(t, classify(timedOut, context.DeadlineExceeded), ErrTimeout, "says whose deadline fired")
	assert.NoError(t, classify(context.Background(), nil))
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
