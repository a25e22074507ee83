package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
)

const (
	page  = "http://127.0.0.1:8081" // the chat service's web page
	other = "http://evil.example"
)

// preflight sends what a browser on origin sends before it POSTs JSON to
// path.
func (e *env) preflight(path, origin string) response {
	e.t.Helper()
	return e.do(http.MethodOptions, path, nil, "Origin", origin,
		"Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "content-type,x-request-id")
}

// assertNoCORS checks that r lets no other origin read it.
func assertNoCORS(t *testing.T, r response) {
	t.Helper()
	for k := range r.Header {
		assert.False(t, strings.HasPrefix(k, "Access-Control-"), "unexpected header %s: %s", k, r.Header.Get(k))
	}
}

func TestCORS(t *testing.T) {
	list := []string{page, "https://chat.example.com"}
	tests := []struct {
		name         string
		allowed      []string // CORS_ALLOWED_ORIGINS
		method, path string   // OPTIONS is a preflight
		origin       string   // "" sends none
		code         int
		allowOrigin  string // "" means no CORS headers at all
	}{
		{"login from an allowed origin", list, http.MethodPost, "/login", page, 200, page},
		{"login from the second allowed origin", list, http.MethodPost, "/login", "https://chat.example.com", 200, "https://chat.example.com"},
		{"preflight of login", list, http.MethodOptions, "/login", page, 204, page},
		{"preflight of register", list, http.MethodOptions, "/register", page, 204, page},
		{"preflight from another origin", list, http.MethodOptions, "/login", other, 403, ""},
		{"preflight from another port", list, http.MethodOptions, "/login", "http://127.0.0.1:8082", 403, ""},
		{"preflight from another scheme", list, http.MethodOptions, "/login", "https://127.0.0.1:8081", 403, ""},
		{"preflight from a sandboxed page", list, http.MethodOptions, "/register", "null", 403, ""},
		{"preflight with a trailing slash", list, http.MethodOptions, "/login", page + "/", 403, ""},
		{"login from another origin is served", list, http.MethodPost, "/login", other, 200, ""},
		{"login without Origin", list, http.MethodPost, "/login", "", 200, ""},
		{"any: login", []string{"*"}, http.MethodPost, "/login", other, 200, "*"},
		{"any: preflight", []string{"*"}, http.MethodOptions, "/register", other, 204, "*"},
		{"any: login without Origin", []string{"*"}, http.MethodPost, "/login", "", 200, ""},
		{"none: login from the page", nil, http.MethodPost, "/login", page, 200, ""},
		{"none: preflight from the page", nil, http.MethodOptions, "/login", page, 403, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dbtest.SQLite(t), withCORS(tt.allowed...))
			require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)

			var r response
			if tt.method == http.MethodOptions {
				r = e.preflight(tt.path, tt.origin)
			} else if tt.origin != "" {
				r = e.login("alice", "correct horse", "Origin", tt.origin)
			} else {
				r = e.login("alice", "correct horse")
			}
			require.Equal(t, tt.code, r.Code, r.Raw)

			if len(tt.allowed) > 0 {
				assert.Contains(t, r.Header.Values("Vary"), "Origin", "the answer depends on Origin, whatever it is")
			} else {
				assert.Empty(t, r.Header.Values("Vary"), "nothing varies when no origin is allowed")
			}
			if tt.code == http.StatusForbidden {
				assert.JSONEq(t, `{"error":"origin not allowed"}`, r.Raw)
			}
			if tt.allowOrigin == "" {
				assertNoCORS(t, r)
				return
			}
			assert.Equal(t, tt.allowOrigin, r.Header.Get("Access-Control-Allow-Origin"))
			assert.Empty(t, r.Header.Values("Access-Control-Allow-Credentials"), "the API uses no cookies")
			if tt.method == http.MethodOptions {
				assert.Empty(t, r.Raw)
				assert.Equal(t, "POST", r.Header.Get("Access-Control-Allow-Methods"))
				assert.Equal(t, "Content-Type, X-Request-ID", r.Header.Get("Access-Control-Allow-Headers"))
				assert.Equal(t, "600", r.Header.Get("Access-Control-Max-Age"))
			} else {
				assert.Equal(t, "Retry-After, X-Request-ID", r.Header.Get("Access-Control-Expose-Headers"))
				assert.NotEmpty(t, r.Body["token"])
			}
		})
	}
}

