package api_test

import (
	"context"
	"database/sql"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
)

// burst sends n logins at once and counts the answers by status.
func burst(e *env, n int, login func(i int) response) map[int]int {
	codes := make(chan int, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() { // ends after one request
			defer wg.Done()
			<-start
			codes <- login(i).Code
		}()
	}
	close(start)
	wg.Wait()
	close(codes)
	count := map[int]int{}
	for c := range codes {
		count[c]++
	}
	return count
}

// TestConcurrentWrongPasswordsAreThrottled: simultaneous attempts count
// toward the limits while they are still hashing, so a burst gets no more
// verifications than the limit, per (account, address), per account and
// per address.
func TestConcurrentWrongPasswordsAreThrottled(t *testing.T) {
	const n = 60
	for _, tt := range []struct {
		name  string
		limit int
		addr  func(i int) string
		user  func(i int) string
	}{
		{"one account, one address", 3,
			func(int) string { return "203.0.113.9:4444" }, func(int) string { return "alice" }},
		{"one account, many addresses", 8,
			func(i int) string { return "192.0.2." + strconv.Itoa(i+1) + ":1000" }, func(int) string { return "alice" }},
		{"one address, many accounts", 10,
			func(int) string { return "203.0.113.9:4444" }, func(i int) string { return "user" + strconv.Itoa(i) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, dbtest.SQLite(t))
			require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
			count := burst(e, n, func(i int) response { return e.login(tt.user(i), "wrong horse", "RemoteAddr", tt.addr(i)) })
			assert.LessOrEqual(t, count[http.StatusUnauthorized], tt.limit, "%v", count)
			assert.Equal(t, n, count[http.StatusUnauthorized]+count[http.StatusTooManyRequests], "%v", count)
			assert.Equal(t, count[http.StatusUnauthorized], verifyCount(t, e), "only admitted attempts hash")
		})
	}
}

// TestIPv6AddressesAreThrottledPerSlash64: rotating through one /64 does
// not escape the address limit.
func TestIPv6AddressesAreThrottledPerSlash64(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t)) // 10 per address
	for i := range 10 {
		r := e.login("user"+strconv.Itoa(i), "guess1234", "RemoteAddr", "[2001:db8:1:2::"+strconv.Itoa(i+1)+"]:4444")
		require.Equal(t, http.StatusUnauthorized, r.Code)
	}
	assert.Equal(t, http.StatusTooManyRequests, e.login("other", "guess1234", "RemoteAddr", "[2001:db8:1:2:ffff::1]:1").Code)
	assert.Equal(t, http.StatusUnauthorized, e.login("other", "guess1234", "RemoteAddr", "[2001:db8:1:3::1]:1").Code,
		"the next /64 is another client")
}

// TestInvalidUTF8IsRejected: encoding/json would turn these bytes into
// U+FFFD, so distinct passwords would collide and short ones pass the
// length check.
func TestInvalidUTF8IsRejected(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	tests := []struct {
		name, body, field string
	}{
		{"bad bytes in password", "{\"user_name\":\"alice\",\"password\":\"\xff\xff\xff\xff\xff\xff\xff\xff\"}", "password"},
		{"short bad password", "{\"user_name\":\"alice\",\"password\":\"\xff\xff\xff\"}", "password"},
		{"bad bytes in name", "{\"user_name\":\"al\xfece\",\"password\":\"password1\"}", "user_name"},
		{"lone high surrogate", `{"user_name":"alice","password":"\ud800xxxxxxxx"}`, "password"},
		{"lone low surrogate", `{"user_name":"alice","password":"xxxxxxxx\udc00"}`, "password"},
		{"high surrogate then non-low", `{"user_name":"alice","password":"\ud800\u0041xxxxxxxx"}`, "password"},
	}
	for _, path := range []string{"/register", "/login"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				r := e.do(http.MethodPost, path, tt.body)
				assert.Equal(t, http.StatusBadRequest, r.Code, r.Raw)
				assert.Equal(t, `invalid request body: field "`+tt.field+`" must be valid UTF-8`, r.Body["error"])
			})
		}
	}
	t.Run("valid surrogate pairs and escapes are fine", func(t *testing.T) {
		r := e.do(http.MethodPost, "/register", `{"user_name":"bob","password":"\ud83d\ude00\\u\"\u00e9xxxx"}`)
		assert.Equal(t, http.StatusOK, r.Code, r.Raw)
		assert.Equal(t, http.StatusOK, e.login("bob", "\U0001F600\\u\"éxxxx").Code)
	})
}

