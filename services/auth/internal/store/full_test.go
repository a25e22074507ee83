package store

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/api"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// fullDisk is an SQLite store behind the real router, whose database can
// be made full: SQLite's max_page_count, which holds per connection, is
// set on the pool's only connection.
type fullDisk struct {
	t       *testing.T
	s       *Store
	handler http.Handler
}

func newFullDisk(t *testing.T) *fullDisk {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	sqlDB, err := s.db.DB()
	require.NoError(t, err)
	sqlDB.SetMaxOpenConns(1)

	log := zap.NewNop()
	m := metrics.New()
	hasher, err := password.New(password.Params{MemoryKiB: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32})
	require.NoError(t, err)
	logins := throttle.NewLogins(throttle.LoginConfig{
		PairFailures: 5, AddressFailures: 100, AccountFailures: 50, Window: time.Minute,
		Lockout: time.Minute, MaxLockout: time.Minute, KnownFor: time.Hour, MaxEntries: 100,
	}, nil)
	svc, err := users.NewService(context.Background(), s, hasher, logins, log)
	require.NoError(t, err)
	signer, err := token.NewSigner("full-disk-test-secret-0123456789abcdef", "")
	require.NoError(t, err)
	h, err := api.New(api.Config{TokenDuration: time.Minute, RequestTimeout: 10 * time.Second, MaxBodyBytes: 4096},
		api.Deps{
			Accounts: svc, Registrations: throttle.NewLimiter(1, 1_000_000, 100, nil),
			Issuer: signer, DB: s, Metrics: m, Log: log,
		})
	require.NoError(t, err)
	return &fullDisk{t: t, s: s, handler: h}
}

// limit sets max_page_count to the pages in use plus extra.
func (f *fullDisk) limit(extra int) {
	var pages int
	require.NoError(f.t, f.s.db.Raw("PRAGMA page_count").Scan(&pages).Error)
	require.NoError(f.t, f.s.db.Exec(fmt.Sprintf("PRAGMA max_page_count = %d", pages+extra)).Error)
}

func (f *fullDisk) unlimit() {
	require.NoError(f.t, f.s.db.Exec("PRAGMA max_page_count = 1073741823").Error)
}

type answer struct {
	code       int
	retryAfter string
	body       map[string]any
}

func (f *fullDisk) do(method, path, body string) answer {
	f.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	a := answer{code: rec.Code, retryAfter: rec.Header().Get("Retry-After")}
	require.NoError(f.t, json.Unmarshal(rec.Body.Bytes(), &a.body), rec.Body.String())
	return a
}

func (f *fullDisk) register(name string) answer {
	return f.do(http.MethodPost, "/register", `{"user_name":"`+name+`","password":"correct horse"}`)
}

func (f *fullDisk) login(name string) answer {
	return f.do(http.MethodPost, "/login", `{"user_name":"`+name+`","password":"correct horse"}`)
}

func (f *fullDisk) readyz() answer { return f.do(http.MethodGet, "/readyz", "") }

// fill registers users named prefix0000 and on until the database is
// full and returns the names stored and the one refused.
func (f *fullDisk) fill(prefix string) (stored []string, refused string) {
	f.t.Helper()
	f.limit(0)
	for i := range 2000 {
		name := fmt.Sprintf("%s%04d", prefix, i)
		a := f.register(name)
		if a.code != http.StatusOK {
			assertUnavailable(f.t, a)
			return stored, name
		}
		stored = append(stored, name)
	}
	f.t.Fatal("the database never filled up")
	return nil, ""
}

func assertUnavailable(t *testing.T, a answer) {
	t.Helper()
	assert.Equal(t, http.StatusServiceUnavailable, a.code, a.body)
	assert.Equal(t, "1", a.retryAfter)
	assert.Equal(t, map[string]any{"error": "service unavailable, retry later"}, a.body)
}

