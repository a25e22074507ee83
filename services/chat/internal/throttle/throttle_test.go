package throttle

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestLimiter(t *testing.T) {
	l := New(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for i := range 3 {
		assert.Zero(t, l.Acquire("u|R", t0), "attempt %d", i)
		l.Done("u|R", true, t0.Add(time.Duration(i)*time.Second))
	}
	assert.Equal(t, 60*time.Second, l.Acquire("u|R", t0), "window starts at the first failure")
	assert.Equal(t, 50*time.Second, l.Acquire("u|R", t0.Add(10*time.Second)))
	assert.Zero(t, l.Acquire("other|R", t0), "keys are independent")
	l.Done("other|R", false, t0)
	assert.Zero(t, l.Acquire("u|R", t0.Add(time.Minute)), "window over")
	l.Done("u|R", false, t0.Add(time.Minute))

	l.Acquire("v|R", t0)
	l.Done("v|R", true, t0)
	l.Reset("v|R")
	assert.Zero(t, l.Acquire("v|R", t0))
	l.Done("v|R", false, t0)
	assert.Empty(t, l.keys, "settled keys without failures are forgotten")
}

// Attempts in flight hold the allowance: parallel guesses get at most max
// reservations, and a success gives its reservation back.
func TestLimiterReservesInFlight(t *testing.T) {
	l := New(3, time.Minute)
	t0 := time.Unix(1000, 0)
	for range 3 {
		assert.Zero(t, l.Acquire("k", t0))
	}
	assert.Equal(t, busyWait, l.Acquire("k", t0), "all attempts in flight")
	l.Done("k", false, t0) // a success is refunded
	assert.Zero(t, l.Acquire("k", t0))
	for range 3 {
		l.Done("k", true, t0)
	}
	assert.Equal(t, time.Minute, l.Acquire("k", t0))
}
