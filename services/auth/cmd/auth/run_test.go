package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "run-test-secret-0123456789abcdef0123"

// cheap hashing keeps the tests fast; the service itself refuses such
// parameters from its configuration.
var cheap = withHashParams(password.Params{MemoryKiB: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})

// setEnv gives t an environment in which, of the keys the service reads,
// only those in m are set, and METRICS_ADDRESS, unless m sets it, to a free
// loopback port rather than the default one, which another process may
// hold; the previous values return when t ends. Tests that call it cannot
// run in parallel, since the environment belongs to the process.
func setEnv(t *testing.T, m map[string]string) {
	t.Helper()
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		k := typ.Field(i).Tag.Get("envconfig")
		t.Setenv(k, "") // registers the restore
		require.NoError(t, os.Unsetenv(k))
	}
	if _, ok := m["METRICS_ADDRESS"]; !ok {
		t.Setenv("METRICS_ADDRESS", "127.0.0.1:0")
	}
	for k, v := range m {
		t.Setenv(k, v)
	}
}

// syncBuffer collects the service's log output; zap writes to it from
// request goroutines while the test reads it at the end.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRun starts the real service on a free port, registers and logs in
// over HTTP, then cancels the context and expects a clean shutdown.
func TestRun(t *testing.T) {
	backends := []struct {
		name string
		env  func(t *testing.T) map[string]string
	}{
		{"sqlite", func(t *testing.T) map[string]string { return map[string]string{"DATA_DIR": t.TempDir()} }},
		{"postgres", func(t *testing.T) map[string]string {
			return map[string]string{"DATABASE_URL": sqldbtest.PostgresURL(t)}
		}},
	}
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			env := b.env(t)
			env["SECRET"] = secret
			env["REST_SERVER_ADDRESS"] = "127.0.0.1"
			env["REST_SERVER_PORT"] = "0"
			env["SHUTDOWN_TIMEOUT"] = "5s"
			env["CORS_ALLOWED_ORIGINS"] = "http://127.0.0.1:8081"
			setEnv(t, env)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			addr := make(chan [2]net.Addr, 1)
			logs := &syncBuffer{}
			done := make(chan error, 1)
			go func() { // ends when ctx is cancelled
				done <- run(ctx, nil, logs, func(a, m net.Addr) { addr <- [2]net.Addr{a, m} }, cheap)
			}()

			var base, metricsBase string
			select {
			case a := <-addr:
				base, metricsBase = "http://"+a[0].String(), "http://"+a[1].String()
			case err := <-done:
				t.Fatalf("run ended before serving: %v\n%s", err, logs)
			case <-time.After(20 * time.Second):
				t.Fatal("service did not start")
			}

			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			post := func(path, body string) (int, map[string]any) {
				resp, err := client.Post(base+path, "application/json", strings.NewReader(body))
				require.NoError(t, err)
				defer resp.Body.Close()
				var out map[string]any
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&out))
				return resp.StatusCode, out
			}

			code, reg := post("/register", `{"user_name":"Alice","password":"correct horse"}`)
			require.Equal(t, http.StatusOK, code, reg)
			code, login := post("/login", `{"user_name":"alice","password":"correct horse"}`)
			require.Equal(t, http.StatusOK, code, login)

			signer, err := token.NewSigner(secret, "")
			require.NoError(t, err)
			u, err := signer.VerifyUser(login["token"].(string))
			require.NoError(t, err, "the token verifies with the shared contract")
			assert.Equal(t, "Alice", u.Name)

			resp, err := client.Get(base + "/readyz")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)

			// The browser's preflight before the chat page POSTs to /login.
			req, err := http.NewRequest(http.MethodOptions, base+"/login", nil)
			require.NoError(t, err)
			req.Header.Set("Origin", "http://127.0.0.1:8081")
			req.Header.Set("Access-Control-Request-Method", "POST")
			resp, err = client.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNoContent, resp.StatusCode)
			assert.Equal(t, "http://127.0.0.1:8081", resp.Header.Get("Access-Control-Allow-Origin"))

			// Metrics on their own listener only.
			resp, err = client.Get(base + "/metrics")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, "no metrics on the public port")
			resp, err = client.Get(metricsBase + "/metrics")
			require.NoError(t, err)
			scraped, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Contains(t, string(scraped), `auth_http_requests_total{method="POST",route="/login",status="200"} 1`)
			resp, err = client.Get(metricsBase + "/login")
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the metrics listener serves nothing else")

			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(10 * time.Second):
				t.Fatal("run did not return after cancel")
			}
			_, err = client.Get(base + "/healthz")
			assert.Error(t, err, "the listener is closed")
			_, err = client.Get(metricsBase + "/metrics")
			assert.Error(t, err, "the metrics listener is closed")

			out := logs.String()
			assert.Contains(t, out, `"msg":"stopped"`)
			assert.Contains(t, out, `"SECRET":"***"`)
			assert.Contains(t, out, `"CORS_ALLOWED_ORIGINS":["http://127.0.0.1:8081"]`)
			assert.NotContains(t, out, secret)
			assert.NotContains(t, out, "correct horse")
		})
	}
}

