// Package dbtest gives tests a freshly migrated auth store on each
// backend: SQLite in a temporary directory and PostgreSQL in a new
// database (from sqldbtest.PostgresURL) that is dropped when the test
// ends. Without a reachable PostgreSQL the PostgreSQL cases skip, unless
// GRPCCHATTER_REQUIRE_POSTGRES=1, in which case they fail.
package dbtest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
)

// Backend opens a fresh store for one test.
type Backend struct {
	Name string
	Open func(t testing.TB) *store.Store
}

// Backends lists SQLite and PostgreSQL, for contract tests that run the
// same cases against both.
func Backends() []Backend {
	return []Backend{{Name: "sqlite", Open: SQLite}, {Name: "postgres", Open: Postgres}}
}

// SQLite returns a migrated store in a temporary directory, closed at the
// end of the test.
func SQLite(t testing.TB) *store.Store {
	t.Helper()
	return open(t, store.Config{DataDir: t.TempDir(), Timeout: 5 * time.Second})
}

// Postgres returns a store on a new, uniquely named and migrated
// PostgreSQL database, which is dropped at the end of the test.
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	return open(t, store.Config{DatabaseURL: sqldbtest.PostgresURL(t), Timeout: 5 * time.Second})
}

func open(t testing.TB, cfg store.Config) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}
