package client_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// The chat service's reasons become the errors an application tests for:
// ROOM_LIMIT is ErrRoomLimit (and not a rate limit, which waiting would
// cure), with Reason and RetryAfter as the service sent them.
func TestRefusalReasons(t *testing.T) {
	cases := []struct {
		name    string
		refusal error
		want    error
		notWant error
		reason  string
		retry   time.Duration
	}{
		{"room limit", limitStatus(codes.ResourceExhausted, "ROOM_LIMIT", 0), client.ErrRoomLimit, client.ErrRateLimited, client.ReasonRoomLimit, 0},
		{"room limit with a delay", limitStatus(codes.ResourceExhausted, "ROOM_LIMIT", time.Minute), client.ErrRoomLimit, client.ErrRateLimited, client.ReasonRoomLimit, time.Minute},
		{"create rate", limitStatus(codes.ResourceExhausted, "RATE_LIMITED", 6*time.Second), client.ErrRateLimited, client.ErrRoomLimit, client.ReasonRateLimited, 6 * time.Second},
		{"no free code", limitStatus(codes.ResourceExhausted, "NO_CODE", 30*time.Second), client.ErrRateLimited, client.ErrRoomLimit, client.ReasonNoCode, 30 * time.Second},
		{"a delay past the cap", limitStatus(codes.ResourceExhausted, "RATE_LIMITED", time.Hour), client.ErrRateLimited, nil, client.ReasonRateLimited, client.MaxRetryAfter},
		{"a reason of another domain", foreignReason(), client.ErrRateLimited, client.ErrRoomLimit, "", 0},
		{"no reason", status.Error(codes.ResourceExhausted, "too many"), client.ErrRateLimited, client.ErrRoomLimit, "", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.loggedIn("alice")
			e.chat.set(func(f *fakeChat) { f.refuseCreate = tc.refusal })
			_, err := alice.CreateChatRoom(testCtx(t), "room", "pw")
			require.ErrorIs(t, err, tc.want)
			if tc.notWant != nil {
				assert.NotErrorIs(t, err, tc.notWant)
			}
			var ce *client.Error
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.reason, ce.Reason)
			assert.Equal(t, tc.retry, ce.RetryAfter)
			d, ok := client.RetryAfter(err)
			assert.Equal(t, tc.retry > 0, ok)
			assert.Equal(t, tc.retry, d)
		})
	}
}

