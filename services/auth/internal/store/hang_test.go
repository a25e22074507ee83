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
// up after its timeout instead of hanging.
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

	start := time.Now()
	_, err = store.Open(context.Background(), store.Config{
		DatabaseURL: "postgres://u@" + ln.Addr().String() + "/db?sslmode=disable&connect_timeout=30",
		Timeout:     300 * time.Millisecond,
	})
	assert.ErrorIs(t, err, users.ErrUnavailable)
	assert.Less(t, time.Since(start), 5*time.Second, "gave up on its own timeout, not the driver's 30 s")
}
