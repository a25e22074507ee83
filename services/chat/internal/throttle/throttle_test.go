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
		assert.Zero(t, l.Check("u|R", t0), "attempt %d", i)
		l.Fail("u|R", t0.Add(time.Duration(i)*time.Second))
	}
	assert.Equal(t, 50*time.Second, l.Check("u|R", t0.Add(10*time.Second)))
	assert.Zero(t, l.Check("other|R", t0), "keys are independent")
	assert.Zero(t, l.Check("u|R", t0.Add(time.Minute)), "window over")

	l.Fail("v|R", t0)
	l.Fail("v|R", t0)
	l.Reset("v|R")
	l.Fail("v|R", t0)
	assert.Zero(t, l.Check("v|R", t0))
}
