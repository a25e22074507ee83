package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/metrics"
)

const (
	requestIDHeader = "X-Request-ID"
	requestIDKey    = "request_id"
	maxRequestIDLen = 64
)

// requestID takes the caller's X-Request-ID when it is sane, so that logs
// can be joined across services, and makes one up otherwise. It is echoed
// in the response.
func requestID(c *gin.Context) {
	id := c.GetHeader(requestIDHeader)
	if !saneRequestID(id) {
		b := make([]byte, 16)
		_, _ = rand.Read(b)
		id = hex.EncodeToString(b)
	}
	c.Set(requestIDKey, id)
	c.Header(requestIDHeader, id)
	c.Next()
}

// saneRequestID admits short IDs of URL-safe characters only, so that a
// caller cannot inject log lines or huge values.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// Log sampling: of each message at each level, the sampled logger writes
// the first LogSampleFirst entries in every LogSampleTick and drops the
// rest, counting them in auth_log_lines_dropped_total.
const (
	LogSampleFirst = 20
	LogSampleTick  = time.Second
)

// newSampled wraps log in the sampler for lines that outside clients can
// cause at will: without it a login flood wrote one line per refusal
// (75 MB in 20 s).
func newSampled(log *zap.Logger, m *metrics.Metrics) *zap.Logger {
	hook := zapcore.SamplerHook(func(ent zapcore.Entry, d zapcore.SamplingDecision) {
		if d&zapcore.LogDropped != 0 {
			m.DroppedLogLine(ent.Level.String())
		}
	})
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, LogSampleTick, LogSampleFirst, 0, hook)
	}))
}

// observe logs one line per request and records its metrics. It never
// logs bodies, query strings or headers, which may hold passwords or tokens.
//
// A successful /register or /login is logged at info level, unsampled: each
// cost a password hash, so their rate is bounded by the hashing slots.
// Everything a client can cause without that cost is logged through the
// sampler: refusals (4xx, 499) and other successes (probes, preflights)
// at debug level, server errors (5xx) at warn level. Every request is
// counted in the metrics either way.
func (h *handlers) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	d := time.Since(start)
	route := c.FullPath()
	if route == "" {
		route = "unmatched" // raw paths would give unbounded label values
	}
	st := c.Writer.Status()
	h.Metrics.ObserveRequest(route, c.Request.Method, st, d)
	log, level := h.sampled, zap.DebugLevel
	switch {
	case st >= 500:
		level = zap.WarnLevel
	case st < 400 && c.Request.Method == http.MethodPost && (route == "/register" || route == "/login"):
		log, level = h.Log, zap.InfoLevel
	}
	log.Log(level, "request",
		zap.String("request_id", c.GetString(requestIDKey)),
		zap.String("method", c.Request.Method),
		zap.String("route", route),
		zap.Int("status", st),
		zap.Duration("latency", d),
		zap.String("client_ip", c.ClientIP()),
	)
	if len(h.cfg.TrustedProxies) == 0 && c.GetHeader("X-Forwarded-For") != "" {
		h.proxyHint.Do(func() {
			h.Log.Warn("X-Forwarded-For ignored because TRUSTED_PROXIES is empty: if this service is behind "+
				"a reverse proxy, every client shares the proxy's address and its login limits; set TRUSTED_PROXIES",
				zap.String("peer", c.RemoteIP()))
		})
	}
}

// recover turns a panic in a handler into a logged 500 instead of a
// dropped connection. http.ErrAbortHandler keeps its meaning.
func (h *handlers) recover(c *gin.Context) {
	defer func() {
		p := recover()
		if p == nil {
			return
		}
		if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
			panic(p)
		}
		h.Log.Error("panic in handler",
			zap.String("request_id", c.GetString(requestIDKey)),
			zap.String("panic", fmt.Sprint(p)),
			zap.ByteString("stack", debug.Stack()))
		if !c.Writer.Written() {
			c.AbortWithStatusJSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
		}
	}()
	c.Next()
}

// timeout bounds each request, including time spent queued for a hashing
// slot or a database connection.
func timeout(d time.Duration) gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), d)
		defer cancel()
		c.Request = c.Request.WithContext(ctx)
		c.Next()
	}
}
