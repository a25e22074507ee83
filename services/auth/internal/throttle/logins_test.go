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

func newLogins(maxEntries int) (*throttle.Logins, *clock) {
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return throttle.NewLogins(throttle.LoginConfig{
		PairFailures: 2, AddressFailures: 5, AccountFailures: 4,
		Window: 10 * time.Minute, Lockout: time.Minute, MaxLockout: time.Hour,
		KnownFor: 24 * time.Hour, MaxEntries: maxEntries,
	}, c.Now), c
}

// attempt runs one attempt with the given outcome and returns the wait,
// 0 if it was admitted.
func attempt(l *throttle.Logins, account, address string, o throttle.Outcome) time.Duration {
	end, wait := l.Acquire(account, address)
	if wait == 0 {
		end(o)
	}
	return wait
}

// TestOwnSuccessDoesNotClearTheAddress: an attacker who owns an account
// cannot reset the count of their address by logging in to it between
// guesses on others.
func TestOwnSuccessDoesNotClearTheAddress(t *testing.T) {
	l, _ := newLogins(100)
	for i := range 4 {
		require.Zero(t, attempt(l, "victim"+strconv.Itoa(i), "a", throttle.Failed))
		require.Zero(t, attempt(l, "mine", "a", throttle.Succeeded))
	}
	require.Zero(t, attempt(l, "victim9", "a", throttle.Failed))
	assert.Equal(t, time.Minute, attempt(l, "mine", "a", throttle.Succeeded), "the address reached its limit of 5")
}

// TestOwnerSuccessDoesNotReopenTheAccount: the owner logging in from home
// leaves the ceiling that guessers from elsewhere reached in place.
func TestOwnerSuccessDoesNotReopenTheAccount(t *testing.T) {
	l, _ := newLogins(100)
	require.Zero(t, attempt(l, "alice", "home", throttle.Succeeded))
	for i := range 4 {
		require.Zero(t, attempt(l, "alice", "bot"+strconv.Itoa(i), throttle.Failed))
	}
	assert.Equal(t, time.Minute, attempt(l, "alice", "bot9", throttle.Failed))
	assert.Zero(t, attempt(l, "alice", "home", throttle.Succeeded), "home is known")
	assert.Equal(t, time.Minute, attempt(l, "alice", "bot10", throttle.Failed), "still locked for others")
}

// TestKnownAddressesExpire: an address is exempt from the ceiling for
// KnownFor after its last successful login.
func TestKnownAddressesExpire(t *testing.T) {
	l, c := newLogins(100)
	require.Zero(t, attempt(l, "alice", "home", throttle.Succeeded))
	for i := range 4 {
		require.Zero(t, attempt(l, "alice", "bot"+strconv.Itoa(i), throttle.Failed))
	}
	c.now = c.now.Add(30 * time.Second)
	assert.Zero(t, attempt(l, "alice", "home", throttle.Aborted), "known")
	c.now = c.now.Add(24 * time.Hour)
	for i := range 4 {
		require.Zero(t, attempt(l, "alice", "bot"+strconv.Itoa(10+i), throttle.Failed))
	}
	assert.Positive(t, attempt(l, "alice", "home", throttle.Succeeded), "forgotten a day after the last login")
}

// TestAbortedCountsNothing: an attempt that ended neither way (an outage)
// releases its reservations and counts no failure.
func TestAbortedCountsNothing(t *testing.T) {
	l, _ := newLogins(100)
	for range 20 {
		require.Zero(t, attempt(l, "alice", "a", throttle.Aborted))
	}
	require.Zero(t, attempt(l, "alice", "a", throttle.Failed))
	require.Zero(t, attempt(l, "alice", "a", throttle.Failed))
	assert.Equal(t, time.Minute, attempt(l, "alice", "a", throttle.Failed), "the pair limit of 2")
}

// TestRefusedByAnInnerLimitReleasesTheOuter: an attempt refused by the
// pair or account limit leaves nothing reserved in the tables checked
// before it, so the address keeps its full allowance.
func TestRefusedByAnInnerLimitReleasesTheOuter(t *testing.T) {
	l, _ := newLogins(100)
	require.Zero(t, attempt(l, "alice", "a", throttle.Failed))
	require.Zero(t, attempt(l, "alice", "a", throttle.Failed))
	for range 50 {
		require.Positive(t, attempt(l, "alice", "a", throttle.Failed))
	}
	for i := range 3 {
		require.Zero(t, attempt(l, "user"+strconv.Itoa(i), "a", throttle.Failed), "attempt %d", i)
	}
	assert.Positive(t, attempt(l, "bob", "a", throttle.Failed), "5 failures in all")
}

func TestLoginsAreBounded(t *testing.T) {
	l, _ := newLogins(20)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() { // ends after its loop
			defer wg.Done()
			for i := range 300 {
				o := []throttle.Outcome{throttle.Failed, throttle.Succeeded, throttle.Aborted}[i%3]
				attempt(l, "user"+strconv.Itoa(i%50), "addr"+strconv.Itoa((g*300+i)%70), o)
			}
		}()
	}
	wg.Wait()
	pairs, addresses, accounts, known := l.Len()
	for _, n := range []int{pairs, addresses, accounts, known} {
		assert.LessOrEqual(t, n, 20)
	}
}
