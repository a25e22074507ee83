// Package sqldbtest gives tests a database of their own: a new, uniquely
// named PostgreSQL database that is dropped when the test ends; a server
// that accepts connections and never answers; and the context of a call
// that ran out of its DB_TIMEOUT.
//
// PostgreSQL is found through TEST_DATABASE_URL (default DefaultURL).
// When it is not reachable the test skips, unless
// GRPCCHATTER_REQUIRE_POSTGRES=1 (as in CI), in which case it fails.
package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver, for creating test databases
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
)

// DefaultURL is the admin connection used when TEST_DATABASE_URL is unset.
const DefaultURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// PostgresURL creates an empty database and returns its URL; the database
// is dropped at the end of the test, also when connections to it are
// still open.
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
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	name := "grpcchatter_test_" + hex.EncodeToString(b)
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

// SilentServer returns the address of a TCP server that accepts
// connections and never answers: the worst kind of outage, a database
// that is up but hangs, which a closed pool cannot stand in for. It and
// its connections close at the end of the test.
func SilentServer(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Go(func() { // ends when ln is closed, at cleanup
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	})
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return ln.Addr().String()
}

// TimedOut returns a context as a call bound by sqldb.DB.Bound sees it
// once Config.Timeout has passed: done, with sqldb.ErrTimeout as the
// cause. For tests of a store's error mapping.
func TimedOut(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeoutCause(context.Background(), 0, sqldb.ErrTimeout)
	t.Cleanup(cancel)
	<-ctx.Done()
	return ctx
}
