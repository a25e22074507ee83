package engine_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func TestNewRefusesBadConfig(t *testing.T) {
	good := engine.Config{CodeLength: 6, HistorySize: 10, QueueSize: 10}
	reg, log := memstore.NewRegistry(), memstore.NewLog(20)
	cases := []struct {
		name string
		cfg  func(*engine.Config)
		reg  engine.Registry
		log  engine.Log
	}{
		{"code length", func(c *engine.Config) { c.CodeLength = 0 }, reg, log},
		{"history size", func(c *engine.Config) { c.HistorySize = 0 }, reg, log},
		{"queue size", func(c *engine.Config) { c.QueueSize = -1 }, reg, log},
		{"no registry", func(*engine.Config) {}, nil, log},
		{"no log", func(*engine.Config) {}, reg, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.cfg(&cfg)
			m, err := engine.New(cfg, tc.reg, tc.log)
			assert.Error(t, err)
			assert.Nil(t, m, "no engine, so no committer to leak")
		})
	}
}

func TestCreateRoom(t *testing.T) {
	clk := newClock()
	m, reg, _ := newEngine(t, engine.Config{Now: clk.Now})
	r, err := m.CreateRoom(ctx(t), "room", "hash", "u1")
	require.NoError(t, err)
	assert.Len(t, r.Code, 6)
	assert.Equal(t, rooms.Room{Code: r.Code, Name: "room", PasswordHash: "hash", OwnerID: "u1", CreatedAt: t0, IdleSince: t0}, r)

	stored, err := reg.Room(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, r, stored)
	got, err := m.Room(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, r, got)
	assert.Equal(t, 1, m.Len(ctx(t)))
	_, err = m.Room(ctx(t), "NOPE")
	assert.ErrorIs(t, err, rooms.ErrNotFound)
}

// CreateRoom retries a taken code, and only that: every other failure is
// the caller's answer.
func TestCreateRoomFailures(t *testing.T) {
	errCode := errors.New("no entropy")
	cases := []struct {
		name  string
		cfg   engine.Config
		setup func(t *testing.T, m *engine.Engine, reg *faultyRegistry)
		want  error
		tries int // calls of NewCode by the failing CreateRoom
	}{
		{
			name:  "every code taken",
			cfg:   engine.Config{NewCode: codes("AAAA")},
			setup: func(t *testing.T, m *engine.Engine, _ *faultyRegistry) { create(t, m, "u1") },
			want:  rooms.ErrNoCode,
			tries: 16,
		},
		{
			name:  "owner at the limit",
			cfg:   engine.Config{MaxRoomsPerUser: 1, NewCode: codes("AAAA", "BBBB")},
			setup: func(t *testing.T, m *engine.Engine, _ *faultyRegistry) { create(t, m, "u1") },
			want:  rooms.ErrTooManyRooms,
			tries: 1,
		},
		{
			name:  "registry fails",
			cfg:   engine.Config{NewCode: codes("AAAA")},
			setup: func(_ *testing.T, _ *engine.Engine, reg *faultyRegistry) { reg.setErr(errDisk) },
			want:  errDisk,
			tries: 1,
		},
		{
			name: "no code can be made",
			cfg:  engine.Config{NewCode: func(int) (string, error) { return "", errCode }},
			want: errCode,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var tries atomic.Int32
			newCode := tc.cfg.NewCode
			tc.cfg.NewCode = func(n int) (string, error) { tries.Add(1); return newCode(n) }
			reg := &faultyRegistry{Registry: memstore.NewRegistry()}
			m := start(t, tc.cfg, reg, memstore.NewLog(10))
			if tc.setup != nil {
				tc.setup(t, m, reg)
			}
			before, err := reg.Count(ctx(t))
			require.NoError(t, err)
			tries.Store(0)

			_, err = m.CreateRoom(ctx(t), "room", "hash", "u1")
			assert.ErrorIs(t, err, tc.want)
			if tc.tries > 0 {
				assert.EqualValues(t, tc.tries, tries.Load())
			}
			after, err := reg.Count(ctx(t))
			require.NoError(t, err)
			assert.Equal(t, before, after, "nothing created")
		})
	}
}

// With 31 one-letter codes, random retries find most of them; whatever
// they miss is reported, never handed out twice.
func TestCodeCollisionExhaustion(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{CodeLength: 1})
	seen := map[string]bool{}
	for range 2 * len(rooms.Alphabet) {
		r, err := m.CreateRoom(ctx(t), "r", "h", "u")
		if err != nil {
			require.ErrorIs(t, err, rooms.ErrNoCode)
			continue
		}
		require.False(t, seen[r.Code], "collision handed out %s twice", r.Code)
		seen[r.Code] = true
	}
	assert.Equal(t, len(seen), m.Len(ctx(t)))
	assert.Greater(t, len(seen), len(rooms.Alphabet)/2)
}

