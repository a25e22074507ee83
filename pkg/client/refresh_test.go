package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
)

// shortTokens makes the fake chat service issue room tokens that live
// about 2s (1 to 2s: a token's expiry is in whole seconds), and end a
// stream when its token expires.
func shortTokens(e *env) {
	e.chat.set(func(f *fakeChat) { f.roomTTL = 2 * time.Second })
}

// A stream whose room token lives 2s stays open for 6s: the Client renews
// the token in-band again and again, without reconnecting and without
// telling Receive about it.
func TestRefreshInBand(t *testing.T) {
	e := newEnv(t)
	shortTokens(e)
	code := emptyRoom(t, e)
	bob := e.loggedIn("bob")
	_, err := bob.JoinChatRoom(testCtx(t), code, "room-pw")
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	var want, got []string
	for start, i := time.Now(), 0; time.Since(start) < 6*time.Second; i++ {
		want = append(want, fmt.Sprint(i))
		e.chat.say(code, "alice", want[i])
		// Receive until that message is back, so that every event is seen.
		for len(got) < len(want) {
			ev, err := bob.Receive(ctx)
			require.NoError(t, err)
			switch ev := ev.(type) {
			case *client.Message:
				got = append(got, ev.Body)
			default:
				t.Fatalf("unexpected %T %+v", ev, ev)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	assert.Equal(t, want, got)
	assert.Len(t, e.chat.opened("bob"), 1, "one stream throughout")
	assert.GreaterOrEqual(t, e.chat.refreshCount("bob"), 3, "refreshed in-band at 2/3 of each token's life")
	users, err := bob.ListChatRoomUsers(ctx)
	require.NoError(t, err, "the refreshed token is the session's")
	assert.Len(t, users, 1)
}

// A refresh that fails falls back on what the Client did before in-band
// refresh: the stream ends, the Client joins again and resumes on a new
// stream, without losing a message; the new stream refreshes in-band.
func TestRefreshFailureFallsBack(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fakeChat)
	}{
		{"refused as unauthenticated", func(f *fakeChat) { f.refuseRefresh, f.refuseCode = 1, codes.Unauthenticated }},
		// PermissionDenied is what the service says for another room's or
		// user's token; for the Client's own it is no reason to give up.
		{"refused as permission denied", func(f *fakeChat) { f.refuseRefresh, f.refuseCode = 1, codes.PermissionDenied }},
		// Joining again fails twice: with the user token, and after
		// logging in again. The stream lives until its token expires.
		{"join refused", func(f *fakeChat) { f.refuseNext = 2 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			shortTokens(e)
			code := emptyRoom(t, e)
			bob := e.loggedIn("bob")
			_, err := bob.JoinChatRoom(testCtx(t), code, "room-pw")
			require.NoError(t, err)
			e.chat.say(code, "alice", "before")
			require.Equal(t, []string{"before"}, bodies(messages(t, bob, 1)))
			e.chat.set(tt.setup)

			assert.Equal(t, client.Connected, next[*client.Connection](t, bob).State, "reconnected")
			require.Len(t, e.chat.opened("bob"), 2)
			assert.Zero(t, e.chat.refreshCount("bob"), "the first stream never refreshed")
			e.chat.say(code, "alice", "after")
			assert.Equal(t, []string{"after"}, bodies(messages(t, bob, 1)))

			// The new stream refreshes in-band, before its token expires.
			refreshed(t, e.chat, "bob", 1)
			assert.Len(t, e.chat.opened("bob"), 2, "no further reconnection")
		})
	}
}

// refreshed waits for n refreshes by user, for tests that need one first.
func refreshed(t *testing.T, f *fakeChat, user string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for f.refreshCount(user) < n {
		require.True(t, time.Now().Before(deadline), "%s refreshed %d times, want %d", user, f.refreshCount(user), n)
		time.Sleep(10 * time.Millisecond)
	}
}
