// Package dbtest gives tests a freshly migrated store on each backend:
// SQLite in a temporary directory and PostgreSQL in a new database that is
// dropped when the test ends.
//
// PostgreSQL is found through TEST_DATABASE_URL (default
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable). When it is
// not reachable the PostgreSQL cases skip, unless
// GRPCCHATTER_REQUIRE_POSTGRES=1, in which case they fail.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for creating test databases

	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
)

// DefaultURL is the admin connection used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

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
	s, err := store.Open(context.Background(), store.Config{DataDir: t.TempDir(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// Postgres returns a store on a new, uniquely named and migrated
// PostgreSQL database, which is dropped at the end of the test.
func Postgres(t testing.TB) *store.Store {
	t.Helper()
	dsn := PostgresURL(t)
	s, err := store.Open(context.Background(), store.Config{DatabaseURL: dsn, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// PostgresURL creates an empty database and returns its URL; the
// database is dropped at the end of the test.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = DefaultURL
	}
	u, err := url.Parse(admin)
	require.NoError(t, err, "TEST_DATABASE_URL")

	db, err := sql.Open("pgx", admin)
	require.NoError(t, err)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := db.PingContext(ctx); err != nil {
		msg := "PostgreSQL not reachable at " + u.Redacted() + " (" + err.Error() + "); set GRPCCHATTER_REQUIRE_POSTGRES=1 to fail instead"
		if os.Getenv("GRPCCHATTER_REQUIRE_POSTGRES") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	b := make([]byte, 6)
	_, _ = rand.Read(b)
	name := "auth_test_" + hex.EncodeToString(b)
	_, err = db.ExecContext(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err)
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := db.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	return u.String()
}
