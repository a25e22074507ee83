package metrics

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestServeExposesCollectors(t *testing.T) {
	m := New(func() int { return 3 })
	m.MessagesIn.Inc()
	m.SlowConsumers.Inc()
	m.FanoutSeconds.Observe(0.0001)
	m.RPCs.WithLabelValues("/m", "OK").Inc()
	m.RPCSeconds.WithLabelValues("/m").Observe(0.01)
	m.Panics.Inc()
	m.StreamResets.WithLabelValues("client").Inc()
	m.ResetFloods.Inc()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Serve(ctx, lis, false) }() // Owner: this test. Exit: cancel below.

	res, err := http.Get("http://" + lis.Addr().String() + "/metrics")
	require.NoError(t, err)
	body, err := io.ReadAll(res.Body)
	require.NoError(t, res.Body.Close())
	require.NoError(t, err)
	for _, want := range []string{"chat_rooms 3", "chat_messages_in_total 1", "chat_slow_consumer_disconnects_total 1", "chat_fanout_seconds_count 1", "chat_open_streams 0",
		`chat_rpcs_total{code="OK",method="/m"} 1`, `chat_rpc_duration_seconds_count{method="/m"} 1`, "chat_panics_total 1",
		`chat_grpc_stream_resets_total{by="client"} 1`, "chat_grpc_reset_floods_total 1"} {
		assert.Contains(t, string(body), want)
	}
	cancel()
	assert.NoError(t, <-done)
	http.DefaultClient.CloseIdleConnections()
}

// pprof is served only when asked for.
func TestServePprof(t *testing.T) {
	for _, on := range []bool{false, true} {
		m := New(func() int { return 0 })
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Serve(ctx, lis, on) }() // Owner: this test. Exit: cancel below.

		res, err := http.Get("http://" + lis.Addr().String() + "/debug/pprof/goroutine?debug=1")
		require.NoError(t, err)
		require.NoError(t, res.Body.Close())
		want := http.StatusNotFound
		if on {
			want = http.StatusOK
		}
		assert.Equal(t, want, res.StatusCode, "pprof enabled: %v", on)
		if on {
			// A CPU profile streams for as long as asked, past the
			// server's WriteTimeout if need be: pprof extends its own
			// deadline (see internal/httpserve). One second shows the
			// endpoint answers with a profile.
			res, err := http.Get("http://" + lis.Addr().String() + "/debug/pprof/profile?seconds=1")
			require.NoError(t, err)
			body, err := io.ReadAll(res.Body)
			require.NoError(t, res.Body.Close())
			require.NoError(t, err)
			assert.Equal(t, http.StatusOK, res.StatusCode)
			assert.True(t, bytes.HasPrefix(body, []byte{0x1f, 0x8b}), "a gzipped profile")
		}
		cancel()
		assert.NoError(t, <-done)
		http.DefaultClient.CloseIdleConnections()
	}
}

// Two sets of collectors in one process do not collide: no global registry.
func TestNoGlobalRegistry(t *testing.T) {
	assert.NotPanics(t, func() {
		New(func() int { return 0 })
		New(func() int { return 0 })
	})
}