// foreignReason is a refusal with an ErrorInfo that is not the chat
// service's, as a proxy might add: its reason is not read.
func foreignReason() error {
	st, err := status.New(codes.ResourceExhausted, "quota").WithDetails(&errdetails.ErrorInfo{Reason: "ROOM_LIMIT", Domain: "proxy.example.com"})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

// A limit met while reopening the stream is waited out for the delay the
// service asks for, once, not retried in a loop: each reason that allows
// a retry, then the stream opens.
func TestReopenWaitsForRetryInfo(t *testing.T) {
	const retry = 300 * time.Millisecond // well above the test backoff of 10-50ms
	for _, tc := range []struct {
		reason string
		kind   error
	}{
		{"STREAM_LIMIT", client.ErrStreamLimit},
		{"ROOM_FULL", client.ErrRoomFull},
		{"RATE_LIMITED", client.ErrRateLimited},
		{"NO_CODE", client.ErrRateLimited},
	} {
		t.Run(tc.reason, func(t *testing.T) {
			e := newEnv(t)
			alice := e.loggedIn("alice")
			bob := e.loggedIn("bob")
			room(t, alice, bob)
			opens := len(e.chat.opened("bob"))
			e.chat.set(func(f *fakeChat) {
				f.refuseStreams = []error{limitStatus(codes.ResourceExhausted, tc.reason, retry)}
			})
			e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")

			broke := next[*client.Connection](t, bob)
			require.Equal(t, client.Reconnecting, broke.State)
			assert.ErrorIs(t, broke.Err, client.ErrUnavailable)
			refused := next[*client.Connection](t, bob)
			require.Equal(t, client.Reconnecting, refused.State)
			assert.ErrorIs(t, refused.Err, tc.kind)
			assert.Equal(t, retry, refused.Retry, "the service's delay, not the backoff")
			assert.Equal(t, 1, refused.Attempt)
			assert.Equal(t, client.Connected, next[*client.Connection](t, bob).State)
			assert.Equal(t, opens+2, len(e.chat.opened("bob")), "one refused open, one that succeeded")
		})
	}
}

// A delay past MaxRetryAfter is capped, and Disconnect does not wait for
// it.
func TestRetryInfoCappedAndCancellable(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.chat.set(func(f *fakeChat) {
		f.refuseStreams = []error{limitStatus(codes.ResourceExhausted, "STREAM_LIMIT", 24*time.Hour)}
	})
	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
	next[*client.Connection](t, bob)
	refused := next[*client.Connection](t, bob)
	assert.ErrorIs(t, refused.Err, client.ErrStreamLimit)
	assert.Equal(t, client.MaxRetryAfter, refused.Retry)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	require.NoError(t, bob.Disconnect(ctx), "the wait ends with the session")
}

// JoinChatRoom returns a limit met by its first stream to the caller,
// with the service's delay.
func TestJoinReturnsStreamLimit(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	code, err := alice.CreateChatRoom(testCtx(t), "general", "room-pw")
	require.NoError(t, err)
	e.chat.set(func(f *fakeChat) {
		f.refuseStreams = []error{limitStatus(codes.ResourceExhausted, "STREAM_LIMIT", 20*time.Second)}
	})
	_, err = alice.JoinChatRoom(testCtx(t), code, "room-pw")
	require.ErrorIs(t, err, client.ErrStreamLimit)
	d, ok := client.RetryAfter(err)
	assert.True(t, ok)
	assert.Equal(t, 20*time.Second, d)
	_, err = alice.JoinChatRoom(testCtx(t), code, "room-pw")
	assert.NoError(t, err, "the limit was the service's, the Client holds nothing")
}

// A slow consumer resumes at once, after the first backoff delay, even
// after failed attempts: falling behind is not the service failing.
func TestSlowConsumerReasonResumesAtOnce(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.chat.set(func(f *fakeChat) {
		f.refuseStreams = []error{status.Error(codes.Unavailable, "down"), status.Error(codes.Unavailable, "down")}
	})
	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
	for range 3 {
		require.Equal(t, client.Reconnecting, next[*client.Connection](t, bob).State)
	}
	require.Equal(t, client.Connected, next[*client.Connection](t, bob).State)

	// The fake sends SLOW_CONSUMER as the service does; no RetryInfo.
	e.chat.killStreams(limitStatus(codes.ResourceExhausted, "SLOW_CONSUMER", 0), "bob")
	rc := next[*client.Connection](t, bob)
	assert.ErrorIs(t, rc.Err, client.ErrSlowConsumer)
	assert.NotErrorIs(t, rc.Err, client.ErrRateLimited)
	assert.Zero(t, rc.Attempt)
	assert.LessOrEqual(t, rc.Retry, 12*time.Millisecond, "the first delay, 10ms ±20%")
	assert.Equal(t, client.Connected, next[*client.Connection](t, bob).State)
}

// A stream replaced by a newer one of the same user ends the session
// with ErrReplaced and is not reopened; ABORTED without that reason is
// retried like any break.
func TestReplacedEndsSession(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)

	e.chat.killStreams(status.Error(codes.Aborted, "aborted"), "bob")
	assert.Equal(t, client.Reconnecting, next[*client.Connection](t, bob).State)
	assert.Equal(t, client.Connected, next[*client.Connection](t, bob).State)

	opens := len(e.chat.opened("bob"))
	e.chat.killStreams(limitStatus(codes.Aborted, "STREAM_REPLACED", 0), "bob")
	ctx := testCtx(t)
	var err error
	for err == nil {
		_, err = bob.Receive(ctx)
	}
	require.ErrorIs(t, err, client.ErrReplaced)
	var ce *client.Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, client.ReasonStreamReplaced, ce.Reason)
	_, err = bob.Send(ctx, "still there?")
	assert.ErrorIs(t, err, client.ErrReplaced, "Send reports why the session ended")
	assert.Equal(t, opens, len(e.chat.opened("bob")), "no stream was reopened")
	assert.Equal(t, 0, streamsOf(e, "bob"))
}

// streamsOf counts user's open streams in every room.
func streamsOf(e *env, user string) int {
	e.chat.mu.Lock()
	defer e.chat.mu.Unlock()
	n := 0
	for _, r := range e.chat.rooms {
		for s := range r.subs {
			if s.user == user {
				n++
			}
		}
	}
	return n
}

// A stream the service cuts right after opening it does not reset the
// backoff: the attempts count up, so the delays grow to Max instead of
// staying at Initial.
func TestStreamCutAtOpenBacksOff(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.chat.set(func(f *fakeChat) { f.cutOpened = status.Error(codes.Unavailable, "cut after Opened") })
	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
	var attempts []int
	for len(attempts) < 5 {
		ev := next[*client.Connection](t, bob)
		if ev.State == client.Reconnecting {
			attempts = append(attempts, ev.Attempt)
		}
	}
	assert.Equal(t, []int{0, 1, 2, 3, 4}, attempts)
}

// A stream that stayed open for Backoff.ResetAfter starts the delays over.
func TestStableStreamResetsBackoff(t *testing.T) {
	const stable = time.Second
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob", client.WithBackoff(client.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, ResetAfter: stable}))
	room(t, alice, bob)
	e.chat.set(func(f *fakeChat) {
		f.refuseStreams = []error{status.Error(codes.Unavailable, "down"), status.Error(codes.Unavailable, "down")}
	})
	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
	var last *client.Connection
	for {
		ev := next[*client.Connection](t, bob)
		if ev.State == client.Connected {
			break
		}
		last = ev
	}
	require.Equal(t, 2, last.Attempt)

	// Cut before it was stable: the count goes on.
	e.chat.killStreams(status.Error(codes.Unavailable, "again"), "bob")
	rc := next[*client.Connection](t, bob)
	assert.Equal(t, 3, rc.Attempt)
	require.Equal(t, client.Connected, next[*client.Connection](t, bob).State)

	time.Sleep(stable + stable/2)
	e.chat.killStreams(status.Error(codes.Unavailable, "again"), "bob")
	rc = next[*client.Connection](t, bob)
	assert.Equal(t, 0, rc.Attempt, "a stable stream starts the count over")
	require.Equal(t, client.Connected, next[*client.Connection](t, bob).State)
}
