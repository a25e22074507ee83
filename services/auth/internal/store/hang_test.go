package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// TestSilentDatabaseTimesOut points the store at a server that accepts
// connections and never answers, the worst kind of outage: Open must give
// up after its own timeout (DB_TIMEOUT) instead of hanging, well before
// the driver's 30 s connect timeout or the test's own deadline, and say
// so in the users package's terms.
func TestSilentDatabaseTimesOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err := store.Open(ctx, store.Config{
		DatabaseURL: "postgres://u@" + sqldbtest.SilentServer(t) + "/db?sslmode=disable&connect_timeout=30",
		Timeout:     300 * time.Millisecond,
	})
	assert.ErrorIs(t, err, users.ErrUnavailable)
	assert.ErrorIs(t, err, store.ErrTimeout, "the store's own deadline fired")
	assert.NoError(t, ctx.Err(), "not the test's")
}