// The engine gives the registry its ReuseAfter and its clock's time, so a
// deleted room's code stays out of use until room tokens for it expire.
func TestDeletedCodeNotReusedEarly(t *testing.T) {
	clk := newClock()
	m, _, _ := newEngine(t, engine.Config{ReuseAfter: time.Hour, Now: clk.Now, NewCode: codes("AAAA", "AAAA", "BBBB", "AAAA")})
	old := create(t, m, "u1")
	require.Equal(t, "AAAA", old.Code)
	require.NoError(t, m.DeleteRoom(ctx(t), old.Code, "u1"))
	assert.Equal(t, "BBBB", create(t, m, "u2").Code, "the tombstoned code is skipped")

	clk.advance(59 * time.Minute)
	_, err := m.CreateRoom(ctx(t), "again", "h", "u2")
	require.ErrorIs(t, err, rooms.ErrNoCode)
	clk.advance(time.Minute)
	assert.Equal(t, "AAAA", create(t, m, "u2").Code)
}

func TestPresenceAndFanOut(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{})
	r := create(t, m, "u1")
	a := subscribe(t, m, r.Code, ann, rooms.Open{})
	assert.Equal(t, rooms.RecoveryNotRequested, a.Opened.Recovery)
	b1 := subscribe(t, m, r.Code, bob, rooms.Open{})
	b2 := subscribe(t, m, r.Code, bob, rooms.Open{})
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 2}}, b2.Opened.Users)
	assert.Equal(t, r.Name, b2.Opened.Name)
	assert.Equal(t, m.Epoch(), b2.Opened.Epoch)

	evs, _ := drain(a)
	require.Len(t, evs, 1, "one JOINED for bob's first stream only")
	assert.Equal(t, rooms.EventJoined, evs[0].Kind)
	assert.Equal(t, "bob", evs[0].User)
	evs, _ = drain(b1)
	assert.Empty(t, evs, "a stream does not hear of its own user's streams")

	assert.Equal(t, uint64(1), send(t, m, r.Code, bob, "c", "hi"))
	var shared *rooms.Event
	for _, s := range []*rooms.Subscription{a, b1, b2} {
		evs, err := drain(s)
		require.NoError(t, err)
		require.Len(t, evs, 1)
		assert.Equal(t, rooms.Message{Room: r.Code, Seq: 1, Epoch: m.Epoch(), SentAt: evs[0].Message.SentAt,
			SenderID: bob.ID, Sender: "bob", Body: "hi", ClientID: "c"}, evs[0].Message)
		if shared != nil {
			assert.Same(t, shared, evs[0], "one event shared by every stream")
		}
		shared = evs[0]
	}

	b1.Close()
	b1.Close() // idempotent
	assert.False(t, a.Pending(), "bob still has a stream")
	b2.Close()
	evs, _ = drain(a)
	require.Len(t, evs, 1)
	assert.Equal(t, rooms.EventLeft, evs[0].Kind)
	assert.Equal(t, "bob", evs[0].User)
	us, err := m.Users(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}}, us)
}

// Streams leave a room in any order; every one still open gets each
// message once, and a closed one nothing more.
func TestUnsubscribeInAnyOrder(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{QueueSize: 64})
	r := create(t, m, "u1")
	subs := make([]*rooms.Subscription, 6)
	for i := range subs {
		subs[i] = subscribe(t, m, r.Code, rooms.Member{ID: fmt.Sprint("id", i), Name: fmt.Sprint("user", i)}, rooms.Open{})
	}
	open := map[int]bool{0: true, 1: true, 2: true, 3: true, 4: true, 5: true}
	// First, last, middle, then the one moved into the first slot.
	for round, i := range []int{0, 5, 2, 4} {
		subs[i].Close()
		delete(open, i)
		for _, s := range subs {
			_, _ = drain(s) // presence so far
		}
		body := fmt.Sprint("after ", round)
		send(t, m, r.Code, ann, "", body)
		for j, s := range subs {
			evs, _ := drain(s)
			if open[j] {
				assert.Equal(t, []string{body}, bodies(evs), "open stream %d", j)
			} else {
				assert.Empty(t, evs, "closed stream %d", j)
			}
		}
	}
	us, err := m.Users(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "user1", Streams: 1}, {Name: "user3", Streams: 1}}, us)
	for _, s := range subs {
		s.Close()
	}
	us, err = m.Users(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Empty(t, us)
}

// A stream that does not drain is cut off; the others and the publisher
// go on.
func TestSlowConsumerDoesNotBlock(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{QueueSize: 3})
	r := create(t, m, "u1")
	slow := subscribe(t, m, r.Code, ann, rooms.Open{})
	fast := subscribe(t, m, r.Code, bob, rooms.Open{})
	_, _ = drain(slow) // bob's JOINED
	for i := range 10 {
		send(t, m, r.Code, bob, "", fmt.Sprint(i))
		evs, err := drain(fast)
		require.NoError(t, err)
		require.Equal(t, []string{fmt.Sprint(i)}, bodies(evs))
	}
	evs, err := drain(slow)
	assert.ErrorIs(t, err, rooms.ErrSlowConsumer)
	assert.Empty(t, evs)
}

