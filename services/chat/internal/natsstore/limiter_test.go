package natsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/natstest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/natsstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

var limiterT0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newLimiter(t *testing.T, js jetstream.JetStream, bucket string, max int) *natsstore.Limiter {
	t.Helper()
	l, err := natsstore.NewLimiter(natsCtx(t), js, natsstore.LimiterConfig{Bucket: bucket, Max: max, Window: time.Minute})
	require.NoError(t, err)
	return l
}

func TestLimiterContract(t *testing.T) {
	js := natsJS(t, natstest.Server(t))
	var n atomic.Int32
	contract.Limiter(t, func(t *testing.T, max int, window time.Duration) api.Limiter {
		l, err := natsstore.NewLimiter(natsCtx(t), js, natsstore.LimiterConfig{
			Bucket: fmt.Sprintf("throttle_%d", n.Add(1)), Max: max, Window: window,
		})
		require.NoError(t, err)
		return l
	})
}

// Instances sharing a bucket share one budget per key.
func TestLimiterSharedByInstances(t *testing.T) {
	url := natstest.Server(t)
	a, b := newLimiter(t, natsJS(t, url), "chat_throttle", 2), newLimiter(t, natsJS(t, url), "chat_throttle", 2)
	ctx := natsCtx(t)
	for _, l := range []*natsstore.Limiter{a, b} {
		wait, err := l.Acquire(ctx, "user\x00room", limiterT0)
		require.NoError(t, err)
		require.Zero(t, wait)
		require.NoError(t, l.Done(ctx, "user\x00room", true, limiterT0))
	}
	wait, err := a.Acquire(ctx, "user\x00room", limiterT0)
	require.NoError(t, err)
	assert.Equal(t, time.Minute, wait, "two failures, one on each instance")
	require.NoError(t, b.Reset(ctx, "user\x00room"))
	wait, err = a.Acquire(ctx, "user\x00room", limiterT0)
	require.NoError(t, err)
	assert.Zero(t, wait, "a reset on one instance holds on the other")
}

// Settled keys are deleted, and the reservations of an instance that
// never settles them lapse after Hold.
func TestLimiterForgets(t *testing.T) {
	js := natsJS(t, natstest.Server(t))
	l := newLimiter(t, js, "chat_throttle", 2)
	ctx := natsCtx(t)
	for i := range 10 {
		key := fmt.Sprint("k", i)
		_, err := l.Acquire(ctx, key, limiterT0)
		require.NoError(t, err)
		require.NoError(t, l.Done(ctx, key, false, limiterT0))
	}
	kv, err := js.KeyValue(ctx, "chat_throttle")
	require.NoError(t, err)
	_, err = kv.Keys(ctx)
	assert.ErrorIs(t, err, jetstream.ErrNoKeysFound)

	for range 2 {
		wait, err := l.Acquire(ctx, "k", limiterT0)
		require.NoError(t, err)
		require.Zero(t, wait)
	}
	wait, err := l.Acquire(ctx, "k", limiterT0.Add(59*time.Second))
	require.NoError(t, err)
	assert.Positive(t, wait, "held")
	wait, err = l.Acquire(ctx, "k", limiterT0.Add(time.Minute))
	require.NoError(t, err)
	assert.Zero(t, wait, "the reservations lapsed after Hold (a minute)")

	st, err := kv.Status(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Minute+time.Minute, st.TTL(), "keys left behind expire after 2×Window+Hold")
}

func TestLimiterUnavailable(t *testing.T) {
	node := natstest.StartServer(t)
	l := newLimiter(t, natsJS(t, node.URL), "chat_throttle", 2)
	node.Stop()
	for name, call := range map[string]func(ctx context.Context) error{
		"acquire": func(ctx context.Context) error { _, err := l.Acquire(ctx, "k", limiterT0); return err },
		"done":    func(ctx context.Context) error { return l.Done(ctx, "k", true, limiterT0) },
		"reset":   func(ctx context.Context) error { return l.Reset(ctx, "k") },
	} {
		ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
		assert.ErrorIs(t, call(ctx), rooms.ErrUnavailable, name)
		cancel()
	}
}