func TestRunFailsOnBadConfig(t *testing.T) {
	setEnv(t, map[string]string{"SECRET": "short"})
	err := run(context.Background(), nil, &syncBuffer{}, nil)
	assert.ErrorContains(t, err, "SECRET: invalid secret: must be at least 32 bytes")

	setEnv(t, map[string]string{"SECRET": secret})
	err = run(context.Background(), []string{"serve"}, &syncBuffer{}, nil)
	assert.ErrorContains(t, err, `unexpected argument "serve"; usage: auth [--config FILE]`)

	setEnv(t, map[string]string{"SECRET": secret, "REST_SERVER_PORT": "abc"})
	err = run(context.Background(), nil, &syncBuffer{}, nil)
	assert.ErrorContains(t, err, `REST_SERVER_PORT: must be an integer from 0 to 65535, got "abc"`)

	setEnv(t, map[string]string{"SECRET": secret, "CORS_ALLOWED_ORIGINS": "http://127.0.0.1:8081/"})
	err = run(context.Background(), nil, &syncBuffer{}, nil)
	assert.ErrorContains(t, err, `CORS_ALLOWED_ORIGINS: must be * or comma-separated origins scheme://host[:port]`)
	assert.ErrorContains(t, err, `got "http://127.0.0.1:8081/"`)

	setEnv(t, map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "64", "ARGON2_TIME": "1"})
	err = run(context.Background(), nil, &syncBuffer{}, nil)
	assert.ErrorContains(t, err, "ARGON2_MEMORY_KIB", "cheap hashing cannot be configured")
	assert.ErrorContains(t, err, "ARGON2_TIME")
}

func TestRunFailsWhenPortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	env := map[string]string{
		"SECRET": secret, "REST_SERVER_ADDRESS": "127.0.0.1", "REST_SERVER_PORT": port,
		"DATA_DIR": t.TempDir(),
	}
	setEnv(t, env)
	err = run(context.Background(), nil, &syncBuffer{}, nil, cheap)
	assert.ErrorContains(t, err, "listen on REST_SERVER_ADDRESS:REST_SERVER_PORT")

	env["REST_SERVER_PORT"] = "0"
	env["METRICS_ADDRESS"] = ln.Addr().String()
	setEnv(t, env)
	err = run(context.Background(), nil, &syncBuffer{}, nil, cheap)
	assert.ErrorContains(t, err, "listen on METRICS_ADDRESS "+ln.Addr().String())
}

// TestRunWithoutMetrics: an empty METRICS_ADDRESS serves no metrics at all.
func TestRunWithoutMetrics(t *testing.T) {
	setEnv(t, map[string]string{
		"SECRET": secret, "REST_SERVER_ADDRESS": "127.0.0.1", "REST_SERVER_PORT": "0",
		"DATA_DIR": t.TempDir(), "METRICS_ADDRESS": "",
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]net.Addr, 1)
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { // ends when ctx is cancelled
		done <- run(ctx, nil, logs, func(a, m net.Addr) { addrs <- [2]net.Addr{a, m} }, cheap)
	}()
	select {
	case a := <-addrs:
		assert.Nil(t, a[1], "no metrics listener")
	case err := <-done:
		t.Fatalf("run ended before serving: %v\n%s", err, logs)
	}
	cancel()
	require.NoError(t, <-done)
	assert.Contains(t, logs.String(), `"metrics":"off"`)
}