// TestCORSErrorsAreReadable: the page can read why a request failed and
// when to retry, not only successes.
func TestCORSErrorsAreReadable(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), withCORS(page), withLimits(1, 10, 8, 1000))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)

	for _, tt := range []struct {
		name       string
		r          response
		code       int
		retryAfter bool
	}{
		{"wrong password", e.login("alice", "wrong horse", "Origin", page), 401, false},
		{"locked", e.login("alice", "correct horse", "Origin", page), 429, true},
		{"name taken", e.do(http.MethodPost, "/register", creds("alice", "correct horse"), "Origin", page), 409, false},
		{"unknown route", e.do(http.MethodGet, "/nope", nil, "Origin", page), 404, false},
		{"wrong method", e.do(http.MethodGet, "/login", nil, "Origin", page), 405, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.code, tt.r.Code, tt.r.Raw)
			assert.NotEmpty(t, tt.r.Body["error"])
			assert.Equal(t, page, tt.r.Header.Get("Access-Control-Allow-Origin"))
			assert.Equal(t, "Retry-After, X-Request-ID", tt.r.Header.Get("Access-Control-Expose-Headers"))
			if tt.retryAfter {
				assert.NotEmpty(t, tt.r.Header.Get("Retry-After"))
			}
		})
	}
}

// TestPreflightsAreNotAttempts: preflights never reach the registration
// limit, the login throttles or password hashing.
func TestPreflightsAreNotAttempts(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), withCORS(page), withLimits(3, 10, 8, 1)) // one registration per address
	for range 20 {
		require.Equal(t, http.StatusNoContent, e.preflight("/register", page).Code)
	}
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code, "preflights used no registration")
	require.Equal(t, http.StatusTooManyRequests, e.register("bob", "correct horse").Code, "the limit is one")

	for range 2 { // one short of the account's lockout
		require.Equal(t, http.StatusUnauthorized, e.login("alice", "wrong horse").Code)
	}
	before := verifyCount(t, e)
	for range 20 {
		require.Equal(t, http.StatusNoContent, e.preflight("/login", page).Code)
	}
	assert.Equal(t, before, verifyCount(t, e), "a preflight hashes nothing")
	assert.Equal(t, http.StatusOK, e.login("alice", "correct horse").Code, "preflights are not failed logins")
}

func TestPreflightsAreLoggedAndCounted(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), withCORS(page))
	require.Equal(t, http.StatusNoContent, e.preflight("/login", page).Code)
	require.Equal(t, http.StatusForbidden, e.preflight("/login", other).Code)

	lines := e.logs.FilterMessage("request").All()
	require.Len(t, lines, 2)
	for i, code := range []int{204, 403} {
		f := lines[i].ContextMap()
		assert.Equal(t, "OPTIONS", f["method"])
		assert.Equal(t, "/login", f["route"])
		assert.EqualValues(t, code, f["status"])
		assert.NotEmpty(t, f["request_id"])
	}
	text := metricsText(t, e)
	assert.Contains(t, text, `auth_http_requests_total{method="OPTIONS",route="/login",status="204"} 1`)
	assert.Contains(t, text, `auth_http_requests_total{method="OPTIONS",route="/login",status="403"} 1`)
}

// TestPlainOptions: an OPTIONS that is not a preflight asks what the
// route supports, with or without CORS.
func TestPlainOptions(t *testing.T) {
	for name, allowed := range map[string][]string{"none": nil, "list": {page}} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t, dbtest.SQLite(t), withCORS(allowed...))
			r := e.do(http.MethodOptions, "/login", nil)
			assert.Equal(t, http.StatusNoContent, r.Code)
			assert.Equal(t, "POST, OPTIONS", r.Header.Get("Allow"))
			assert.Empty(t, r.Raw)
			assertNoCORS(t, r)

			r = e.do(http.MethodGet, "/register", nil)
			assert.Equal(t, http.StatusMethodNotAllowed, r.Code)
			assert.Equal(t, "POST, OPTIONS", r.Header.Get("Allow"))
		})
	}
}
