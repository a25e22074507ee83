package client_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// emptyRoom makes alice create a room, without joining it, and returns its code.
func emptyRoom(t *testing.T, e *env) string {
	t.Helper()
	code, err := e.loggedIn("alice").CreateChatRoom(testCtx(t), "general", "room-pw")
	require.NoError(t, err)
	return code
}

// A new session receives the room's latest messages, marked earlier, then
// the live ones: in order, without gap or repeat, although the room goes
// on talking while the session joins.
func TestBacklogOnJoin(t *testing.T) {
	tests := []struct {
		name    string
		opts    []client.Option
		history int    // messages sent before the join starts
		asked   uint32 // the backlog the Open must carry
	}{
		{"default", nil, 60, client.DefaultBacklog},
		{"option", []client.Option{client.WithBacklog(5)}, 60, 5},
		{"more than the history holds", []client.Option{client.WithBacklog(10)}, 3, 10},
		{"disabled", []client.Option{client.WithBacklog(0)}, 60, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			code := emptyRoom(t, e)
			for i := range tt.history {
				e.chat.say(code, "alice", fmt.Sprint(i+1))
			}
			bob := e.loggedIn("bob", tt.opts...)
			const live = 20
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // talks while bob joins, then exits
				defer wg.Done()
				for i := range live {
					e.chat.say(code, "alice", fmt.Sprint(tt.history+i+1))
				}
			}()
			room, err := bob.JoinChatRoom(testCtx(t), code, "room-pw")
			require.NoError(t, err)
			wg.Wait()

			opens := e.chat.opened("bob")
			require.Len(t, opens, 1)
			assert.Equal(t, tt.asked, opens[0].GetBacklog(), "the backlog asked for")
			assert.Nil(t, opens[0].GetResume())
			head := int(room.HeadSequence)
			assert.Equal(t, min(int(tt.asked), head), room.Backlog)

			total := tt.history + live
			got := messages(t, bob, total-head+room.Backlog)
			for i, m := range got {
				want := head - room.Backlog + i + 1
				assert.Equal(t, uint64(want), m.Sequence, "message %d", i)
				assert.Equal(t, fmt.Sprint(want), m.Body)
				assert.Equal(t, want <= head, m.Earlier, "message %d (sequence %d, head %d) marked earlier", i, want, head)
			}
			assertQuiet(t, bob)
		})
	}
}

// assertQuiet checks that c has no message left to receive: nothing was
// delivered twice.
func assertQuiet(t *testing.T, c *client.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	for {
		ev, err := c.Receive(ctx)
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			return
		}
		if m, ok := ev.(*client.Message); ok {
			t.Errorf("unexpected message %d %q", m.Sequence, m.Body)
		}
	}
}

// A stream reopened after a break resumes where Receive left off; it never
// asks for the backlog again, so no earlier message comes twice.
func TestResumeNeverAsksForBacklog(t *testing.T) {
	e := newEnv(t)
	code := emptyRoom(t, e)
	for _, b := range []string{"one", "two", "three"} {
		e.chat.say(code, "alice", b)
	}
	bob := e.loggedIn("bob")
	room, err := bob.JoinChatRoom(testCtx(t), code, "room-pw")
	require.NoError(t, err)
	require.Equal(t, 3, room.Backlog)
	earlier := messages(t, bob, 3)
	assert.Equal(t, []string{"one", "two", "three"}, bodies(earlier))

	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
	for next[*client.Connection](t, bob).State != client.Connected {
	}
	e.chat.say(code, "alice", "four")
	m := messages(t, bob, 1)[0]
	assert.Equal(t, "four", m.Body, "nothing before it came again")
	assert.False(t, m.Earlier)

	opens := e.chat.opened("bob")
	require.Len(t, opens, 2)
	assert.Equal(t, uint32(client.DefaultBacklog), opens[0].GetBacklog())
	require.NotNil(t, opens[1].GetResume(), "the second stream resumes")
	assert.Equal(t, uint64(3), opens[1].GetResume().GetAfterSequence())
	assert.Zero(t, opens[1].GetBacklog(), "and asks for no backlog")
}

func TestNegativeBacklogRefused(t *testing.T) {
	_, err := client.New(client.WithBacklog(-1))
	assert.ErrorIs(t, err, client.ErrInvalidArgument)
}

// Events this client does not know, and a Refreshed it did not ask for,
// are skipped: the stream carries on.
func TestUnknownEventsIgnored(t *testing.T) {
	e := newEnv(t)
	code := emptyRoom(t, e)
	bob := e.loggedIn("bob")
	_, err := bob.JoinChatRoom(testCtx(t), code, "room-pw")
	require.NoError(t, err)

	future := &chatv1.Event{}
	// Field 99 of Event, as a newer service might send it.
	future.ProtoReflect().SetUnknown(protowire.AppendBytes(protowire.AppendTag(nil, 99, protowire.BytesType), []byte("x")))
	e.chat.broadcastRaw(code, future)
	e.chat.broadcastRaw(code, &chatv1.Event{Kind: &chatv1.Event_Refreshed{Refreshed: &chatv1.Refreshed{ExpiresAt: timestamppb.Now()}}})
	e.chat.say(code, "alice", "still here")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ev, err := bob.Receive(ctx)
	require.NoError(t, err)
	require.IsType(t, &client.Message{}, ev, "the next event is the message")
	assert.Equal(t, "still here", ev.(*client.Message).Body)
	assert.Len(t, e.chat.opened("bob"), 1, "no reconnection")
}
