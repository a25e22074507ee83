package client_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// An error from Send says that the message was not sent, to which room,
// and why, and matches the cause with errors.Is.
func TestSendErrorsSayWhy(t *testing.T) {
	tests := []struct {
		name  string
		body  string
		setup func(t *testing.T, e *env, alice *client.Client, bob *client.Room) context.Context
		want  []error
		says  string
	}{
		{"too long", strings.Repeat("x", client.DefaultMaxMessageBytes+1), func(t *testing.T, _ *env, _ *client.Client, _ *client.Room) context.Context {
			return testCtx(t)
		}, []error{client.ErrInvalidArgument}, "more than the 4096 the room accepts"},
		{"left", "hi", func(t *testing.T, _ *env, _ *client.Client, bob *client.Room) context.Context {
			require.NoError(t, bob.Leave(testCtx(t)))
			return testCtx(t)
		}, []error{client.ErrDisconnected}, "disconnected"},
		{"room deleted", "hi", func(t *testing.T, _ *env, alice *client.Client, bob *client.Room) context.Context {
			require.NoError(t, alice.DeleteChatRoom(testCtx(t), bob.ShortCode))
			nextIn[*client.RoomDeleted](t, bob)
			return testCtx(t)
		}, []error{client.ErrRoomDeleted, client.ErrNotFound}, "deleted"},
		{"rate limited while reconnecting", "hi", func(t *testing.T, e *env, _ *client.Client, bob *client.Room) context.Context {
			e.chat.set(func(f *fakeChat) {
				f.refuseStreams = []error{limitStatus(codes.ResourceExhausted, "RATE_LIMITED", time.Minute)}
			})
			e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
			for {
				if c := nextIn[*client.Connection](t, bob); c.State == client.Reconnecting && c.Retry == time.Minute {
					break
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			t.Cleanup(cancel)
			return ctx
		}, []error{context.DeadlineExceeded, client.ErrRateLimited}, "waiting for the stream to reconnect after: rate limited"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.loggedIn("alice")
			bob := e.loggedIn("bob")
			code, err := alice.CreateChatRoom(testCtx(t), "general", "room-pw")
			require.NoError(t, err)
			room, err := bob.JoinRoom(testCtx(t), code, "room-pw")
			require.NoError(t, err)
			ctx := tt.setup(t, e, alice, room)
			_, err = room.Send(ctx, tt.body)
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w)
			}
			assert.Contains(t, err.Error(), "message not sent to room "+code)
			assert.Contains(t, err.Error(), tt.says)
		})
	}
}

// logBuffer collects a Client's log records as JSON lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// The Client logs through the *slog.Logger it is given: what it does by
// itself, with the room it concerns, and never a password, a token or a
// message body.
func TestLogsThroughSlog(t *testing.T) {
	e := newEnv(t)
	var logs logBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	alice := e.loggedIn("alice", client.WithLogger(logger))
	bob := e.loggedIn("bob")
	code := room(t, alice, bob)
	creds, err := alice.Credentials()
	require.NoError(t, err)

	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "alice")
	for next[*client.Connection](t, alice).State != client.Connected {
	}
	resume := e.chat.pauseReads()
	_, err = alice.Send(testCtx(t), "poison")
	require.NoError(t, err)
	resume()
	next[*client.SendFailed](t, alice)

	out := logs.String()
	assert.Contains(t, out, `"msg":"chat stream broke; reconnecting","room":"`+code+`"`)
	assert.Contains(t, out, `"msg":"chat stream reopened","room":"`+code+`"`)
	assert.Contains(t, out, `"msg":"the service refused a message"`)
	for _, secret := range []string{"password-alice", "room-pw", creds.Token, "poison"} {
		assert.NotContains(t, out, secret)
	}
}