// TestRunDrainsInFlightRequests starts a request, shuts the service down
// while the request is still arriving, and expects the request to be
// answered before run returns.
func TestRunDrainsInFlightRequests(t *testing.T) {
	env := map[string]string{
		"SECRET": secret, "REST_SERVER_ADDRESS": "127.0.0.1", "REST_SERVER_PORT": "0",
		"DATA_DIR": t.TempDir(), "SHUTDOWN_TIMEOUT": "10s",
	}
	setEnv(t, env)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addr := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { // ends when ctx is cancelled and the request is answered
		done <- run(ctx, nil, &syncBuffer{}, func(a, _ net.Addr) { addr <- a }, cheap)
	}()
	a := (<-addr).String()

	conn, err := net.Dial("tcp", a)
	require.NoError(t, err)
	defer conn.Close()
	r := bufio.NewReader(conn)
	// A first full round trip proves the server accepted the connection;
	// a dialled but not yet accepted one would be dropped with the listener.
	_, err = io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	require.NoError(t, err)
	resp, err := http.ReadResponse(r, nil)
	require.NoError(t, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()

	body := `{"user_name":"inflight","password":"correct horse"}`
	_, err = io.WriteString(conn, "POST /register HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"+
		"Expect: 100-continue\r\nContent-Length: "+strconv.Itoa(len(body))+"\r\n\r\n")
	require.NoError(t, err)
	// The server answers 100 Continue only once the handler reads the
	// body: the request is then in flight, not an idle connection that
	// Shutdown would close.
	status, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "HTTP/1.1 100 Continue\r\n", status)
	blank, err := r.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "\r\n", blank)

	cancel()
	// Shutdown has begun once the listener refuses new connections.
	require.Eventually(t, func() bool {
		c, err := net.Dial("tcp", a)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, 5*time.Second, 10*time.Millisecond)

	_, err = io.WriteString(conn, body)
	require.NoError(t, err)
	resp, err = http.ReadResponse(r, nil)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "the in-flight request was served")
	require.NoError(t, <-done)
}

func TestGCPercent(t *testing.T) {
	ptr := func(n int) *int { return &n }
	tests := []struct {
		name  string
		set   *int
		slots int
		want  int
	}{
		{"one slot", nil, 1, 600},
		{"two slots", nil, 2, 300},
		{"four slots", nil, 4, 150},
		{"as many slots as the headroom", nil, gcHeadroomHashes, 100},
		{"more slots keep Go's default", nil, 32, 100},
		{"no slots counts as one", nil, 0, 600},
		{"GOGC wins", ptr(120), 2, 120},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, gcPercent(tt.set, tt.slots))
		})
	}
}

// TestRunSetsGCPercent checks that the service runs with the GOGC it logs,
// its own choice when GOGC is unset, and puts the process's back when it
// returns.
func TestRunSetsGCPercent(t *testing.T) {
	gogc := func() int {
		s := []metrics.Sample{{Name: "/gc/gogc:percent"}}
		metrics.Read(s)
		return int(s[0].Value.Uint64())
	}
	before := gogc()
	for _, tt := range []struct {
		name string
		env  map[string]string
		want int
	}{
		// cheap hashing uses one thread, so there is a slot per P.
		{"unset", map[string]string{}, gcPercent(nil, runtime.GOMAXPROCS(0))},
		{"set", map[string]string{"GOGC": "240"}, 240},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["SECRET"] = secret
			tt.env["REST_SERVER_ADDRESS"] = "127.0.0.1"
			tt.env["REST_SERVER_PORT"] = "0"
			tt.env["DATA_DIR"] = t.TempDir()
			setEnv(t, tt.env)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ready := make(chan struct{})
			logs := &syncBuffer{}
			done := make(chan error, 1)
			go func() { done <- run(ctx, nil, logs, func(_, _ net.Addr) { close(ready) }, cheap) }() // ends when ctx is cancelled
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("run ended before serving: %v\n%s", err, logs)
			}
			assert.Equal(t, tt.want, gogc())
			assert.Contains(t, logs.String(), `"gc_percent":`+strconv.Itoa(tt.want)+`,`)
			cancel()
			require.NoError(t, <-done)
			assert.Equal(t, before, gogc(), "restored on return")
		})
	}
	setEnv(t, map[string]string{"SECRET": secret, "GOGC": "off"})
	err := run(context.Background(), nil, &syncBuffer{}, nil)
	assert.ErrorContains(t, err, "GOGC: must be unset or an integer")
}