// TestFullDatabase: a registration that cannot be stored for lack of
// space is a 503 with Retry-After, not a 500; /readyz says not ready while
// writes fail, and ready again once a write succeeds, whether a client's
// or its own probe; nothing stored is damaged and reads keep working.
func TestFullDatabase(t *testing.T) {
	f := newFullDisk(t)
	f.s.health.interval = time.Hour // no second probe unless the test says so
	require.Equal(t, http.StatusOK, f.register("alice").code)
	require.Equal(t, http.StatusOK, f.readyz().code)

	stored, refused := f.fill("user")
	require.NotEmpty(t, stored)
	assertUnavailable(t, f.register(refused))
	assertUnavailable(t, f.readyz()) // probes: still full
	assertUnavailable(t, f.readyz())
	assert.Equal(t, http.StatusOK, f.login("alice").code, "reads still work")
	assert.Equal(t, http.StatusOK, f.login(stored[len(stored)-1]).code)
	_, err := f.s.ByName(t.Context(), refused)
	assert.ErrorIs(t, err, users.ErrNotFound, "the refused account was not half stored")

	// Space again. Probes are at most one an hour here, so readiness
	// waits for a client's write...
	f.unlimit()
	assertUnavailable(t, f.readyz())
	require.Equal(t, http.StatusOK, f.register(refused).code)
	assert.Equal(t, http.StatusOK, f.readyz().code, "a successful write clears the fault")

	// ...or, with probes due, recovers on its own without any client's write.
	stored2, refused2 := f.fill("more")
	assertUnavailable(t, f.readyz())
	f.unlimit()
	f.s.health.interval = 0
	assert.Equal(t, http.StatusOK, f.readyz().code, "the probe's write succeeded")
	require.Equal(t, http.StatusOK, f.register(refused2).code)

	var check string
	require.NoError(t, f.s.db.Raw("PRAGMA integrity_check").Scan(&check).Error)
	assert.Equal(t, "ok", check)
	var n int64
	require.NoError(t, f.s.db.Model(&userRow{}).Count(&n).Error)
	assert.EqualValues(t, 1+len(stored)+1+len(stored2)+1, n, "every account, and no probe row")
	for _, name := range []string{"alice", refused, stored2[0], refused2} {
		assert.Equal(t, http.StatusOK, f.login(name).code, name)
	}
}

// TestProbesAreRateLimited: /readyz is public; while writes fail it
// probes at most once per interval, however often it is asked.
func TestProbesAreRateLimited(t *testing.T) {
	f := newFullDisk(t)
	f.fill("user")
	f.s.health.interval = time.Hour
	for range 50 {
		assertUnavailable(t, f.readyz())
	}
	f.unlimit()
	assertUnavailable(t, f.readyz()) // no probe was due, so the state is the last one
}

func TestOutOfSpace(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{liteErr(13), true},    // SQLITE_FULL
		{liteErr(778), true},   // SQLITE_IOERR_WRITE
		{liteErr(5), false},    // SQLITE_BUSY
		{liteErr(2067), false}, // SQLITE_CONSTRAINT_UNIQUE
		{pgErr("53100"), true},
		{pgErr("53300"), false}, // too many connections
		{fmt.Errorf("create user: %w", liteErr(13)), true},
		{context.DeadlineExceeded, false},
	} {
		assert.Equal(t, tt.want, outOfSpace(tt.err), "%v", tt.err)
	}
}

type liteErr int

func (e liteErr) Error() string { return fmt.Sprintf("sqlite %d", int(e)) }
func (e liteErr) Code() int     { return int(e) }

type pgErr string

func (e pgErr) Error() string    { return "pg " + string(e) }
func (e pgErr) SQLState() string { return string(e) }

// TestProbeRecoversAndLeavesNothing: on both backends, a store that saw
// a write fail for lack of space is not ready until its probe's write
// succeeds, and the probe leaves no row behind.
func TestProbeRecoversAndLeavesNothing(t *testing.T) {
	for _, b := range []struct {
		name string
		cfg  func(t *testing.T) Config
	}{
		{"sqlite", func(t *testing.T) Config { return Config{DataDir: t.TempDir()} }},
		{"postgres", func(t *testing.T) Config { return Config{DatabaseURL: sqldbtest.PostgresURL(t)} }},
	} {
		t.Run(b.name, func(t *testing.T) {
			s, err := Open(context.Background(), b.cfg(t))
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Create(t.Context(), "alice", "hash")
			require.NoError(t, err)

			s.health.interval = time.Hour
			s.health.wrote(liteErr(13))
			s.health.lastProbe = time.Now() // as if one had just failed
			err = s.Ping(t.Context())
			assert.ErrorIs(t, err, users.ErrUnavailable)
			s.health.lastProbe = time.Time{}
			assert.NoError(t, s.Ping(t.Context()), "the probe found space")
			assert.NoError(t, s.Ping(t.Context()), "and cleared the fault")
			var n int64
			require.NoError(t, s.db.Model(&userRow{}).Count(&n).Error)
			assert.EqualValues(t, 1, n)
			_, err = s.ByName(t.Context(), probeName)
			assert.ErrorIs(t, err, users.ErrNotFound)
		})
	}
}
