package throttle_test

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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

// fail runs one failed attempt and reports whether it was admitted.
func fail(tb *throttle.Table, key string) bool {
	if tb.Acquire(key) != 0 {
		return false
	}
	tb.Done(key, true)
	return true
}

func TestLocksAfterMaxFailures(t *testing.T) {
	tb, c := newTable(100)
	assert.Zero(t, tb.Blocked("k"))
	fail(tb, "k")
	fail(tb, "k")
	assert.Zero(t, tb.Blocked("k"), "two of three failures")
	fail(tb, "k")
	assert.Equal(t, time.Minute, tb.Blocked("k"))
	assert.Equal(t, time.Minute, tb.Acquire("k"), "a locked key is refused with the rest of its lockout")
	assert.Zero(t, tb.Blocked("other"), "keys are independent")

	c.now = c.now.Add(45 * time.Second)
	assert.Equal(t, 15*time.Second, tb.Blocked("k"))
	c.now = c.now.Add(15 * time.Second)
	assert.Zero(t, tb.Blocked("k"), "lockout over")
	assert.True(t, fail(tb, "k"))
	assert.Zero(t, tb.Blocked("k"), "the count restarted with the lockout")
}

// TestInFlightAttemptsCountTowardTheLimit: attempts reserved but not yet
// finished use up the allowance, so a burst cannot overshoot it.
func TestInFlightAttemptsCountTowardTheLimit(t *testing.T) {
	tb, _ := newTable(100)
	for i := range 3 {
		require.Zero(t, tb.Acquire("k"), "attempt %d", i+1)
	}
	assert.Equal(t, throttle.Backoff, tb.Acquire("k"), "three in flight: a fourth waits")
	tb.Done("k", false)
	assert.Zero(t, tb.Acquire("k"), "a neutral outcome frees its place")
	tb.Done("k", true)
	tb.Done("k", true)
	tb.Done("k", true)
	assert.Equal(t, time.Minute, tb.Blocked("k"))
}

func TestConcurrentBurstNeverOvershoots(t *testing.T) {
	tb, _ := newTable(100)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		admitted int
	)
	for range 60 {
		wg.Add(1)
		go func() { // ends after one attempt
			defer wg.Done()
			if fail(tb, "k") {
				mu.Lock()
				admitted++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Equal(t, 3, admitted)
	assert.Positive(t, tb.Blocked("k"))
}

func TestFailuresOutsideTheWindowDoNotCount(t *testing.T) {
	tb, c := newTable(100)
	fail(tb, "k")
	fail(tb, "k")
	c.now = c.now.Add(10 * time.Minute)
	fail(tb, "k")
	assert.Zero(t, tb.Blocked("k"))
}

func TestReset(t *testing.T) {
	tb, _ := newTable(100)
	fail(tb, "k")
	fail(tb, "k")
	tb.Reset("k")
	fail(tb, "k")
	assert.Zero(t, tb.Blocked("k"))
	assert.Equal(t, 1, tb.Len())

	require.Zero(t, tb.Acquire("k"))
	tb.Reset("k")
	tb.Done("k", false)
	assert.Equal(t, 1, tb.Len(), "an entry with an attempt in flight is kept")
}

func TestMemoryIsBounded(t *testing.T) {
	tb, c := newTable(50)
	for i := range 1000 {
		fail(tb, strconv.Itoa(i))
		c.now = c.now.Add(time.Second)
	}
	assert.LessOrEqual(t, tb.Len(), 50)
}

// TestFloodNeverLiftsALockout fills the table far beyond its capacity
// with live (not expired) keys: the locked one must survive.
func TestFloodNeverLiftsALockout(t *testing.T) {
	tb, _ := newTable(50)
	fail(tb, "victim")
	fail(tb, "victim")
	fail(tb, "victim")
	require.Positive(t, tb.Blocked("victim"))
	for i := range 500 {
		fail(tb, "new"+strconv.Itoa(i))
	}
	assert.Positive(t, tb.Blocked("victim"))
	assert.Equal(t, 50, tb.Len())
}

// TestFullOfLockedEntriesFailsClosed: when nothing may be evicted, a new
// key is refused rather than admitted untracked.
func TestFullOfLockedEntriesFailsClosed(t *testing.T) {
	tb, c := newTable(10)
	for i := range 10 {
		k := strconv.Itoa(i)
		fail(tb, k)
		fail(tb, k)
		fail(tb, k)
	}
	assert.Equal(t, throttle.Backoff, tb.Acquire("newcomer"))
	for i := range 10 {
		assert.Positive(t, tb.Blocked(strconv.Itoa(i)))
	}
	c.now = c.now.Add(11 * time.Minute)
	assert.Zero(t, tb.Acquire("newcomer"), "room again once the lockouts and windows are over")
}

func TestAddressKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"not an ip":            "not an ip",
		"2001:db8:1:3:3:4:5:6": "2001:db8:1:3::/64",
	} {
		assert.Equal(t, want, throttle.AddressKey(in), in)
	}
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
				if tb.Acquire(k) == 0 {
					tb.Done(k, j%2 == 0)
				}
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

// TestLockoutsDoubleUpToTheCap: a key that keeps coming back is locked
// for twice as long each time, up to MaxLockout; after a whole quiet
// window it starts again from Lockout.
func TestLockoutsDoubleUpToTheCap(t *testing.T) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tb := throttle.New(throttle.Config{
		MaxFailures: 3, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: 5 * time.Minute, MaxEntries: 10,
	}, c.Now)
	for _, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		for range 3 {
			require.True(t, fail(tb, "k"))
		}
		assert.Equal(t, want, tb.Blocked("k"))
		c.now = c.now.Add(want)
	}
	c.now = c.now.Add(10*time.Minute - time.Second)
	for range 3 {
		fail(tb, "k")
	}
	assert.Equal(t, 5*time.Minute, tb.Blocked("k"), "not quiet for a whole window yet")
	c.now = c.now.Add(5*time.Minute + 10*time.Minute)
	for range 3 {
		fail(tb, "k")
	}
	assert.Equal(t, time.Minute, tb.Blocked("k"), "forgiven after a quiet window")
}

// TestResetForgetsLockouts: after a success the next lockout is the first.
func TestResetForgetsLockouts(t *testing.T) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	tb := throttle.New(throttle.Config{
		MaxFailures: 1, Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour, MaxEntries: 10,
	}, c.Now)
	fail(tb, "k")
	c.now = c.now.Add(time.Minute)
	fail(tb, "k")
	require.Equal(t, 2*time.Minute, tb.Blocked("k"))
	tb.Reset("k")
	fail(tb, "k")
	assert.Equal(t, time.Minute, tb.Blocked("k"))
}
