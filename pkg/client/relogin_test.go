package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// roomTokenExpired ends streams as the chat service does when their room
// token expires.
var roomTokenExpired = status.Error(codes.Unauthenticated, "room token expired; join again")

// renewals returns a hook that reports the Client's own logins on a channel.
func renewals() (client.Option, <-chan client.Credentials) {
	ch := make(chan client.Credentials, 64)
	return client.WithCredentialsHook(func(c client.Credentials) {
		select {
		case ch <- c:
		default: // the test reads what it needs; never block the Client
		}
	}), ch
}

// untilEnd receives until the session ends and returns why.
func untilEnd(t *testing.T, c *client.Client) error {
	t.Helper()
	ctx := testCtx(t)
	for {
		if _, err := c.Receive(ctx); err != nil {
			require.NoError(t, ctx.Err(), "the session did not end")
			return err
		}
	}
}

func bodies(msgs []*client.Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

// A stream the service ends as Unauthenticated (its room token expired)
// is reopened with a new room token and resumed: nothing is lost, and a
// user token that is still good is not renewed.
func TestRoomTokenExpiryResumes(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	joins, logins := e.chat.joinCount(), e.users.loginCount("bob")

	e.chat.killStreams(roomTokenExpired, "bob")
	var want []string
	for i := range 5 {
		want = append(want, fmt.Sprint(i))
		_, err := alice.Send(ctx, want[i])
		require.NoError(t, err)
	}
	assert.Equal(t, want, bodies(messages(t, bob, len(want))), "in order, no gap")
	assert.Greater(t, e.chat.joinCount(), joins, "joined again for a new room token")
	assert.Equal(t, logins, e.users.loginCount("bob"), "the user token was still good")
}

// A Client that logged in with a password logs in again when a rejoin
// needs a user token and its own has expired (by the Client's clock) or
// is refused, and the session carries on without losing a message.
func TestSessionLogsInAgain(t *testing.T) {
	for _, tc := range []struct {
		name    string
		expired bool // the auth service issues tokens already expired
		refuse  int  // joins the chat service refuses
	}{
		{name: "user token expired", expired: true},
		{name: "user token refused", refuse: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.loggedIn("alice")
			e.users.set(func(a *fakeAuth) { a.expired = tc.expired })
			hook, renewed := renewals()
			bob := e.loggedIn("bob", hook)
			room(t, alice, bob)
			ctx := testCtx(t)
			_, err := alice.Send(ctx, "before")
			require.NoError(t, err)
			assert.Equal(t, []string{"before"}, bodies(messages(t, bob, 1)))
			logins := e.users.loginCount("bob")
			e.chat.set(func(f *fakeChat) { f.refuseNext = tc.refuse })

			e.chat.killStreams(roomTokenExpired, "bob")
			var want []string
			for i := range 5 {
				want = append(want, fmt.Sprint(i))
				_, err := alice.Send(ctx, want[i])
				require.NoError(t, err)
			}
			assert.Equal(t, want, bodies(messages(t, bob, len(want))), "in order, no gap")
			assert.Greater(t, e.users.loginCount("bob"), logins, "logged in again")
			var last client.Credentials
			for len(renewed) > 0 {
				last = <-renewed
			}
			assert.Equal(t, "bob", last.UserName, "the hook saw the new login")
			creds, err := bob.Credentials()
			require.NoError(t, err)
			assert.Equal(t, last.Token, creds.Token, "the new token is the Client's")

			_, err = bob.Send(ctx, "bob carries on")
			require.NoError(t, err)
			got := messages(t, alice, len(want)+2)
			assert.Equal(t, "bob carries on", got[len(got)-1].Body)
		})
	}
}

// A Client given its token with UseToken has no password to log in again
// with: the session ends with ErrUnauthenticated, as it always did, and the
// auth service is not asked.
func TestUseTokenCannotLogInAgain(t *testing.T) {
	tests := []struct {
		name    string
		expired bool // the token has expired by the Client's clock
	}{{"refused", false}, {"expired", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.loggedIn("alice")
			e.users.set(func(a *fakeAuth) { a.expired = tt.expired })
			creds, err := e.loggedIn("bob").Credentials()
			require.NoError(t, err)
			bob := e.newClient()
			_, err = bob.UseToken(creds.Token)
			require.NoError(t, err)
			logins := e.users.loginCount("bob")
			ctx := testCtx(t)
			code, err := alice.CreateChatRoom(ctx, "general", "room-pw")
			require.NoError(t, err)

			if tt.expired {
				_, err = bob.JoinChatRoom(ctx, code, "room-pw")
				assert.ErrorIs(t, err, client.ErrUnauthenticated)
			} else {
				_, err = bob.JoinChatRoom(ctx, code, "room-pw")
				require.NoError(t, err)
				e.chat.setRefuseJoins(true)
				e.chat.killStreams(roomTokenExpired, "bob")
				assert.ErrorIs(t, untilEnd(t, bob), client.ErrUnauthenticated)
				_, err = bob.Send(ctx, "x")
				assert.ErrorIs(t, err, client.ErrUnauthenticated)
			}
			assert.Equal(t, logins, e.users.loginCount("bob"))
		})
	}
}

// When logging in again is refused (the password changed, the account is
// gone) the session ends with ErrUnauthenticated, and the Client forgets
// the password rather than try it again.
func TestLogInAgainRefusedEndsSession(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	e.users.set(func(a *fakeAuth) { a.expired = true })
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.users.set(func(a *fakeAuth) { a.users["bob"] = "changed elsewhere" })

	e.chat.killStreams(roomTokenExpired, "bob")
	err := untilEnd(t, bob)
	assert.ErrorIs(t, err, client.ErrUnauthenticated)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 401, ce.HTTPStatus, "the auth service's refusal")

	_, err = bob.CreateChatRoom(testCtx(t), "another", "pw")
	assert.ErrorIs(t, err, client.ErrUnauthenticated)
	e.users.set(func(a *fakeAuth) { assert.Equal(t, 1, a.denied, "the refused password was not tried again") })
}

// A login throttled with 429 is tried again after the Retry-After the
// auth service asked for, and the session carries on.
func TestLogInAgainThrottled(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	e.users.set(func(a *fakeAuth) { a.expired = true })
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.users.set(func(a *fakeAuth) { a.throttle, a.throttleFor = 1, "1" })

	e.chat.killStreams(roomTokenExpired, "bob")
	rc := next[*client.Connection](t, bob)
	require.Equal(t, client.Reconnecting, rc.State)
	assert.ErrorIs(t, rc.Err, client.ErrRateLimited)
	assert.GreaterOrEqual(t, rc.Retry, time.Second, "waits as long as Retry-After asks")
	assert.Equal(t, client.Connected, next[*client.Connection](t, bob).State)
	e.users.set(func(a *fakeAuth) {
		assert.GreaterOrEqual(t, a.loggedIn.Sub(a.throttled), time.Second, "the next login came after Retry-After")
	})

	_, err := alice.Send(testCtx(t), "still here")
	require.NoError(t, err)
	assert.Equal(t, "still here", messages(t, bob, 1)[0].Body)
}
