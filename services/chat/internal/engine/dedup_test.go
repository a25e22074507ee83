package engine

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A client message ID is unique per user within the room's history: a
// repeat by the same user is neither recorded nor broadcast.
func TestPublishIgnoresRepeatedClientID(t *testing.T) {
	ctx := context.Background()
	bob2 := rooms.Member{ID: bob.ID, Name: "bob renamed"} // same user ID, other name
	cases := []struct {
		name    string
		first   rooms.Member
		firstID string
		again   rooms.Member
		againID string
		ignored bool
	}{
		{"same user, same ID", ann, "m1", ann, "m1", true},
		{"same user ID under another name", bob, "m1", bob2, "m1", true},
		{"other user, same ID", ann, "m1", bob, "m1", false},
		{"same user, other ID", ann, "m1", ann, "m2", false},
		{"empty ID is never a repeat", ann, "", ann, "", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := newEngine(t, Config{})
			r, err := m.CreateRoom(ctx, "room", "h", "u1")
			require.NoError(t, err)
			sub, err := m.Subscribe(ctx, r.Code, rooms.Member{ID: "w", Name: "watcher"}, nil)
			require.NoError(t, err)
			defer sub.Close()

			seq, err := m.Publish(ctx, r.Code, tc.first, tc.firstID, "one")
			require.NoError(t, err)
			require.Equal(t, uint64(1), seq)
			seq, err = m.Publish(ctx, r.Code, tc.again, tc.againID, "two")
			require.NoError(t, err)
			evs, err := drain(t, sub)
			require.NoError(t, err)
			if tc.ignored {
				assert.Equal(t, uint64(1), seq, "a repeat answers the original sequence")
				assert.Len(t, evs, 1, "a repeat is not broadcast")
			} else {
				assert.Equal(t, uint64(2), seq)
				require.Len(t, evs, 2)
				assert.Equal(t, "two", evs[1].GetMessage().GetBody())
			}
			// A resume from the start replays only what was recorded.
			re, err := m.Subscribe(ctx, r.Code, ann, &rooms.Resume{Epoch: m.Epoch(), After: 0})
			require.NoError(t, err)
			defer re.Close()
			replay, err := drain(t, re)
			require.NoError(t, err)
			assert.Len(t, replay, len(evs))
		})
	}
}

// The index of client IDs follows the history ring: once a message is
// evicted its ID may be used again, and the index never outgrows history.
func TestRepeatedClientIDAfterEviction(t *testing.T) {
	ctx := context.Background()
	const history = 4
	m, _ := newEngine(t, Config{HistorySize: history, QueueSize: history / 2})
	r, err := m.CreateRoom(ctx, "room", "h", "u1")
	require.NoError(t, err)

	seq, err := m.Publish(ctx, r.Code, ann, "first", "x")
	require.NoError(t, err)
	require.Equal(t, uint64(1), seq)
	for i := range history - 1 {
		_, err := m.Publish(ctx, r.Code, ann, fmt.Sprint(i), "x")
		require.NoError(t, err)
	}
	seq, err = m.Publish(ctx, r.Code, ann, "first", "x")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), seq, "message 1 is still in history: a repeat")

	_, err = m.Publish(ctx, r.Code, ann, "", "evicts message 1")
	require.NoError(t, err)
	seq, err = m.Publish(ctx, r.Code, ann, "first", "x")
	require.NoError(t, err)
	assert.Equal(t, uint64(history+2), seq, "message 1 left history: the ID is new again")

	for i := range 10 * history {
		_, err := m.Publish(ctx, r.Code, ann, fmt.Sprint("bulk", i), "x")
		require.NoError(t, err)
	}
	rm, err := m.lookup(r.Code)
	require.NoError(t, err)
	rm.mu.Lock()
	defer rm.mu.Unlock()
	assert.Len(t, rm.sent, history, "one entry per message in history")
}
