package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is an in-memory Store that can be made to fail.
type memStore struct {
	mu    sync.Mutex
	rooms []rooms.Room
	tombs []rooms.Tombstone
	fail  error
	saves int
}

func (s *memStore) Load() (rooms.Registry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return rooms.Registry{Rooms: s.rooms, Tombstones: s.tombs}, nil
}

func (s *memStore) Save(reg rooms.Registry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.saves++
	if s.fail != nil {
		return s.fail
	}
	s.rooms, s.tombs = reg.Rooms, reg.Tombstones
	return nil
}

func newEngine(t testing.TB, cfg Config) (*Memory, *memStore) {
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 6
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = 100
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 16
	}
	st := &memStore{}
	m, err := New(cfg, st)
	require.NoError(t, err)
	return m, st
}

// decode returns the events in a drained batch.
func decode(t testing.TB, evs []wire.Event) []*chatv1.Event {
	var out []*chatv1.Event
	for _, e := range evs {
		var res chatv1.ChatResponse
		require.NoError(t, proto.Unmarshal(e.Bytes(), &res))
		out = append(out, res.Events...)
	}
	return out
}

func drain(t testing.TB, s *rooms.Subscription) ([]*chatv1.Event, error) {
	evs, err := s.Drain(nil, 1<<20, 1<<30)
	return decode(t, evs), err
}

var ann = rooms.Member{ID: "u1", Name: "ann"}
var bob = rooms.Member{ID: "u2", Name: "bob"}

func TestCreatePersistsAndRollsBack(t *testing.T) {
	ctx := context.Background()
	m, st := newEngine(t, Config{})
	r, err := m.CreateRoom(ctx, "room", "hash", "u1")
	require.NoError(t, err)
	assert.Len(t, r.Code, 6)
	require.Len(t, st.rooms, 1)
	assert.Equal(t, r, st.rooms[0])

	st.fail = errors.New("disk full")
	_, err = m.CreateRoom(ctx, "room2", "hash", "u1")
	require.ErrorIs(t, err, st.fail)
	assert.Equal(t, 1, m.Len(), "a room that was not persisted is not kept")
}

func TestCodeCollisionExhaustion(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngine(t, Config{CodeLength: 1})
	seen := map[string]bool{}
	for range len(rooms.Alphabet) {
		r, err := m.CreateRoom(ctx, "r", "h", "u")
		if err != nil {
			// With 31 one-letter codes, retries may give up before the
			// last few are found; that must be reported, not overwrite.
			require.ErrorIs(t, err, rooms.ErrNoCode)
			continue
		}
		require.False(t, seen[r.Code], "collision handed out %s twice", r.Code)
		seen[r.Code] = true
	}
	assert.Equal(t, len(seen), m.Len())
}

func TestPresenceAndFanOut(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngine(t, Config{})
	r, err := m.CreateRoom(ctx, "room", "h", "u1")
	require.NoError(t, err)

	a, err := m.Subscribe(ctx, r.Code, ann, nil)
	require.NoError(t, err)
	assert.Equal(t, rooms.RecoveryNotRequested, a.Opened.Recovery)
	b1, err := m.Subscribe(ctx, r.Code, bob, nil)
	require.NoError(t, err)
	b2, err := m.Subscribe(ctx, r.Code, bob, nil)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 2}}, b2.Opened.Users)

	evs, _ := drain(t, a)
	require.Len(t, evs, 1, "one JOINED for bob's first stream only")
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, evs[0].GetPresence().GetKind())

	seq, err := m.Publish(ctx, r.Code, bob, "c", "hi")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), seq)
	for _, s := range []*rooms.Subscription{a, b1, b2} {
		evs, _ := drain(t, s)
		require.NotEmpty(t, evs)
		assert.Equal(t, "hi", evs[len(evs)-1].GetMessage().GetBody())
	}

	b1.Close()
	b1.Close() // idempotent
	evs, _ = drain(t, a)
	assert.Empty(t, evs, "bob still has a stream")
	b2.Close()
	evs, _ = drain(t, a)
	require.Len(t, evs, 1)
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, evs[0].GetPresence().GetKind())
	us, err := m.Users(ctx, r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}}, us)
	a.Close()
}

// Streams leave a room in any order; every one still open gets each
// message once, and a closed one nothing more.
func TestUnsubscribeInAnyOrder(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngine(t, Config{QueueSize: 64})
	r, err := m.CreateRoom(ctx, "room", "h", "u1")
	require.NoError(t, err)
	subs := make([]*rooms.Subscription, 6)
	for i := range subs {
		subs[i], err = m.Subscribe(ctx, r.Code, rooms.Member{ID: fmt.Sprint("id", i), Name: fmt.Sprint("user", i)}, nil)
		require.NoError(t, err)
	}
	open := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true}
	// First, last, middle, then the one moved into the first slot.
	for round, i := range []int{0, 5, 2, 4} {
		subs[i].Close()
		delete(open, i)
		for j := range subs {
			_, _ = drain(t, subs[j]) // presence events so far
		}
		body := fmt.Sprint("after ", round)
		_, err := m.Publish(ctx, r.Code, ann, "", body)
		require.NoError(t, err)
		for j, s := range subs {
			evs, _ := drain(t, s)
			var got []string
			for _, e := range evs {
				if msg := e.GetMessage(); msg != nil {
					got = append(got, msg.GetBody())
				}
			}
			if open[j] {
				assert.Equal(t, []string{body}, got, "open stream %d", j)
			} else {
				assert.Empty(t, got, "closed stream %d", j)
			}
		}
	}
	us, err := m.Users(ctx, r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "user1", Streams: 1}, {Name: "user3", Streams: 1}}, us)
	for _, s := range subs {
		s.Close()
	}
	us, err = m.Users(ctx, r.Code)
	require.NoError(t, err)
	assert.Empty(t, us)
}

