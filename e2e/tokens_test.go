package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
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
	bob := newUser(t, s, "bob", client.WithChatAddress(px.Addr()), hook)
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
		px.Cut()
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

// TestRoomTokenRefreshedInBand runs with room tokens of 3s: bob stays in
// the room for 15s while alice sends, renewing his token on the open
// stream. He never reconnects, alice sees no presence change of his, and
// he receives every message.
func TestRoomTokenRefreshedInBand(t *testing.T) {
	s := newStack(t, stackOptions{chatEnv: map[string]string{"ROOM_TOKEN_DURATION": "3s"}})
	var joins atomic.Int32
	countJoins := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if err == nil && strings.HasSuffix(method, "/JoinChatRoom") {
			joins.Add(1)
		}
		return err
	}
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob", client.WithDialOptions(grpc.WithChainUnaryInterceptor(countJoins)))
	joinedRoom(t, alice, bob)
	atAlice, atBob := collect(t, alice), collect(t, bob)
	ctx := testCtx(t, 40*time.Second)

	var sent []string
	for i, end := 0, time.Now().Add(15*time.Second); time.Now().Before(end); i++ {
		body := fmt.Sprintf("alice %d", i)
		_, err := alice.Send(ctx, body)
		require.NoError(t, err)
		sent = append(sent, body)
		time.Sleep(250 * time.Millisecond)
	}
	last := sent[len(sent)-1]
	atBob.waitUntil(t, 10*time.Second, "alice's messages at bob", hasBody(last))
	atAlice.waitUntil(t, 10*time.Second, "alice's messages back", hasBody(last))

	renewals := int(joins.Load()) - 1
	t.Logf("bob renewed his room token %d times", renewals)
	assert.GreaterOrEqual(t, renewals, 4, "bob's room token was renewed, every 2s or so")
	bobs := atBob.snapshot()
	assert.Empty(t, eventsOf[*client.Connection](bobs), "bob never reconnected")
	assert.Empty(t, eventsOf[*client.Gap](bobs))
	var got []string
	for _, m := range messagesOf(bobs) {
		got = append(got, m.Body)
	}
	assert.Equal(t, sent, got, "bob received every message once, in order")
	alices := atAlice.snapshot()
	assert.Empty(t, eventsOf[*client.Connection](alices), "alice never reconnected")
	for _, p := range eventsOf[*client.Presence](alices) {
		assert.NotEqual(t, "bob", p.User, "alice saw bob %s at %s", p.Kind, p.At)
	}
}
