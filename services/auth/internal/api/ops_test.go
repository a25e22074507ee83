package api_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

func TestUnknownRouteAndMethod(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	tests := []struct {
		method, path string
		code         int
		body         string
		allow        string
	}{
		{http.MethodGet, "/nope", 404, `{"error":"no such route"}`, ""},
		{http.MethodPost, "/register/extra", 404, `{"error":"no such route"}`, ""},
		{http.MethodGet, "/register", 405, `{"error":"method not allowed"}`, "POST"},
		{http.MethodDelete, "/login", 405, `{"error":"method not allowed"}`, "POST"},
		{http.MethodPost, "/healthz", 405, `{"error":"method not allowed"}`, "GET"},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := e.do(tt.method, tt.path, nil)
			assert.Equal(t, tt.code, r.Code)
			assert.JSONEq(t, tt.body, r.Raw)
			assert.Equal(t, "application/json; charset=utf-8", r.Header.Get("Content-Type"))
			if tt.allow != "" {
				assert.Contains(t, r.Header.Get("Allow"), tt.allow)
			}
		})
	}
}

func TestProbes(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", nil).Code)
		r := e.do(http.MethodGet, "/readyz", nil)
		assert.Equal(t, http.StatusOK, r.Code)
		assert.Equal(t, "ready", r.Body["status"])
	})
}

// TestDatabaseDown closes the database under a running router: requests
// that need it fail fast with 503, the liveness probe stays green.
func TestDatabaseDown(t *testing.T) {
	eachBackend(t, func(t *testing.T, s *store.Store) {
		e := newEnv(t, s)
		require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
		require.NoError(t, s.Close())

		for _, r := range []response{
			e.register("bob", "correct horse"),
			e.login("alice", "correct horse"),
			e.do(http.MethodGet, "/readyz", nil),
		} {
			assert.Equal(t, http.StatusServiceUnavailable, r.Code, r.Raw)
			assert.JSONEq(t, `{"error":"service unavailable, retry later"}`, r.Raw)
			assert.Equal(t, "1", r.Header.Get("Retry-After"))
		}
		assert.Equal(t, http.StatusOK, e.do(http.MethodGet, "/healthz", nil).Code)
		assert.Positive(t, e.logs.FilterMessage("request failed").Len(), "server errors are logged")
	})
}

func TestRequestIDAndLogLine(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	const secretPassword = "hunter2-secret-pw"

	r := e.do(http.MethodPost, "/register", creds("alice", secretPassword), "X-Request-ID", "trace-42.a:b")
	require.Equal(t, http.StatusOK, r.Code)
	assert.Equal(t, "trace-42.a:b", r.Header.Get("X-Request-ID"), "a sane incoming ID is kept")

	r = e.do(http.MethodPost, "/login", creds("alice", secretPassword), "X-Request-ID", "bad id\nInjected: 1")
	require.Equal(t, http.StatusOK, r.Code)
	generated := r.Header.Get("X-Request-ID")
	assert.Regexp(t, `^[0-9a-f]{32}$`, generated, "an insane ID is replaced")
	tok := r.Body["token"].(string)

	lines := e.logs.FilterMessage("request").All()
	require.Len(t, lines, 2, "one line per request")
	first := lines[0].ContextMap()
	assert.Equal(t, "trace-42.a:b", first["request_id"])
	assert.Equal(t, "POST", first["method"])
	assert.Equal(t, "/register", first["route"])
	assert.EqualValues(t, 200, first["status"])
	assert.Equal(t, "192.0.2.1", first["client_ip"])
	assert.Contains(t, first, "latency")
	assert.Equal(t, generated, lines[1].ContextMap()["request_id"])

	for _, l := range e.logs.All() {
		for k, v := range l.ContextMap() {
			s, _ := v.(string)
			assert.NotContains(t, s, secretPassword, "field %s", k)
			assert.NotContains(t, s, tok, "field %s", k)
		}
	}
}

func TestMetricsEndpoint(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	e.register("alice", "correct horse")
	e.register("alice", "correct horse")
	e.login("alice", "correct horse")
	e.do(http.MethodGet, "/some/random/path", nil)

	text := metricsText(t, e)
	for _, want := range []string{
		`auth_http_requests_total{method="POST",route="/register",status="200"} 1`,
		`auth_http_requests_total{method="POST",route="/register",status="409"} 1`,
		`auth_http_requests_total{method="POST",route="/login",status="200"} 1`,
		`auth_http_requests_total{method="GET",route="unmatched",status="404"} 1`,
		`auth_http_request_duration_seconds_count{method="POST",route="/register"} 2`,
		`auth_password_hash_duration_seconds_count{op="hash"}`,
		`auth_password_hash_duration_seconds_count{op="verify"} 1`,
		`go_goroutines`,
	} {
		assert.Contains(t, text, want)
	}
	assert.NotContains(t, text, "/some/random/path", "raw paths never become labels")
}

// TestNoMetricsOnThePublicPort: /metrics is served on METRICS_ADDRESS
// only (see cmd/auth); the API answers it like any unknown path.
func TestNoMetricsOnThePublicPort(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	r := e.do(http.MethodGet, "/metrics", nil)
	assert.Equal(t, http.StatusNotFound, r.Code)
	assert.JSONEq(t, `{"error":"no such route"}`, r.Raw)
	assert.NotContains(t, r.Raw, "go_goroutines")
}

// metricsText scrapes the registry through the handler that the metrics
// listener serves.
func metricsText(t *testing.T, e *env) string {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	rec := httptest.NewRecorder()
	e.metrics.Handler().ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

func TestHTTPRouterIsAHandler(t *testing.T) {
	// A real server in front of the router: one round trip over TCP, so
	// that the transport is exercised as the binary uses it.
	e := newEnv(t, dbtest.SQLite(t))
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/register", "application/json", strings.NewReader(`{"user_name":"net","password":"password1"}`))
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestHashQueueTimeout: a request whose deadline passes before it gets a
// hashing slot gives up with 503 and Retry-After instead of piling up.
func TestHashQueueTimeout(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), withRequestTimeout(time.Nanosecond))
	for _, r := range []response{e.register("alice", "correct horse"), e.login("alice", "correct horse")} {
		assert.Equal(t, http.StatusServiceUnavailable, r.Code, r.Raw)
		assert.Contains(t, []string{
			`{"error":"server busy, retry later"}`,
			`{"error":"service unavailable, retry later"}`, // deadline hit in the database first
		}, r.Raw)
		assert.Equal(t, "1", r.Header.Get("Retry-After"))
	}
	_, err := e.store.ByName(t.Context(), "alice")
	assert.ErrorIs(t, err, users.ErrNotFound, "nothing was registered")
}
