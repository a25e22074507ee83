package contract

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/api"
)

// Limiter runs the api.Limiter suite; open returns an empty limiter of max
// failures per window.
func Limiter(t *testing.T, open func(t *testing.T, max int, window time.Duration) api.Limiter) {
	acquire := func(t *testing.T, l api.Limiter, key string, now time.Time) time.Duration {
		t.Helper()
		wait, err := l.Acquire(ctx(t), key, now)
		require.NoError(t, err)
		return wait
	}
	done := func(t *testing.T, l api.Limiter, key string, failed bool, now time.Time) {
		t.Helper()
		require.NoError(t, l.Done(ctx(t), key, failed, now))
	}
	// fail settles n failed attempts of key at now.
	fail := func(t *testing.T, l api.Limiter, key string, n int, now time.Time) {
		t.Helper()
		for i := range n {
			require.Zero(t, acquire(t, l, key, now), "attempt %d", i)
			done(t, l, key, true, now)
		}
	}

	t.Run("max failures block until the window of the first ends", func(t *testing.T) {
		l := open(t, 3, time.Minute)
		for i := range 3 {
			require.Zero(t, acquire(t, l, "k", t0))
			done(t, l, "k", true, t0.Add(time.Duration(i)*time.Second))
		}
		assert.Equal(t, time.Minute, acquire(t, l, "k", t0))
		assert.Equal(t, 50*time.Second, acquire(t, l, "k", t0.Add(10*time.Second)))
		assert.Zero(t, acquire(t, l, "k", t0.Add(time.Minute)), "window over")
		done(t, l, "k", false, t0.Add(time.Minute))
	})
	t.Run("keys are independent", func(t *testing.T) {
		l := open(t, 2, time.Minute)
		fail(t, l, "a", 2, t0)
		assert.Positive(t, acquire(t, l, "a", t0))
		assert.Zero(t, acquire(t, l, "b", t0))
		done(t, l, "b", false, t0)
	})
	t.Run("reset forgets failures", func(t *testing.T) {
		l := open(t, 2, time.Minute)
		fail(t, l, "k", 2, t0)
		require.NoError(t, l.Reset(ctx(t), "k"))
		assert.Zero(t, acquire(t, l, "k", t0))
		done(t, l, "k", false, t0)
	})
	t.Run("successes are refunded", func(t *testing.T) {
		l := open(t, 2, time.Minute)
		for range 5 {
			require.Zero(t, acquire(t, l, "k", t0))
			done(t, l, "k", false, t0)
		}
		fail(t, l, "k", 1, t0)
		assert.Zero(t, acquire(t, l, "k", t0), "one failure of two")
		done(t, l, "k", false, t0)
	})
	t.Run("attempts in flight hold the allowance", func(t *testing.T) {
		l := open(t, 3, time.Minute)
		for range 3 {
			require.Zero(t, acquire(t, l, "k", t0))
		}
		wait := acquire(t, l, "k", t0)
		assert.Positive(t, wait, "all attempts in flight")
		assert.Less(t, wait, time.Minute, "a short wait: they may yet succeed")
		done(t, l, "k", false, t0)
		assert.Zero(t, acquire(t, l, "k", t0), "a success gives its reservation back")
		for range 3 {
			done(t, l, "k", true, t0)
		}
		assert.Equal(t, time.Minute, acquire(t, l, "k", t0))
	})
	t.Run("parallel guesses get at most max reservations", func(t *testing.T) {
		l := open(t, 3, time.Minute)
		var granted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 20 {
			wg.Go(func() {
				<-start
				wait, err := l.Acquire(ctx(t), "k", t0)
				assert.NoError(t, err)
				if err == nil && wait == 0 {
					granted.Add(1)
				}
			})
		}
		close(start)
		wg.Wait()
		assert.Equal(t, int32(3), granted.Load())
	})
}
