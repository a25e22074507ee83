package throttle_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
)

type clock struct{ now time.Time }

func (c *clock) Now() time.Time { return c.now }

func newTable(max int) (*throttle.Table, *clock) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return throttle.New(throttle.Config{
		MaxFailures: 3, Window: 10 * time.Minute, Lockout: time.Minute, MaxEntries: max,
	}, c.Now), c
}

func TestLocksAfterMaxFailures(t *testing.T) {
	tb, c := newTable(100)
	assert.Zero(t, tb.Blocked("k"))
	tb.Fail("k")
	tb.Fail("k")
	assert.Zero(t, tb.Blocked("k"), "two of three failures")
	tb.Fail("k")
	assert.Equal(t, time.Minute, tb.Blocked("k"))
	assert.Zero(t, tb.Blocked("other"), "keys are independent")

	c.now = c.now.Add(45 * time.Second)
	assert.Equal(t, 15*time.Second, tb.Blocked("k"))
	c.now = c.now.Add(15 * time.Second)
	assert.Zero(t, tb.Blocked("k"), "lockout over")
	tb.Fail("k")
	assert.Zero(t, tb.Blocked("k"), "the count restarted with the lockout")
}

func TestFailuresOutsideTheWindowDoNotCount(t *testing.T) {
	tb, c := newTable(100)
	tb.Fail("k")
	tb.Fail("k")
	c.now = c.now.Add(10 * time.Minute)
	tb.Fail("k")
	assert.Zero(t, tb.Blocked("k"))
}

func TestReset(t *testing.T) {
	tb, _ := newTable(100)
	tb.Fail("k")
	tb.Fail("k")
	tb.Reset("k")
	tb.Fail("k")
	assert.Zero(t, tb.Blocked("k"))
	assert.Equal(t, 1, tb.Len())
}

func TestMemoryIsBounded(t *testing.T) {
	tb, c := newTable(50)
	for i := range 1000 {
		tb.Fail(strconv.Itoa(i))
		c.now = c.now.Add(time.Second)
	}
	assert.LessOrEqual(t, tb.Len(), 50)

	// Expired entries are swept first, so a live lockout survives a
	// flood of new keys arriving after the old ones expired.
	tb.Fail("victim")
	tb.Fail("victim")
	tb.Fail("victim")
	c.now = c.now.Add(11 * time.Minute)
	tb.Fail("victim2")
	tb.Fail("victim2")
	tb.Fail("victim2")
	for i := range 40 {
		tb.Fail("new" + strconv.Itoa(i))
	}
	assert.Positive(t, tb.Blocked("victim2"))
	assert.LessOrEqual(t, tb.Len(), 50)
}

func TestConcurrentUse(t *testing.T) {
	tb := throttle.New(throttle.Config{MaxFailures: 1000, Window: time.Hour, Lockout: time.Minute, MaxEntries: 10}, nil)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() { // ends after its loop
			defer wg.Done()
			for j := range 200 {
				k := strconv.Itoa((i + j) % 20)
				tb.Fail(k)
				tb.Blocked(k)
				if j%7 == 0 {
					tb.Reset(k)
				}
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, tb.Len(), 10)
}
