package api_test

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
)

// The harness's limits (see newEnv): 3 failures per (account, address),
// 10 per address, 8 per account from addresses it has not logged in from,
// within 15 minutes; lockouts of 5 minutes, doubling up to an hour.

// assertThrottled checks the shape of every throttled answer.
func assertThrottled(t *testing.T, r response, retryAfter string) {
	t.Helper()
	assert.Equal(t, http.StatusTooManyRequests, r.Code, r.Raw)
	assert.Equal(t, retryAfter, r.Header.Get("Retry-After"))
	assert.JSONEq(t, `{"error":"too many failed logins, retry later"}`, r.Raw)
}

// TestOwnerLogsInWhileAnotherAddressGuesses: one address guessing an
// account, as often as the throttle lets it and for hours, is locked out
// for longer and longer, but never keeps the owner's correct password from
// another address out, not even from an address the owner never used.
func TestOwnerLogsInWhileAnotherAddressGuesses(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
	const attacker = "203.0.113.9:4444"

	failures := 0
	for round, lockout := range []string{"300", "600", "1200", "2400", "3600", "3600", "3600"} {
		for i := range 3 { // every spelling of the name is the same account
			name := []string{"alice", "ALICE", "Alice"}[i]
			r := e.login(name, "wrong horse "+strconv.Itoa(i), "RemoteAddr", attacker)
			require.Equal(t, http.StatusUnauthorized, r.Code, "round %d, guess %d: %s", round, i+1, r.Raw)
			failures++
		}
		r := e.login("alice", "correct horse", "RemoteAddr", attacker)
		assertThrottled(t, r, lockout) // even the right password, from the guessing address

		owner := "198.51.100." + strconv.Itoa(round+1) + ":5555" // a new address every time
		assert.Equal(t, http.StatusOK, e.login("Alice", "correct horse", "RemoteAddr", owner).Code, "round %d", round)

		wait, err := strconv.Atoi(r.Header.Get("Retry-After"))
		require.NoError(t, err)
		e.clock.Add(time.Duration(wait) * time.Second)
	}
	assert.Greater(t, failures, 8, "the attacker failed more often than the account ceiling")
	assert.Equal(t, http.StatusOK, e.login("alice", "correct horse", "RemoteAddr", "192.0.2.77:1").Code)
}

// TestSuccessForgetsTheAddressFailures: the owner's typos from one address
// are forgotten once they get it right, so they never lock themselves out
// by logging in often.
func TestSuccessForgetsTheAddressFailures(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
	for range 3 {
		require.Equal(t, http.StatusUnauthorized, e.login("alice", "wrong horse").Code)
		require.Equal(t, http.StatusUnauthorized, e.login("alice", "wrong horse").Code)
		require.Equal(t, http.StatusOK, e.login("alice", "correct horse").Code)
	}
}

// TestAddressLimitStopsOneAddressTryingManyAccounts: a few guesses on
// each of many accounts from one address are stopped by the address
// limit, before any hashing; other addresses are not affected.
func TestAddressLimitStopsOneAddressTryingManyAccounts(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("victim", "correct horse").Code)
	const attacker = "203.0.113.9:4444"
	for i := range 10 { // one failure each on ten accounts: no pair and no account is near its limit
		r := e.login("user"+strconv.Itoa(i), "guess1234", "RemoteAddr", attacker)
		require.Equal(t, http.StatusUnauthorized, r.Code)
	}
	before := verifyCount(t, e)
	for i := range 50 {
		assertThrottled(t, e.login("other"+strconv.Itoa(i), "guess1234", "RemoteAddr", attacker), "300")
	}
	assertThrottled(t, e.login("victim", "correct horse", "RemoteAddr", attacker), "300")
	assert.Equal(t, before, verifyCount(t, e), "refused attempts hash nothing")
	assert.Equal(t, http.StatusOK, e.login("victim", "correct horse", "RemoteAddr", "192.0.2.50:1").Code,
		"other addresses are unaffected")

	e.clock.Add(5 * time.Minute)
	assert.Equal(t, http.StatusUnauthorized, e.login("user99", "guess1234", "RemoteAddr", attacker).Code, "lockout over")
}

// TestAccountCeilingSlowsManyAddresses: guesses on one account spread
// over many addresses, each below its own limit, meet the account
// ceiling, with a longer lockout each time. The owner still logs in from
// an address they used before; from a new one they wait like everybody.
func TestAccountCeilingSlowsManyAddresses(t *testing.T) {
	e := newEnv(t, dbtest.SQLite(t))
	require.Equal(t, http.StatusOK, e.register("alice", "correct horse").Code)
	const home = "192.0.2.200:1"
	require.Equal(t, http.StatusOK, e.login("alice", "correct horse", "RemoteAddr", home).Code)

	bot := 0
	attack := func() (failures int, refused response) {
		for {
			bot++
			addr := "10.0." + strconv.Itoa(bot/250) + "." + strconv.Itoa(bot%250+1) + ":1000"
			for range 2 { // below the per-(account, address) limit of 3
				r := e.login("alice", "guess number "+strconv.Itoa(bot), "RemoteAddr", addr)
				if r.Code != http.StatusUnauthorized {
					return failures, r
				}
				failures++
			}
		}
	}
	before := verifyCount(t, e)
	for _, lockout := range []string{"300", "600", "1200"} {
		failures, refused := attack()
		assert.Equal(t, 8, failures, "the ceiling")
		assertThrottled(t, refused, lockout)
		for range 20 { // more addresses change nothing
			_, refused = attack()
			assertThrottled(t, refused, lockout)
		}
		assert.Equal(t, http.StatusOK, e.login("alice", "correct horse", "RemoteAddr", home).Code,
			"the owner's known address is exempt from the ceiling")
		assertThrottled(t, e.login("alice", "correct horse", "RemoteAddr", "198.51.100.1:1"), lockout)

		wait, err := strconv.Atoi(lockout)
		require.NoError(t, err)
		e.clock.Add(time.Duration(wait) * time.Second)
	}
	// The owner's logins from home are the only other verifications.
	assert.Equal(t, 3*8+3, verifyCount(t, e)-before, "8 guesses per lockout were verified, no more")
}
