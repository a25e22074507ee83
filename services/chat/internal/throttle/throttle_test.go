package throttle

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/api"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
)

func TestLimiterContract(t *testing.T) {
	contract.Limiter(t, func(_ *testing.T, max int, window time.Duration) api.Limiter {
		return New(max, window)
	})
}

// Settled keys without failures are forgotten, so the table holds only
// keys that are throttled or in flight.
func TestLimiterForgets(t *testing.T) {
	l := New(3, time.Minute)
	now := time.Unix(1000, 0)
	ctx := t.Context()
	for i := range 2000 {
		key := string(rune('a' + i%26))
		_, _ = l.Acquire(ctx, key, now)
		_ = l.Done(ctx, key, false, now)
	}
	assert.Empty(t, l.keys)
	_, _ = l.Acquire(ctx, "k", now)
	_ = l.Done(ctx, "k", true, now)
	assert.Len(t, l.keys, 1)
	assert.NoError(t, l.Reset(ctx, "k"))
	assert.Empty(t, l.keys)
}

// A key may act burst times at once, then once per interval; a refusal
// says how long until the next action is allowed and takes nothing.
func TestRate(t *testing.T) {
	r := NewRate(3, 6*time.Second)
	now := time.Unix(1000, 0)
	ctx := t.Context()
	for i := range 3 {
		wait, err := r.Allow(ctx, "u1", now)
		require.NoError(t, err)
		require.Zero(t, wait, "action %d of the burst", i)
	}
	wait, _ := r.Allow(ctx, "u1", now)
	assert.Equal(t, 6*time.Second, wait)
	wait, _ = r.Allow(ctx, "u1", now.Add(2*time.Second))
	assert.Equal(t, 4*time.Second, wait, "a refusal takes nothing")
	wait, _ = r.Allow(ctx, "u2", now)
	assert.Zero(t, wait, "keys are independent")

	now = now.Add(6 * time.Second)
	wait, _ = r.Allow(ctx, "u1", now)
	assert.Zero(t, wait, "one action regained per interval")
	wait, _ = r.Allow(ctx, "u1", now)
	assert.Equal(t, 6*time.Second, wait, "and only one")

	// Idle for burst × interval, the bucket is full again: burst at once.
	now = now.Add(18 * time.Second)
	for range 3 {
		wait, _ = r.Allow(ctx, "u1", now)
		assert.Zero(t, wait)
	}
	wait, _ = r.Allow(ctx, "u1", now)
	assert.Positive(t, wait)
}

// Keys whose buckets are full again are forgotten as new keys come, so
// that keys cycled through by a caller do not grow the table.
func TestRateForgets(t *testing.T) {
	r := NewRate(2, time.Second)
	now := time.Unix(1000, 0)
	ctx := t.Context()
	for i := range 5000 {
		now = now.Add(time.Second)
		_, _ = r.Allow(ctx, fmt.Sprint("k", i), now)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	assert.Less(t, len(r.full), 1100)
}
