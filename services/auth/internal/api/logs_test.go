package api_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/api"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
)

// flood sends n logins with wrong passwords for alice from one address;
// all but the first few are refused with 429.
func flood(t *testing.T, e *env, n int) {
	t.Helper()
	codes := map[int]int{}
	for i := range n {
		codes[e.login("alice", "wrong horse "+strconv.Itoa(i), "RemoteAddr", "203.0.113.9:4444").Code]++
	}
	require.Equal(t, n, codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests], "%v", codes)
	require.GreaterOrEqual(t, codes[http.StatusTooManyRequests], n-3, "%v", codes)
}

// droppedLines reads auth_log_lines_dropped_total for level.
func droppedLines(t *testing.T, e *env, level string) int {
	t.Helper()
	prefix := `auth_log_lines_dropped_total{level="` + level + `"} `
	for _, line := range strings.Split(metricsText(t, e), "\n") {
		if n, ok := strings.CutPrefix(line, prefix); ok {
			v, err := strconv.Atoi(n)
			require.NoError(t, err)
			return v
		}
	}
	return 0
}

// TestLoginFloodLogIsBounded: a flood of 2,000 refused logins writes no
// line at the default level (info), and at most api.LogSampleFirst lines
// per second at debug level, where the rest are counted as dropped. The
// service's clock is frozen here, so "per second" is exact.
func TestLoginFloodLogIsBounded(t *testing.T) {
	const n = 2000
	t.Run("info", func(t *testing.T) {
		e := newEnv(t, dbtest.SQLite(t), withLogLevel(zap.InfoLevel))
		require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
		require.Equal(t, 1, e.logs.Len(), "a registration is logged at info")

		flood(t, e, n)
		assert.Equal(t, 1, e.logs.Len(), "refusals are not logged at info: %v", e.logs.All())
		assert.Zero(t, droppedLines(t, e, "debug"), "nothing to drop below the log level")

		require.Equal(t, http.StatusOK, e.login("alice", "correct horse", "RemoteAddr", "198.51.100.7:1").Code)
		assert.Equal(t, 2, e.logs.Len(), "a successful login is still logged, one line")
	})
	t.Run("debug", func(t *testing.T) {
		e := newEnv(t, dbtest.SQLite(t))
		require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)

		flood(t, e, n)
		lines := e.logs.FilterMessage("request").FilterField(zap.String("route", "/login")).Len()
		assert.Equal(t, api.LogSampleFirst, lines)
		assert.Equal(t, n-api.LogSampleFirst, droppedLines(t, e, "debug"))

		e.clock.Add(api.LogSampleTick)
		flood(t, e, n)
		lines = e.logs.FilterMessage("request").FilterField(zap.String("route", "/login")).Len()
		assert.Equal(t, 2*api.LogSampleFirst, lines, "the budget is per second, not once")
	})
}

// TestServerErrorFloodLogIsBounded: server errors are logged at warn and
// error level, but a client that makes them at will (here probing a
// closed database) gets at most api.LogSampleFirst lines of each per
// second.
func TestServerErrorFloodLogIsBounded(t *testing.T) {
	s := dbtest.SQLite(t)
	e := newEnv(t, s, withLogLevel(zap.InfoLevel))
	require.NoError(t, s.Close())
	for range 500 {
		require.Equal(t, http.StatusServiceUnavailable, e.do(http.MethodGet, "/readyz", nil).Code)
	}
	assert.Equal(t, api.LogSampleFirst, e.logs.FilterMessage("request failed").Len())
	assert.Equal(t, api.LogSampleFirst, e.logs.FilterMessage("request").Len())
	assert.Equal(t, 2*api.LogSampleFirst, e.logs.Len())
	assert.Equal(t, 500-api.LogSampleFirst, droppedLines(t, e, "error"))
	assert.Equal(t, 500-api.LogSampleFirst, droppedLines(t, e, "warn"))
}

// TestForwardedForWithoutTrustedProxiesIsReported: a request carrying
// X-Forwarded-For while TRUSTED_PROXIES is empty means a proxy whose
// clients all share one address, and so the address's login limits; the
// service says so once.
func TestForwardedForWithoutTrustedProxiesIsReported(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t), withLogLevel(zap.InfoLevel))
	for range 5 {
		e.do(http.MethodGet, "/healthz", nil, "X-Forwarded-For", "198.51.100.7", "RemoteAddr", "10.0.0.2:5555")
	}
	hints := e.logs.FilterMessageSnippet("TRUSTED_PROXIES").All()
	require.Len(t, hints, 1, "once")
	assert.Equal(t, "10.0.0.2", hints[0].ContextMap()["peer"])
}
