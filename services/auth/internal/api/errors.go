package api

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// Transport-level sentinel errors.
var (
	errBadRequest = errors.New("invalid request body")
	errTooLarge   = errors.New("request body too large")
	errMediaType  = errors.New("Content-Type must be application/json")
	errNoRoute    = errors.New("no such route")
	errNoMethod   = errors.New("method not allowed")
	errOrigin     = errors.New("origin not allowed") // a CORS preflight from another origin
)

// statusClientClosedRequest is nginx's code for a client that hung up
// before the answer; it never reaches the client, only logs and metrics.
const statusClientClosedRequest = 499

// rateLimitedError refuses a registration from a client address that has
// used up its allowance; it says when the next one is possible.
type rateLimitedError struct{ retryAfter time.Duration }

func (e *rateLimitedError) Error() string {
	return "too many registrations, retry after " + e.retryAfter.String()
}

// status is the one table from errors to HTTP answers. Messages of client
// errors explain what to fix; server errors get a generic message and are
// logged with the request ID instead.
func status(err error) (code int, msg string) {
	switch {
	// Checked first: a client that hung up is not the server's fault,
	// whichever layer noticed it.
	case errors.Is(err, context.Canceled):
		return statusClientClosedRequest, "client closed request"
	case errors.Is(err, errBadRequest),
		errors.Is(err, users.ErrInvalidName),
		errors.Is(err, users.ErrInvalidPassword):
		return http.StatusBadRequest, err.Error()
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge, err.Error()
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, err.Error()
	case errors.Is(err, errOrigin):
		return http.StatusForbidden, err.Error()
	case errors.Is(err, errNoRoute):
		return http.StatusNotFound, err.Error()
	case errors.Is(err, errNoMethod):
		return http.StatusMethodNotAllowed, err.Error()
	case errors.Is(err, users.ErrBadCredentials):
		return http.StatusUnauthorized, users.ErrBadCredentials.Error()
	case errors.Is(err, users.ErrNameTaken):
		return http.StatusConflict, users.ErrNameTaken.Error()
	case errors.Is(err, users.ErrThrottled):
		return http.StatusTooManyRequests, "too many failed logins, retry later"
	case errors.As(err, new(*rateLimitedError)):
		return http.StatusTooManyRequests, "too many registrations, retry later"
	// A request that waited past its deadline for a hashing slot or the
	// database is answered 503: the server, not the client, is overloaded.
	case errors.Is(err, password.ErrBusy):
		return http.StatusServiceUnavailable, "server busy, retry later"
	case errors.Is(err, users.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded):
		return http.StatusServiceUnavailable, "service unavailable, retry later"
	default:
		return http.StatusInternalServerError, "internal error"
	}
}

// fail answers c with err's status and message and logs server errors.
func (h *handlers) fail(c *gin.Context, err error) {
	code, msg := status(err)
	var (
		throttled *users.ThrottledError
		limited   *rateLimitedError
	)
	switch {
	case errors.As(err, &throttled):
		c.Header("Retry-After", retryAfter(throttled.RetryAfter))
	case errors.As(err, &limited):
		c.Header("Retry-After", retryAfter(limited.retryAfter))
	case code == http.StatusServiceUnavailable:
		c.Header("Retry-After", "1")
	}
	// Sampled: a client can cause both at will (see observe).
	switch {
	case code == statusClientClosedRequest:
		h.sampled.Debug("client closed request", zap.String("request_id", c.GetString(requestIDKey)), zap.Error(err))
	case code >= 500:
		h.sampled.Error("request failed", zap.String("request_id", c.GetString(requestIDKey)), zap.Error(err))
	}
	c.AbortWithStatusJSON(code, gin.H{"error": msg})
}

// retryAfter renders d in whole seconds, rounded up so that a client that
// obeys it is not refused again.
func retryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}
