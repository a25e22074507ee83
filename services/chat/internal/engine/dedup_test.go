package engine_test

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A client message ID is unique per user within the room's history: a
// repeat by the same user is neither recorded nor broadcast.
func TestPublishIgnoresRepeatedClientID(t *testing.T) {
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
			m, _, log := newEngine(t, engine.Config{})
			r := create(t, m, "u1")
			sub := subscribe(t, m, r.Code, rooms.Member{ID: "w", Name: "watcher"}, rooms.Open{})

			require.Equal(t, uint64(1), send(t, m, r.Code, tc.first, tc.firstID, "one"))
			seq := send(t, m, r.Code, tc.again, tc.againID, "two")
			evs, err := drain(sub)
			require.NoError(t, err)
			if tc.ignored {
				assert.Equal(t, uint64(1), seq, "a repeat answers the original sequence")
				assert.Equal(t, []string{"one"}, bodies(evs), "a repeat is not broadcast")
				assert.Equal(t, []string{"one"}, logged(t, log, r.Code), "nor written")
			} else {
				assert.Equal(t, uint64(2), seq)
				assert.Equal(t, []string{"one", "two"}, bodies(evs))
			}
			// A resume from the start replays only what was recorded.
			re := subscribe(t, m, r.Code, ann, rooms.Open{Resume: &rooms.Resume{Epoch: m.Epoch(), After: 0}})
			replay, err := drain(re)
			require.NoError(t, err)
			assert.Equal(t, bodies(evs), bodies(replay))
		})
	}
}

// A repeat arriving while the original still awaits the log is ignored
// too: the ID is taken when the message is accepted, not when written.
func TestRepeatWhileOriginalPending(t *testing.T) {
	log := newGatedLog(retained(engine.Config{}))
	m := start(t, engine.Config{}, memstore.NewRegistry(), log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, bob, rooms.Open{})
	log.hold()
	seq, err := m.Publish(ctx(t), r.Code, ann, "m1", "one")
	require.NoError(t, err)
	again, err := m.Publish(ctx(t), r.Code, ann, "m1", "one")
	require.NoError(t, err)
	assert.Equal(t, seq, again)
	log.release()
	require.NoError(t, m.Flush(ctx(t)))
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"one"}, bodies(evs))
}

// The index of client IDs follows the history ring: once a message is
// evicted its ID may be used again, and the index never outgrows history.
func TestRepeatedClientIDAfterEviction(t *testing.T) {
	const history = 4
	m, _, _ := newEngine(t, engine.Config{HistorySize: history, QueueSize: history / 2})
	r := create(t, m, "u1")

	require.Equal(t, uint64(1), send(t, m, r.Code, ann, "first", "x"))
	for i := range history - 1 {
		send(t, m, r.Code, ann, fmt.Sprint(i), "x")
	}
	assert.Equal(t, uint64(1), send(t, m, r.Code, ann, "first", "x"), "message 1 is still in history: a repeat")

	send(t, m, r.Code, ann, "", "evicts message 1")
	assert.Equal(t, uint64(history+2), send(t, m, r.Code, ann, "first", "x"), "message 1 left history: the ID is new again")

	for i := range 10 * history {
		send(t, m, r.Code, ann, fmt.Sprint("bulk", i), "x")
	}
	h, sent, ok := m.RoomMemory(r.Code)
	require.True(t, ok)
	assert.Equal(t, history, h)
	assert.Equal(t, history, sent, "one entry per message in history")
}
