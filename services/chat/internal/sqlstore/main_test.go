package sqlstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

func TestMain(m *testing.M) {
	// database/sql and pgx keep a connection opener per pool; every store
	// is closed by its test, so nothing may be left behind.
	goleak.VerifyTestMain(m)
}

// backend makes the configuration of a new, empty database.
type backend struct {
	name   string
	config func(t testing.TB) sqlstore.Config
}

// backends lists SQLite and PostgreSQL, for tests that run the same
// checks against both.
func backends() []backend {
	return []backend{{"sqlite", sqliteConfig}, {"postgres", postgresConfig}}
}

func sqliteConfig(t testing.TB) sqlstore.Config {
	return sqlstore.Config{DataDir: t.TempDir(), Timeout: 10 * time.Second, Retain: 100}
}

func postgresConfig(t testing.TB) sqlstore.Config {
	return sqlstore.Config{DatabaseURL: sqldbtest.PostgresURL(t), Timeout: 10 * time.Second, Retain: 100}
}

// open opens cfg, closing the store at the end of the test.
func open(t testing.TB, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