func TestLimits(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{MaxRoomsPerUser: 2, MaxStreamsPerUser: 2})
	r := create(t, m, "u1")
	create(t, m, "u1")
	_, err := m.CreateRoom(ctx(t), "c", "h", "u1")
	require.ErrorIs(t, err, rooms.ErrTooManyRooms)
	create(t, m, "u2") // per user

	subscribe(t, m, r.Code, ann, rooms.Open{})
	second := subscribe(t, m, r.Code, ann, rooms.Open{})
	_, err = m.Subscribe(ctx(t), r.Code, ann, rooms.Open{})
	require.ErrorIs(t, err, rooms.ErrTooManyStreams)
	subscribe(t, m, r.Code, bob, rooms.Open{}) // per user
	second.Close()
	subscribe(t, m, r.Code, ann, rooms.Open{}) // a closed stream frees its place
}

// Event times are read under the room lock, so that they never go
// backwards against the room's order: the clock must never be read with
// a loaded room unlocked.
func TestClockReadUnderRoomLock(t *testing.T) {
	var (
		m                 *engine.Engine
		code              atomic.Pointer[string]
		checked, unlocked atomic.Int32
	)
	now := func() time.Time {
		if c := code.Load(); c != nil && m.Loaded(*c) {
			checked.Add(1)
			if !m.RoomLocked(*c) {
				unlocked.Add(1)
			}
		}
		return t0
	}
	m, _, _ = newEngine(t, engine.Config{Now: now})
	r := create(t, m, "u1")
	code.Store(&r.Code)
	s := subscribe(t, m, r.Code, ann, rooms.Open{})
	s2 := subscribe(t, m, r.Code, bob, rooms.Open{}) // JOINED
	send(t, m, r.Code, ann, "", "hi")
	s2.Close() // LEFT
	s.Close()
	code.Store(nil) // Close reads the clock for idle times, with no room locked
	assert.GreaterOrEqual(t, checked.Load(), int32(4))
	assert.Zero(t, unlocked.Load(), "clock read outside the room lock")
}

// The history ring grows with the room's messages only, up to what the
// room retains.
func TestHistoryGrowsWithMessages(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{HistorySize: 4, QueueSize: 2})
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, ann, rooms.Open{})
	subscribe(t, m, r.Code, bob, rooms.Open{}).Close() // presence is not history
	_, _ = drain(s)
	h, _, ok := m.RoomMemory(r.Code)
	require.True(t, ok)
	assert.Zero(t, h)
	var got []uint64
	for i := range 6 {
		send(t, m, r.Code, ann, "", "x")
		h, _, _ := m.RoomMemory(r.Code)
		assert.Equal(t, min(i+1, 4), h, "after %d messages", i+1)
		evs, err := drain(s)
		require.NoError(t, err)
		got = append(got, seqs(evs)...)
	}
	assert.Equal(t, span(1, 6), got)
}

// Engines sharing a Presence table count a user's streams across them:
// JOINED and LEFT mark the user's first and last stream anywhere, the
// stream limit holds across engines, and the streams of an engine that
// stops renewing its lease stop counting.
func TestPresenceSharedAcrossEngines(t *testing.T) {
	clk := newClock()
	table := engine.NewMemoryPresence(time.Minute, clk.Now)
	reg := memstore.NewRegistry()
	cfg := func(holder string) engine.Config {
		return engine.Config{Presence: table.Holder(holder), PresenceTTL: time.Minute, MaxStreamsPerUser: 2, Now: clk.Now}
	}
	a := start(t, cfg("a"), reg, memstore.NewLog(retained(engine.Config{})))
	b := start(t, cfg("b"), reg, memstore.NewLog(retained(engine.Config{})))
	r := create(t, a, "u1")

	watch := subscribe(t, b, r.Code, bob, rooms.Open{})
	onA := subscribe(t, a, r.Code, ann, rooms.Open{})
	onB := subscribe(t, b, r.Code, ann, rooms.Open{})
	assert.False(t, watch.Pending(), "ann's first stream was on the other engine")
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 2}, {Name: "bob", Streams: 1}}, onB.Opened.Users)
	_, err := a.Subscribe(ctx(t), r.Code, ann, rooms.Open{})
	assert.ErrorIs(t, err, rooms.ErrTooManyStreams, "the limit counts both engines")

	onA.Close()
	assert.False(t, watch.Pending(), "ann still has a stream")
	again := subscribe(t, a, r.Code, ann, rooms.Open{})
	users, err := b.Users(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 2}, {Name: "bob", Streams: 1}}, users)

	// a stops renewing: once its lease lapses its stream no longer counts.
	clk.advance(45 * time.Second)
	require.NoError(t, b.Tick(ctx(t)))
	clk.advance(30 * time.Second)
	users, err = b.Users(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 1}}, users)

	onB.Close()
	evs, err := drain(watch)
	require.NoError(t, err)
	require.Len(t, evs, 1, "ann's last counted stream closed")
	assert.Equal(t, rooms.EventLeft, evs[0].Kind)
	assert.Equal(t, "ann", evs[0].User)
	again.Close()
}
