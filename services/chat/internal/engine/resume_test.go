package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

// small keeps four messages per room (HistorySize 4, twice QueueSize 2).
var small = engine.Config{HistorySize: 4, QueueSize: 2}

// roomWith returns an engine and a room that has had n messages, "m1".."mn".
func roomWith(t *testing.T, n int) (*engine.Engine, rooms.Room) {
	t.Helper()
	m, _, _ := newEngine(t, small)
	r := create(t, m, "u1")
	for i := 1; i <= n; i++ {
		send(t, m, r.Code, ann, fmt.Sprint("c", i), fmt.Sprint("m", i))
	}
	return m, r
}

// expectLive checks that after its replay a stream gets the next message
// live, with no gap and no duplicate.
func expectLive(t *testing.T, m *engine.Engine, code string, s *rooms.Subscription, next uint64) {
	t.Helper()
	assert.Equal(t, next, send(t, m, code, bob, "", "live"))
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []uint64{next}, seqs(evs))
}

// The replay a stream gets for each kind of resume point, in a room that
// has had six messages and keeps the latest four (3..6).
func TestResume(t *testing.T) {
	cases := []struct {
		name     string
		epoch    string // "" for the engine's own
		after    uint64
		recovery rooms.Recovery
		replay   []uint64
	}{
		{"from the oldest point history covers", "", 2, rooms.RecoveryComplete, span(3, 6)},
		{"from the middle", "", 4, rooms.RecoveryComplete, span(5, 6)},
		{"from the head", "", 6, rooms.RecoveryComplete, nil},
		{"from before what history holds", "", 1, rooms.RecoveryFailed, span(3, 6)},
		{"from the start", "", 0, rooms.RecoveryFailed, span(3, 6)},
		{"from past the head", "", 9, rooms.RecoveryFailed, nil},
		{"from another epoch", "0123456789abcdef", 2, rooms.RecoveryFailed, span(3, 6)},
		{"from another epoch past our head", "0123456789abcdef", 99, rooms.RecoveryFailed, span(3, 6)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, r := roomWith(t, 6)
			epoch := tc.epoch
			if epoch == "" {
				epoch = m.Epoch()
			}
			s := subscribe(t, m, r.Code, bob, rooms.Open{Resume: &rooms.Resume{Epoch: epoch, After: tc.after}, Backlog: 1})
			assert.Equal(t, tc.recovery, s.Opened.Recovery)
			assert.Equal(t, uint64(6), s.Opened.Head)
			assert.Equal(t, len(tc.replay), s.Opened.Backlog)
			evs, err := drain(s)
			require.NoError(t, err)
			assert.Equal(t, tc.replay, seqs(evs))
			expectLive(t, m, r.Code, s, 7)
		})
	}
}

// A stream that does not resume gets the latest K delivered messages,
// capped at what history holds, then live ones.
func TestBacklog(t *testing.T) {
	cases := []struct {
		name    string
		sent    int
		backlog int
		want    []uint64
	}{
		{"none asked", 6, 0, nil},
		{"negative", 6, -1, nil},
		{"latest two", 6, 2, span(5, 6)},
		{"all history holds", 6, 4, span(3, 6)},
		{"more than history holds", 6, 10, span(3, 6)},
		{"more than the room has had", 2, 10, span(1, 2)},
		{"an empty room", 0, 10, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m, r := roomWith(t, tc.sent)
			s := subscribe(t, m, r.Code, bob, rooms.Open{Backlog: tc.backlog})
			assert.Equal(t, rooms.RecoveryNotRequested, s.Opened.Recovery)
			assert.Equal(t, uint64(tc.sent), s.Opened.Head)
			assert.Equal(t, len(tc.want), s.Opened.Backlog)
			evs, err := drain(s)
			require.NoError(t, err)
			assert.Equal(t, tc.want, seqs(evs))
			expectLive(t, m, r.Code, s, uint64(tc.sent)+1)
		})
	}
}

