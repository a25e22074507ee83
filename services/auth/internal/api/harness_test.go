package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/api"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testSecret = "test-secret-0123456789abcdef0123456789"

// cheap keeps the suite fast; production parameters are exercised by
// BenchmarkLogin and the password package.
var cheap = password.Params{MemoryKiB: 256, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

// clock is a settable time source for the throttles.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// NewTicker makes clock a zapcore.Clock, so that log entries carry its
// time and the log sampler's per-second budget follows it.
func (c *clock) NewTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// env is one service wired exactly as run wires it, over a real store.
type env struct {
	t       testing.TB
	handler http.Handler
	store   *store.Store
	signer  *token.Signer
	metrics *metrics.Metrics
	logs    *observer.ObservedLogs
	clock   *clock
	ctx     context.Context // of every request; nil means none
}

type option func(*settings)

type settings struct {
	params          password.Params
	maxFailures     int // per (account, address)
	maxAddrFailures int
	maxAcctFailures int // per account, from addresses it has not logged in from
	registerBurst   int
	requestTimeout  time.Duration
	corsOrigins     []string
	logLevel        zapcore.Level
}

// withLogLevel sets the level the logs are recorded at, as LOG_LEVEL
// does; the default records everything (debug).
func withLogLevel(l zapcore.Level) option { return func(s *settings) { s.logLevel = l } }

func withParams(p password.Params) option { return func(s *settings) { s.params = p } }

func withRequestTimeout(d time.Duration) option { return func(s *settings) { s.requestTimeout = d } }

// withCORS sets CORS_ALLOWED_ORIGINS; the default allows none.
func withCORS(origins ...string) option { return func(s *settings) { s.corsOrigins = origins } }

// withLimits sets the failures per (account, address), per address and
// per account that lock logins, and the registrations a client address
// may make at once (the bucket refills at one an hour, which the frozen
// clock never reaches).
func withLimits(pair, address, account, registrations int) option {
	return func(s *settings) {
		s.maxFailures, s.maxAddrFailures, s.maxAcctFailures, s.registerBurst = pair, address, account, registrations
	}
}

func newEnv(t testing.TB, s *store.Store, opts ...option) *env {
	t.Helper()
	set := settings{
		params: cheap, maxFailures: 3, maxAddrFailures: 10, maxAcctFailures: 8, registerBurst: 1000,
		requestTimeout: 10 * time.Second, logLevel: zap.DebugLevel,
	}
	for _, o := range opts {
		o(&set)
	}
	clk := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	core, logs := observer.New(set.logLevel)
	log := zap.New(core, zap.WithClock(clk))
	m := metrics.New()
	hasher, err := password.New(set.params, password.WithObserver(m.ObserveHash))
	require.NoError(t, err)
	logins := throttle.NewLogins(throttle.LoginConfig{
		PairFailures: set.maxFailures, AddressFailures: set.maxAddrFailures, AccountFailures: set.maxAcctFailures,
		Window: 15 * time.Minute, Lockout: 5 * time.Minute, MaxLockout: time.Hour,
		KnownFor: 30 * 24 * time.Hour, MaxEntries: 1000,
	}, clk.Now)
	svc, err := users.NewService(context.Background(), s, hasher, logins, log)
	require.NoError(t, err)
	signer, err := token.NewSigner(testSecret, "")
	require.NoError(t, err)
	h, err := api.New(api.Config{
		TokenDuration:      15 * time.Minute,
		RequestTimeout:     set.requestTimeout,
		MaxBodyBytes:       4096,
		CORSAllowedOrigins: set.corsOrigins,
	}, api.Deps{
		Accounts: svc, Registrations: throttle.NewLimiter(1, set.registerBurst, 1000, clk.Now),
		Issuer: signer, DB: s, Metrics: m, Log: log,
	})
	require.NoError(t, err)
	return &env{t: t, handler: h, store: s, signer: signer, metrics: m, logs: logs, clock: clk}
}

// response is a recorded answer with its JSON body decoded.
type response struct {
	Code   int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// do sends a request through the router. A nil body sends none; a string
// or []byte is sent as is; anything else is JSON-encoded.
func (e *env) do(method, path string, body any, header ...string) response {
	e.t.Helper()
	var buf []byte
	switch b := body.(type) {
	case nil:
	case string:
		buf = []byte(b)
	case []byte:
		buf = b
	default:
		var err error
		buf, err = json.Marshal(b)
		require.NoError(e.t, err)
	}
	req := httptest.NewRequest(method, path, bytes.NewReader(buf))
	if e.ctx != nil {
		req = req.WithContext(e.ctx)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i] == "RemoteAddr" {
			req.RemoteAddr = header[i+1]
			continue
		}
		req.Header.Set(header[i], header[i+1])
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	r := response{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if rec.Body.Len() > 0 && rec.Header().Get("Content-Type") == "application/json; charset=utf-8" {
		require.NoError(e.t, json.Unmarshal(rec.Body.Bytes(), &r.Body), "every JSON answer parses: %s", rec.Body.String())
	}
	return r
}

func creds(name, pw string) map[string]string {
	return map[string]string{"user_name": name, "password": pw}
}

func (e *env) register(name, pw string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/register", creds(name, pw))
}

func (e *env) login(name, pw string, header ...string) response {
	e.t.Helper()
	return e.do(http.MethodPost, "/login", creds(name, pw), header...)
}

// eachBackend runs f against a fresh SQLite and a fresh PostgreSQL store.
func eachBackend(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, b := range dbtest.Backends() {
		t.Run(b.Name, func(t *testing.T) { f(t, b.Open(t)) })
	}
}

func httptestRequest(body string) (*http.Request, *httptest.ResponseRecorder) {
	req := httptest.NewRequest(http.MethodPost, "/register", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	return req, httptest.NewRecorder()
}

// withContext returns a copy of e whose requests carry ctx.
func (e *env) withContext(ctx context.Context) *env {
	c := *e
	c.ctx = ctx
	return &c
}

// with returns a copy of e that reports to t, for fuzz targets, which
// must not use the *testing.F they were created with.
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}
