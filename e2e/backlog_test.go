package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestBacklog fills a room with 200 messages, then has newcomers join
// while bob keeps sending: each gets the latest K messages, marked
// Earlier, then the live ones, with nothing missing or repeated between
// them.
func TestBacklog(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob")
	code := joinedRoom(t, alice, bob)
	atAlice := collect(t, alice)
	atBob := collect(t, bob)
	ctx := testCtx(t, 60*time.Second)

	const earlier = 200
	for i := range earlier {
		_, err := alice.Send(ctx, fmt.Sprintf("earlier %d", i))
		require.NoError(t, err)
	}
	last := fmt.Sprintf("earlier %d", earlier-1)
	atAlice.waitUntil(t, 20*time.Second, "alice's messages back", hasBody(last))
	atBob.waitUntil(t, 20*time.Second, "alice's messages at bob", hasBody(last))

	for _, tc := range []struct {
		name    string
		opts    []client.Option
		backlog int
	}{
		{"default", nil, client.DefaultBacklog},
		{"120", []client.Option{client.WithBacklog(120)}, 120},
	} {
		t.Run(tc.name, func(t *testing.T) {
			newcomer := newUser(t, s, "newcomer-"+tc.name, tc.opts...)
			ctx := testCtx(t, 30*time.Second)

			// bob sends while the newcomer joins, and after.
			joined := make(chan struct{})
			var wg sync.WaitGroup
			var sendErr error
			var lastLive string
			wg.Add(1)
			// The sender lives for 20 messages after the join.
			go func() {
				defer wg.Done()
				after := 0
				for i := 0; after < 20; i++ {
					select {
					case <-joined:
						after++
					default:
					}
					body := fmt.Sprintf("live %s %d", tc.name, i)
					if _, sendErr = bob.Send(ctx, body); sendErr != nil {
						return
					}
					lastLive = body
					time.Sleep(5 * time.Millisecond)
				}
			}()
			time.Sleep(50 * time.Millisecond)
			room, err := newcomer.JoinChatRoom(ctx, code, "room-secret")
			close(joined)
			require.NoError(t, err)
			wg.Wait()
			require.NoError(t, sendErr)
			atNewcomer := collect(t, newcomer)
			atNewcomer.waitUntil(t, 20*time.Second, "the live messages at the newcomer", hasBody(lastLive))
			atAlice.waitUntil(t, 20*time.Second, "the live messages at alice", hasBody(lastLive))

			assert.Equal(t, tc.backlog, room.Backlog)
			msgs := atNewcomer.messages()
			liveBefore := 0
			for _, m := range msgs[:min(len(msgs), room.Backlog)] {
				if strings.HasPrefix(m.Body, "live "+tc.name+" ") {
					liveBefore++
				}
			}
			t.Logf("backlog of %d up to %d, %d of them sent while joining; %d live after", room.Backlog, room.HeadSequence, liveBefore, len(msgs)-room.Backlog)
			require.Greater(t, len(msgs), tc.backlog, "the backlog and live messages")
			// The room as alice, a member all along, saw it.
			room0 := map[uint64]string{}
			for _, m := range atAlice.messages() {
				room0[m.Sequence] = m.Body
			}
			first := room.HeadSequence - uint64(tc.backlog) + 1
			assertRun(t, "newcomer", msgs, room.Epoch, first)
			for i, m := range msgs {
				assert.Equal(t, i < tc.backlog, m.Earlier, "message %d (%d %q) marked earlier only if in the backlog", i, m.Sequence, m.Body)
				assert.Equal(t, room0[m.Sequence], m.Body, "message %d: the room's message %d", i, m.Sequence)
			}
			assert.Equal(t, room.HeadSequence, msgs[tc.backlog-1].Sequence, "the backlog ends at the head")
			assert.GreaterOrEqual(t, len(msgs)-tc.backlog, 20, "live messages follow")
			assert.Empty(t, eventsOf[*client.Gap](atNewcomer.snapshot()))
		})
	}
}
