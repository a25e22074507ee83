package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for creating test databases
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

func TestMain(m *testing.M) {
	// database/sql and pgx keep a connection opener per pool; every store
	// is closed by its test, so nothing may be left behind.
	goleak.VerifyTestMain(m)
}

// defaultAdminURL is the PostgreSQL admin connection used when
// TEST_DATABASE_URL is unset.
const defaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

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
	return sqlstore.Config{DatabaseURL: postgresURL(t), Timeout: 10 * time.Second, Retain: 100}
}

// open opens cfg, closing the store at the end of the test.
func open(t testing.TB, cfg sqlstore.Config) *sqlstore.Store {
	t.Helper()
	s, err := sqlstore.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// postgresURL creates an empty, uniquely named database and returns its
// URL; the database is dropped at the end of the test. When PostgreSQL is
// not reachable the test skips, unless GRPCCHATTER_REQUIRE_POSTGRES=1
// (as in CI), when it fails.
func postgresURL(t testing.TB) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = defaultAdminURL
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
	name := "chat_test_" + hex.EncodeToString(b)
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

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
