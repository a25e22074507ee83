package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// TestClassify pins how database errors become what the engine acts on.
// Which driver errors are outages is sqldb's, and tested there.
func TestClassify(t *testing.T) {
	timedOut := sqldbtest.TimedOut(t)
	t.Run("an outage is rooms.ErrUnavailable", func(t *testing.T) {
		err := classify(context.Background(), sql.ErrConnDone)
		assert.ErrorIs(t, err, rooms.ErrUnavailable)
		assert.ErrorIs(t, err, sql.ErrConnDone)
		err = classify(timedOut, context.DeadlineExceeded)
		assert.ErrorIs(t, err, rooms.ErrUnavailable)
		assert.ErrorIs(t, err, ErrTimeout)
	})
	t.Run("what a method decided passes unchanged", func(t *testing.T) {
		for _, d := range domain {
			err := fmt.Errorf("x: %w", d)
			assert.Same(t, err, classify(timedOut, err), "even when the call timed out after deciding")
		}
	})
	t.Run("a constraint is the caller's to map", func(t *testing.T) {
		err := classify(context.Background(), &pgconn.PgError{Code: "23505"})
		assert.NotErrorIs(t, err, rooms.ErrUnavailable)
		assert.NotErrorIs(t, err, rooms.ErrCodeTaken)
	})
	assert.NoError(t, classify(context.Background(), nil))
}

func TestCeil(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 5000, time.UTC)
	assert.Equal(t, at, ceil(at), "already whole microseconds")
	assert.Equal(t, at.Add(time.Microsecond), ceil(at.Add(1)))
	assert.Equal(t, time.UTC, ceil(at.In(time.FixedZone("X", 3600))).Location())
}

// TestSchema: every migration exists for both dialects, and the applied
// versions go to chat_schema_migrations, apart from the auth service's
// schema_migrations in a PostgreSQL database they may share.
func TestSchema(t *testing.T) {
	require.NoError(t, schema.Check())
	assert.Equal(t, "chat_schema_migrations", schema.Table)
}
