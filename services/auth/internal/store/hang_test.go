package store_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// TestSilentDatabaseTimesOut points the store at a server that accepts
// connections and never answers, the worst kind of outage: Open must give
// up after its own timeout (DB_TIMEOUT) instead of hanging, well before
// the driver's 30 s connect timeout or the test's own deadline.
func TestSilentDatabaseTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() { // ends when ln is closed
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = store.Open(ctx, store.Config{
		DatabaseURL: "postgres://u@" + ln.Addr().String() + "/db?sslmode=disable&connect_timeout=30",
		Timeout:     300 * time.Millisecond,
	})
	assert.ErrorIs(t, err, users.ErrUnavailable)
	assert.ErrorIs(t, err, store.ErrTimeout, "the store's own deadline fired")
	assert.NoError(t, ctx.Err(), "not the test's")
}
