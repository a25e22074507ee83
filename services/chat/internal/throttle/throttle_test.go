package throttle

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

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