// On a durable log a restart keeps the epoch, the rooms, the sequences
// and the client IDs: a client resumes exactly where it was.
func TestRestartOnSQLStore(t *testing.T) {
	dir := t.TempDir()
	cfg := engine.Config{HistorySize: 10, QueueSize: 5}
	open := func() *sqlstore.Store {
		st, err := sqlstore.Open(ctx(t), sqlstore.Config{DataDir: dir, Retain: retained(cfg)})
		require.NoError(t, err)
		return st
	}

	st1 := open()
	m1, err := engine.New(testConfig(cfg), st1, st1)
	require.NoError(t, err)
	r, err := m1.CreateRoom(ctx(t), "room", "hash", "u1")
	require.NoError(t, err)
	watch := subscribe(t, m1, r.Code, bob, rooms.Open{})
	for i := 1; i <= 5; i++ {
		send(t, m1, r.Code, ann, fmt.Sprint("c", i), fmt.Sprint("m", i))
	}
	before, err := drain(watch)
	require.NoError(t, err)
	require.Len(t, before, 5)
	epoch := m1.Epoch()
	require.NoError(t, m1.Close(ctx(t)))
	require.NoError(t, st1.Close())

	st2 := open()
	t.Cleanup(func() { assert.NoError(t, st2.Close()) })
	m2 := start(t, cfg, st2, st2) // closed before st2: cleanups run last first
	assert.Equal(t, epoch, m2.Epoch())
	got, err := m2.Room(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, r.OwnerID, got.OwnerID)
	assert.Equal(t, r.Name, got.Name)
	assert.Equal(t, r.PasswordHash, got.PasswordHash)
	// The store keeps times to the microsecond; CreateRoom answers the
	// clock's nanoseconds.
	assert.WithinDuration(t, r.CreatedAt, got.CreatedAt, time.Microsecond)

	s := subscribe(t, m2, r.Code, bob, rooms.Open{Resume: &rooms.Resume{Epoch: epoch, After: 2}})
	assert.Equal(t, rooms.RecoveryComplete, s.Opened.Recovery)
	assert.Equal(t, uint64(5), s.Opened.Head)
	assert.Equal(t, 3, s.Opened.Backlog)
	evs, err := drain(s)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	for i, ev := range evs {
		want := before[i+2].Message
		assert.True(t, want.SentAt.Equal(ev.Message.SentAt), "SentAt of %d", want.Seq)
		ev.Message.SentAt = want.SentAt
		assert.Equal(t, want, ev.Message)
	}

	seq, err := m2.Publish(ctx(t), r.Code, ann, "c2", "m2 again")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), seq, "a client ID from before the restart is still known")
	require.NoError(t, m2.Flush(ctx(t)))
	assert.False(t, s.Pending(), "the repeat is not delivered")
	expectLive(t, m2, r.Code, s, 6)
	head, err := st2.Head(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, uint64(6), head)
}

// A log that does not survive a restart (the memory one) starts a new
// epoch over the same rooms: a client resuming from the old epoch is told
// its sequences are void and gets everything the new epoch has said.
func TestRestartWithEphemeralHistory(t *testing.T) {
	reg := memstore.NewRegistry()
	m1, err := engine.New(testConfig(engine.Config{}), reg, memstore.NewLog(retained(engine.Config{})))
	require.NoError(t, err)
	r, err := m1.CreateRoom(ctx(t), "room", "hash", "u1")
	require.NoError(t, err)
	for i := 1; i <= 3; i++ {
		send(t, m1, r.Code, ann, "", fmt.Sprint("old ", i))
	}
	oldEpoch := m1.Epoch()
	require.NoError(t, m1.Close(ctx(t)))

	m2 := start(t, engine.Config{}, reg, memstore.NewLog(retained(engine.Config{})))
	assert.NotEqual(t, oldEpoch, m2.Epoch())
	assert.Equal(t, uint64(1), send(t, m2, r.Code, ann, "", "new 1"))
	assert.Equal(t, uint64(2), send(t, m2, r.Code, ann, "", "new 2"))

	s := subscribe(t, m2, r.Code, bob, rooms.Open{Resume: &rooms.Resume{Epoch: oldEpoch, After: 2}})
	assert.Equal(t, rooms.RecoveryFailed, s.Opened.Recovery)
	assert.Equal(t, uint64(2), s.Opened.Head)
	assert.Equal(t, 2, s.Opened.Backlog)
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"new 1", "new 2"}, bodies(evs))
	for _, ev := range evs {
		assert.Equal(t, m2.Epoch(), ev.Message.Epoch)
	}
	expectLive(t, m2, r.Code, s, 3)
}

// A room reloaded from a log that keeps fewer messages than the engine
// retains offers only what the log returned: resuming from before it
// fails, from within it completes, and a backlog is capped at it.
func TestReloadFromShortLog(t *testing.T) {
	reg, log := memstore.NewRegistry(), memstore.NewLog(2) // the engine retains 4
	m1, err := engine.New(testConfig(small), reg, log)
	require.NoError(t, err)
	r, err := m1.CreateRoom(ctx(t), "room", "hash", "u1")
	require.NoError(t, err)
	for i := 1; i <= 6; i++ {
		send(t, m1, r.Code, ann, "", fmt.Sprint("m", i))
	}
	require.NoError(t, m1.Close(ctx(t)))

	m2 := start(t, small, reg, log) // the same log: the same epoch
	cases := []struct {
		name     string
		open     rooms.Open
		recovery rooms.Recovery
	}{
		{"resume from before the log's oldest", rooms.Open{Resume: &rooms.Resume{Epoch: log.Epoch(), After: 3}}, rooms.RecoveryFailed},
		{"resume from the log's oldest", rooms.Open{Resume: &rooms.Resume{Epoch: log.Epoch(), After: 4}}, rooms.RecoveryComplete},
		{"backlog", rooms.Open{Backlog: 10}, rooms.RecoveryNotRequested},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := subscribe(t, m2, r.Code, bob, tc.open)
			assert.Equal(t, tc.recovery, s.Opened.Recovery)
			assert.Equal(t, uint64(6), s.Opened.Head)
			evs, err := drain(s)
			require.NoError(t, err)
			assert.Equal(t, []string{"m5", "m6"}, bodies(evs))
			s.Close()
		})
	}
	s := subscribe(t, m2, r.Code, bob, rooms.Open{})
	expectLive(t, m2, r.Code, s, 7)
}
