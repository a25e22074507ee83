package api_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
)

// TestSilentDatabaseAnswers503 puts a proxy between the service and
// PostgreSQL and then stops forwarding: the database is "up" but never
// answers, the case a closed pool cannot simulate. Requests must come
// back 503 once the per-call database timeout passes, not hang until the
// request timeout or forever.
func TestSilentDatabaseAnswers503(t *testing.T) {
	u, err := url.Parse(sqldbtest.PostgresURL(t))
	require.NoError(t, err)
	p := newFreezer(t, u.Host)
	u.Host = p.addr
	s, err := store.Open(context.Background(), store.Config{DatabaseURL: u.String(), Timeout: 300 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })

	e := newEnv(t, s, withRequestTimeout(time.Minute))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)

	// The test's own deadline keeps a regression from hanging the suite;
	// the log shows which deadline fired.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	bounded := e.withContext(ctx)
	p.frozen.Store(true)
	for i, do := range []func() response{
		func() response { return bounded.register("bob", "correct horse") },
		func() response { return bounded.login("alice", "correct horse") },
		func() response { return bounded.do(http.MethodGet, "/readyz", nil) },
	} {
		r := do()
		assert.Equal(t, http.StatusServiceUnavailable, r.Code, r.Raw)
		failed := e.logs.FilterMessage("request failed").All()
		require.Len(t, failed, i+1)
		assert.Contains(t, failed[i].ContextMap()["error"], store.ErrTimeout.Error(),
			"bounded by DB_TIMEOUT, not the one-minute request timeout")
	}
	assert.NoError(t, ctx.Err(), "the test's deadline did not fire")
}

// freezer forwards TCP to upstream until frozen is set, then holds all
// traffic without closing anything.
type freezer struct {
	addr   string
	frozen atomic.Bool
	closed atomic.Bool
}

func newFreezer(t *testing.T, upstream string) *freezer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &freezer{addr: ln.Addr().String()}
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		conns []net.Conn
	)
	track := func(c net.Conn) { mu.Lock(); conns = append(conns, c); mu.Unlock() }
	pipe := func(dst, src net.Conn) { // ends when either side is closed
		defer wg.Done()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			for f.frozen.Load() && !f.closed.Load() {
				time.Sleep(5 * time.Millisecond)
			}
			if n > 0 {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Add(1)
	go func() { // ends when ln is closed
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				c.Close()
				continue
			}
			track(c)
			track(up)
			wg.Add(2)
			go pipe(up, c)
			go pipe(c, up)
		}
	}()
	t.Cleanup(func() {
		f.closed.Store(true)
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return f
}