func TestSlowConsumerDoesNotBlock(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngine(t, Config{QueueSize: 3})
	r, _ := m.CreateRoom(ctx, "room", "h", "u1")
	slow, _ := m.Subscribe(ctx, r.Code, ann, nil)
	fast, _ := m.Subscribe(ctx, r.Code, bob, nil)
	drain(t, slow) // bob's JOINED
	for i := range 10 {
		_, err := m.Publish(ctx, r.Code, bob, "", fmt.Sprint(i))
		require.NoError(t, err)
		evs, err := drain(t, fast)
		require.NoError(t, err)
		require.Len(t, evs, 1)
	}
	evs, err := drain(t, slow)
	assert.ErrorIs(t, err, rooms.ErrSlowConsumer)
	assert.Empty(t, evs)
	slow.Close()
	fast.Close()
}

func TestDeleteEndsSubscriptions(t *testing.T) {
	ctx := context.Background()
	m, st := newEngine(t, Config{QueueSize: 1})
	r, _ := m.CreateRoom(ctx, "room", "h", "u1")
	s, _ := m.Subscribe(ctx, r.Code, ann, nil)
	_, _ = m.Publish(ctx, r.Code, ann, "", "fills the queue")

	assert.ErrorIs(t, m.DeleteRoom(ctx, r.Code, "u2"), rooms.ErrNotOwner)
	require.NoError(t, m.DeleteRoom(ctx, r.Code, "u1"))
	assert.Empty(t, st.rooms)

	evs, err := drain(t, s)
	require.Len(t, evs, 2, "RoomDeleted is queued even when the queue is full")
	assert.NotNil(t, evs[1].GetRoomDeleted())
	assert.ErrorIs(t, err, rooms.ErrDeleted)
	s.Close()

	_, err = m.Subscribe(ctx, r.Code, ann, nil)
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	_, err = m.Publish(ctx, r.Code, ann, "", "x")
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	assert.ErrorIs(t, m.DeleteRoom(ctx, r.Code, "u1"), rooms.ErrNotFound)
}

func TestIdleRoomsExpire(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1_000_000, 0)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	m, st := newEngine(t, Config{IdleTTL: time.Hour, Now: clock})
	busy, _ := m.CreateRoom(ctx, "busy", "h", "u1")
	require.NoError(t, m.Touch(ctx, busy.Code))
	idle, _ := m.CreateRoom(ctx, "idle", "h", "u1")
	s, _ := m.Subscribe(ctx, busy.Code, ann, nil)

	advance(59 * time.Minute)
	n, err := m.SweepIdle()
	require.NoError(t, err)
	assert.Zero(t, n)
	advance(2 * time.Minute)
	n, err = m.SweepIdle()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = m.Room(ctx, idle.Code)
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	require.Len(t, st.rooms, 1)

	// The busy room's idle time starts when its last stream closes.
	advance(2 * time.Hour)
	s.Close()
	advance(30 * time.Minute)
	n, _ = m.SweepIdle()
	assert.Zero(t, n)
	advance(31 * time.Minute)
	n, _ = m.SweepIdle()
	assert.Equal(t, 1, n)
	assert.Zero(t, m.Len())
}

func TestRunStopsWithContext(t *testing.T) {
	m, _ := newEngine(t, Config{IdleTTL: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx, nil) }() // Owner: this test. Exit: cancel below.
	cancel()
	assert.NoError(t, <-done)
}

// Two engines over the same directory: the room survives, the epoch does not.
func TestRestartKeepsRoomsNewEpoch(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f, err := store.Open(dir)
	require.NoError(t, err)
	cfg := Config{CodeLength: 6, HistorySize: 10, QueueSize: 10}
	m1, err := New(cfg, f)
	require.NoError(t, err)
	r, err := m1.CreateRoom(ctx, "room", "h", "u1")
	require.NoError(t, err)
	_, err = m1.Publish(ctx, r.Code, ann, "", "x")
	require.NoError(t, err)

	m2, err := New(cfg, f)
	require.NoError(t, err)
	got, err := m2.Room(ctx, r.Code)
	require.NoError(t, err)
	assert.Equal(t, r.Name, got.Name)
	assert.True(t, r.CreatedAt.Equal(got.CreatedAt))
	assert.NotEqual(t, m1.Epoch(), m2.Epoch())
	s, err := m2.Subscribe(ctx, r.Code, ann, &rooms.Resume{Epoch: m1.Epoch(), After: 1})
	require.NoError(t, err)
	assert.Equal(t, rooms.RecoveryFailed, s.Opened.Recovery)
	assert.Zero(t, s.Opened.Head)
	s.Close()
}
