// Package api is the HTTP transport of the auth service: a gin router
// with the JSON endpoints /register and /login and the probes /healthz and
// /readyz. /metrics is not here: it is served on a listener of its own
// (metrics.Serve), off the public port.
//
// Errors from every layer are turned into status codes in one place,
// status in errors.go. Every error response is {"error": "..."}.
package api

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// Accounts registers and logs in users; *users.Service implements it.
type Accounts interface {
	Register(ctx context.Context, name, password string) (users.User, error)
	Login(ctx context.Context, name, password, address string) (users.User, error)
}

// Issuer signs user tokens; *token.Signer implements it.
type Issuer interface {
	IssueUser(id, name string, ttl time.Duration) (string, time.Time, error)
}

// Limiter refuses requests from a client address that come too often: 0
// lets one through, else it is how long to wait; *throttle.Limiter
// implements it.
type Limiter interface {
	Allow(key string) time.Duration
}

// Pinger reports whether the database is reachable; *store.Store
// implements it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Config tunes the router.
type Config struct {
	TokenDuration  time.Duration
	RequestTimeout time.Duration
	MaxBodyBytes   int64
	// TrustedProxies may set X-Forwarded-For. Empty means none: the
	// client address used for throttling is the TCP peer.
	TrustedProxies []string
	// CORSAllowedOrigins are the origins, exactly as browsers send them
	// (scheme://host[:port]), whose pages may call the API, or just "*"
	// for any. Empty means none: no CORS headers, preflights refused.
	CORSAllowedOrigins []string
}

// Deps are the collaborators of the handlers.
type Deps struct {
	Accounts Accounts
	// Registrations limits /register per client address.
	Registrations Limiter
	Issuer        Issuer
	DB            Pinger
	Metrics       *metrics.Metrics
	Log           *zap.Logger
}

type handlers struct {
	cfg     Config
	origins origins
	Deps
	// sampled logs what an outside client can cause at will, refusals and
	// server errors, through a sampler (see newSampled); Deps.Log logs
	// the rest, which the hashing rate bounds.
	sampled *zap.Logger
	// proxyHint warns once that X-Forwarded-For arrives while
	// TRUSTED_PROXIES is empty.
	proxyHint sync.Once
}

// New returns the router.
func New(cfg Config, deps Deps) (*gin.Engine, error) {
	// gin's mode is process-wide; release mode only silences its
	// start-up banner and route dump, which we replace with zap.
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	// No redirects: a POST answered 307/301 would leave clients guessing;
	// a path that is not exactly a route is a JSON 404 like any other.
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	if err := r.SetTrustedProxies(cfg.TrustedProxies); err != nil {
		return nil, fmt.Errorf("api: TRUSTED_PROXIES: %w", err)
	}
	h := &handlers{cfg: cfg, origins: newOrigins(cfg.CORSAllowedOrigins), Deps: deps,
		sampled: newSampled(deps.Log, deps.Metrics)}

	r.Use(requestID, h.observe, h.recover)
	if len(cfg.CORSAllowedOrigins) > 0 {
		r.Use(h.cors)
	}
	r.Use(timeout(cfg.RequestTimeout))
	r.NoRoute(func(c *gin.Context) { h.fail(c, errNoRoute) })
	r.NoMethod(func(c *gin.Context) { h.fail(c, errNoMethod) })

	// A browser preflights these POSTs (their JSON Content-Type is not
	// CORS-safelisted), so each has its OPTIONS route, whatever the
	// configuration: with no origin allowed, preflights are refused.
	preflight := h.preflight(http.MethodPost)
	r.POST("/register", h.register)
	r.OPTIONS("/register", preflight)
	r.POST("/login", h.login)
	r.OPTIONS("/login", preflight)
	r.GET("/healthz", h.healthz)
	r.GET("/readyz", h.readyz)
	return r, nil
}
