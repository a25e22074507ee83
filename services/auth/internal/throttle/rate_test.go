package throttle_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
)

func TestLimiterBurstThenRate(t *testing.T) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := throttle.NewLimiter(60, 3, 100, c.Now) // one a minute, three at once
	for i := range 3 {
		assert.Zero(t, l.Allow("a"), "burst %d", i+1)
	}
	assert.Equal(t, time.Minute, l.Allow("a"))
	assert.Zero(t, l.Allow("b"), "keys are independent")
	c.now = c.now.Add(30 * time.Second)
	assert.Equal(t, 30*time.Second, l.Allow("a"), "a refusal takes no token")
	c.now = c.now.Add(30 * time.Second)
	assert.Zero(t, l.Allow("a"))
	assert.Positive(t, l.Allow("a"))
}

func TestLimiterIsBounded(t *testing.T) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := throttle.NewLimiter(1, 1, 10, c.Now)
	assert.Zero(t, l.Allow("hot"))
	for i := range 100 {
		l.Allow(strconv.Itoa(i))
		if i%3 == 0 {
			assert.Positive(t, l.Allow("hot"), "recently used, so kept")
		}
	}
	assert.Equal(t, 10, l.Len())
}