// TestFieldNamesAreExactAndUnique: encoding/json alone matches names in
// any case and lets a later duplicate win.
func TestFieldNamesAreExactAndUnique(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	tests := []struct {
		name, body, msg string
	}{
		{"other case", `{"USER_NAME":"alice","PassWord":"password1"}`, `unknown field "USER_NAME" (names are case-sensitive)`},
		{"one in other case", `{"user_name":"alice","Password":"password1"}`, `unknown field "Password" (names are case-sensitive)`},
		{"duplicate", `{"user_name":"alice","password":"password1","password":"password2"}`, `duplicate field "password"`},
		{"duplicate name", `{"user_name":"alice","user_name":"bob","password":"password1"}`, `duplicate field "user_name"`},
	}
	for _, path := range []string{"/register", "/login"} {
		for _, tt := range tests {
			t.Run(path+" "+tt.name, func(t *testing.T) {
				r := e.do(http.MethodPost, path, tt.body)
				assert.Equal(t, http.StatusBadRequest, r.Code, r.Raw)
				assert.Equal(t, "invalid request body: "+tt.msg, r.Body["error"])
			})
		}
	}
}

// TestNoRedirects: a path that is nearly a route is a JSON 404, never a
// bare redirect that a POST client would have to follow.
func TestNoRedirects(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	for _, path := range []string{"/register/", "/LOGIN", "//login", "/login/"} {
		t.Run(path, func(t *testing.T) {
			r := e.do(http.MethodPost, path, creds("alice", "password1"))
			assert.Equal(t, http.StatusNotFound, r.Code, r.Raw)
			assert.JSONEq(t, `{"error":"no such route"}`, r.Raw)
			assert.Empty(t, r.Header.Get("Location"))
			assert.NotEmpty(t, r.Header.Get("X-Request-ID"))
		})
	}
}

// TestClientHangUpIsNotAServerError: a request whose client went away is
// recorded as 499 at debug level, not as a 5xx with an error log.
func TestClientHangUpIsNotAServerError(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	gone := e.withContext(ctx)
	for _, r := range []response{gone.register("bob", "correct horse"), gone.login("alice", "correct horse")} {
		assert.Equal(t, 499, r.Code, r.Raw)
	}
	assert.Zero(t, e.logs.FilterMessage("request failed").Len(), "no error log")
	assert.Equal(t, 2, e.logs.FilterMessage("client closed request").Len())
	text := metricsText(t, e)
	assert.Contains(t, text, `auth_http_requests_total{method="POST",route="/register",status="499"} 1`)
	assert.Contains(t, text, `auth_http_requests_total{method="POST",route="/login",status="499"} 1`)
	assert.NotContains(t, text, `status="503"`)
}

// TestRegistrationIsRateLimitedPerAddress: a client address gets a burst
// of registrations, then 429 with Retry-After; other addresses are not
// affected, and the bucket refills with time.
func TestRegistrationIsRateLimitedPerAddress(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), withLimits(3, 10, 8, 2)) // 2 at once, then one an hour
	const addr = "203.0.113.9:1"
	reg := func(name, addr string) response {
		return e.do(http.MethodPost, "/register", creds(name, "password1"), "RemoteAddr", addr)
	}
	require.Equal(t, http.StatusOK, reg("first", addr).Code)
	require.Equal(t, http.StatusConflict, reg("first", addr).Code, "a failed registration counts too")
	r := reg("third", addr)
	assert.Equal(t, http.StatusTooManyRequests, r.Code, r.Raw)
	assert.JSONEq(t, `{"error":"too many registrations, retry later"}`, r.Raw)
	assert.Equal(t, "3600", r.Header.Get("Retry-After"))
	assert.Equal(t, http.StatusOK, reg("other", "198.51.100.1:1").Code, "other addresses are unaffected")

	e.clock.Add(time.Hour)
	assert.Equal(t, http.StatusOK, reg("third", addr).Code, "refilled")
	assert.Equal(t, http.StatusTooManyRequests, reg("fourth", addr).Code)
}

// TestUnexpectedDatabaseErrorIs500: a database error that is not an
// outage (here a missing table) is a generic 500, logged once, not a 503
// that tells clients to retry.
func TestUnexpectedDatabaseErrorIs500(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	s, err := store.Open(context.Background(), store.Config{DatabaseURL: url, Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	e := newEnv(t, s)
	db, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.ExecContext(t.Context(), "DROP TABLE users")
	require.NoError(t, err)

	for i, do := range []func() response{
		func() response { return e.register("bob", "correct horse") },
		func() response { return e.login("bob", "correct horse") },
	} {
		r := do()
		assert.Equal(t, http.StatusInternalServerError, r.Code, r.Raw)
		assert.JSONEq(t, `{"error":"internal error"}`, r.Raw)
		assert.Empty(t, r.Header.Get("Retry-After"))
		assert.Equal(t, i+1, e.logs.FilterMessage("request failed").Len(), "logged once per request")
	}
}
