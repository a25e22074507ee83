package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSessionOutlivesTokens runs with user tokens of 2s and room tokens of
// 3s: a session that logged in with a password keeps exchanging messages
// across several expiries of both, logging in again by itself, with
// nothing lost.
//
// bob's connection is cut after every exchange, so that each reconnection
// needs a room token, and often a user token, fresh by the Client's own
// clock; a chat service that ends streams when their room token expires
// makes him rejoin as well. The test runs until bob has logged in again
// twice, which it learns from his credentials hook, not from the clock.
func TestSessionOutlivesTokens(t *testing.T) {
	s := newStack(t, stackOptions{
		authEnv: map[string]string{"TOKEN_DURATION": "2s"},
		chatEnv: map[string]string{"ROOM_TOKEN_DURATION": "3s"},
	})
	px := newProxy(t, s.chatAddr)
	renewed := make(chan client.Credentials, 64)
	hook := client.WithCredentialsHook(func(c client.Credentials) {
		select {
		case renewed <- c:
		default: // never block the Client; the test needs only a few
		}
	})
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob", client.WithChatAddress(px.addr), hook)
	first, err := bob.Credentials()
	require.NoError(t, err)
	joinedRoom(t, alice, bob)
	ctx := testCtx(t, 90*time.Second)

	var logins []client.Credentials
	var sent, atBob, atAlice []string
	for i := 0; len(logins) < 2; i++ {
		require.NoError(t, ctx.Err(), "bob logged in again %d times in %d exchanges", len(logins), i)
		a, b := fmt.Sprintf("alice %d", i), fmt.Sprintf("bob %d", i)
		_, err := alice.Send(ctx, a)
		require.NoError(t, err, "exchange %d", i)
		_, err = bob.Send(ctx, b)
		require.NoError(t, err, "exchange %d", i)
		sent = append(sent, a, b)
		// Both read each exchange before the next: a Client that sends
		// must also receive.
		for _, at := range []struct {
			c    *client.Client
			into *[]string
		}{{bob, &atBob}, {alice, &atAlice}} {
			msgs, gaps, _ := receiveMessages(t, at.c, 2)
			require.Zero(t, gaps, "exchange %d", i)
			for _, m := range msgs {
				*at.into = append(*at.into, m.Sender+": "+m.Body)
			}
		}
		px.cut()
		for len(renewed) > 0 {
			logins = append(logins, <-renewed)
		}
	}
	t.Logf("%d exchanges, bob logged in again %d times", len(sent)/2, len(logins))
	for _, got := range [][]string{atBob, atAlice} {
		var fromAlice, fromBob []string
		for _, m := range got {
			if body, ok := strings.CutPrefix(m, "alice: "); ok {
				fromAlice = append(fromAlice, body)
			} else {
				fromBob = append(fromBob, strings.TrimPrefix(m, "bob: "))
			}
		}
		var wantAlice, wantBob []string
		for _, m := range sent {
			if strings.HasPrefix(m, "alice ") {
				wantAlice = append(wantAlice, m)
			} else {
				wantBob = append(wantBob, m)
			}
		}
		assert.Equal(t, wantAlice, fromAlice, "every message of alice's once, in order")
		assert.Equal(t, wantBob, fromBob, "every message of bob's once, in order")
	}

	last := logins[len(logins)-1]
	assert.True(t, last.ExpiresAt.After(first.ExpiresAt), "a later user token: %s, first %s", last.ExpiresAt, first.ExpiresAt)
	creds, err := bob.Credentials()
	require.NoError(t, err)
	assert.False(t, creds.ExpiresAt.Before(last.ExpiresAt), "the Client uses its newest token")
	// The session carries on after the last cut and login.
	_, err = bob.Send(ctx, "bob is still here")
	require.NoError(t, err)
	msgs, gaps, _ := receiveMessages(t, alice, 1)
	assert.Zero(t, gaps)
	assert.Equal(t, "bob is still here", msgs[0].Body)
}
