package engine_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func TestDeleteEndsSubscriptions(t *testing.T) {
	m, reg, _ := newEngine(t, engine.Config{QueueSize: 1})
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, ann, rooms.Open{})
	send(t, m, r.Code, ann, "", "fills the queue")

	assert.ErrorIs(t, m.DeleteRoom(ctx(t), r.Code, "u2"), rooms.ErrNotOwner)
	require.NoError(t, m.DeleteRoom(ctx(t), r.Code, "u1"))
	_, err := reg.Room(ctx(t), r.Code)
	assert.ErrorIs(t, err, rooms.ErrNotFound)

	evs, err := drain(s)
	require.Len(t, evs, 2, "RoomDeleted is queued even when the queue is full")
	assert.Equal(t, rooms.EventRoomDeleted, evs[1].Kind)
	assert.ErrorIs(t, err, rooms.ErrDeleted)

	_, err = m.Room(ctx(t), r.Code)
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	_, err = m.Subscribe(ctx(t), r.Code, ann, rooms.Open{})
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	_, err = m.Publish(ctx(t), r.Code, ann, "", "x")
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	_, err = m.Users(ctx(t), r.Code)
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	assert.ErrorIs(t, m.DeleteRoom(ctx(t), r.Code, "u1"), rooms.ErrNotFound)
}

// The registry is the point of no return: a delete it refuses leaves the
// room and its streams as they were.
func TestDeleteFailureChangesNothing(t *testing.T) {
	reg := &faultyRegistry{Registry: memstore.NewRegistry()}
	log := memstore.NewLog(retained(engine.Config{}))
	m := start(t, engine.Config{}, reg, log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, ann, rooms.Open{})
	send(t, m, r.Code, ann, "", "before")
	_, _ = drain(s)

	reg.setErr(errDisk)
	require.ErrorIs(t, m.DeleteRoom(ctx(t), r.Code, "u1"), errDisk)
	_, err := m.Room(ctx(t), r.Code)
	require.NoError(t, err, "still there")
	assert.False(t, s.Pending(), "streams were not told")
	assert.Equal(t, []string{"before"}, logged(t, log, r.Code), "history kept")
	send(t, m, r.Code, ann, "", "still open")
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"still open"}, bodies(evs))
}

// A deleted room's history leaves the log, messages accepted just before
// the deletion included, whichever way the room goes.
func TestDeleteDropsHistory(t *testing.T) {
	cases := []struct {
		name   string
		delete func(ctx context.Context, m *engine.Engine, code string) error
	}{
		{"owner deletes", func(ctx context.Context, m *engine.Engine, code string) error {
			return m.DeleteRoom(ctx, code, "u1")
		}},
		{"idle sweep", func(ctx context.Context, m *engine.Engine, code string) error {
			// A room with messages still to be written is busy: the sweep
			// takes it once they are.
			for {
				n, err := m.SweepIdle(ctx)
				if err != nil || n == 1 {
					return err
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(5 * time.Millisecond):
				}
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clk := newClock()
			cfg := engine.Config{IdleTTL: time.Hour, Now: clk.Now}
			log := newGatedLog(retained(cfg))
			m := start(t, cfg, memstore.NewRegistry(), log)
			r := create(t, m, "u1")
			other := create(t, m, "u1")
			for _, b := range []string{"one", "two", "three"} {
				send(t, m, r.Code, ann, "", b)
			}
			send(t, m, other.Code, ann, "", "kept")
			_ = drainChan(log.entered)

			log.hold()
			_, err := m.Publish(ctx(t), r.Code, ann, "", "four")
			require.NoError(t, err)
			log.awaitAppend(t)
			_, err = m.Publish(ctx(t), r.Code, ann, "", "five")
			require.NoError(t, err)
			clk.advance(2 * time.Hour)
			require.NoError(t, m.Touch(ctx(t), other.Code)) // only r is idle

			done := make(chan error, 1)
			// Owner: this test. Exit: the delete returns once the log is released.
			go func() { done <- tc.delete(ctx(t), m, r.Code) }()
			log.release()
			require.NoError(t, <-done)

			head, err := log.Head(ctx(t), r.Code)
			require.NoError(t, err)
			assert.Zero(t, head)
			assert.Empty(t, logged(t, log, r.Code))
			assert.Equal(t, []string{"kept"}, logged(t, log, other.Code))
		})
	}
}

// drainChan empties c without waiting.
func drainChan[T any](c chan T) int {
	for n := 0; ; n++ {
		select {
		case <-c:
		default:
			return n
		}
	}
}

// Sweeping: a room never joined and a room joined but never streamed in
// are deleted after the TTL; an open stream keeps a room even if the
// registry has not heard of it; the idle clock starts when the last
// stream closes.
func TestSweepIdle(t *testing.T) {
	clk := newClock()
	m, _, _ := newEngine(t, engine.Config{IdleTTL: time.Hour, Now: clk.Now})
	never := create(t, m, "u1")
	joined := create(t, m, "u1")
	active := create(t, m, "u1")
	s := subscribe(t, m, active.Code, ann, rooms.Open{})
	gone := func(r rooms.Room) bool {
		_, err := m.Room(ctx(t), r.Code)
		return assert.ObjectsAreEqual(rooms.ErrNotFound, err)
	}
	sweep := func() int {
		n, err := m.SweepIdle(ctx(t))
		require.NoError(t, err)
		return n
	}

	clk.advance(40 * time.Minute)
	require.NoError(t, m.Touch(ctx(t), joined.Code))
	clk.advance(19 * time.Minute)
	assert.Zero(t, sweep())
	clk.advance(2 * time.Minute) // t0+61m
	assert.Equal(t, 1, sweep())
	assert.True(t, gone(never))

	clk.advance(40 * time.Minute) // t0+101m: joined idle since t0+40m
	assert.Equal(t, 1, sweep())
	assert.True(t, gone(joined))
	assert.False(t, gone(active), "its stream is open, though the registry says idle since t0")

	clk.advance(20 * time.Minute)
	s.Close() // t0+121m: the idle clock starts now
	clk.advance(59 * time.Minute)
	assert.Zero(t, sweep(), "idle for 59 minutes")
	require.NoError(t, m.Tick(ctx(t)))
	assert.False(t, gone(active))
	clk.advance(2 * time.Minute)
	assert.Equal(t, 1, sweep())
	assert.True(t, gone(active))
	assert.Zero(t, m.Len(ctx(t)))
}

// Tick records idle times in the registry, so that a crash leaves a room's
// idle clock at most one tick behind: now for rooms with streams, and when
// its last stream closed for a room without.
func TestTickRecordsIdleTimes(t *testing.T) {
	clk := newClock()
	m, reg, _ := newEngine(t, engine.Config{IdleTTL: 24 * time.Hour, Now: clk.Now})
	active := create(t, m, "u1")
	closed := create(t, m, "u1")
	untouched := create(t, m, "u1")
	sa := subscribe(t, m, active.Code, ann, rooms.Open{})
	sc := subscribe(t, m, closed.Code, ann, rooms.Open{})
	idleSince := func(r rooms.Room) time.Time {
		got, err := reg.Room(ctx(t), r.Code)
		require.NoError(t, err)
		return got.IdleSince
	}

	clk.advance(time.Hour)
	sc.Close()
	clk.advance(time.Hour)
	assert.Equal(t, t0, idleSince(active), "nothing recorded before the tick")
	assert.Equal(t, t0, idleSince(closed))

	require.NoError(t, m.Tick(ctx(t)))
	assert.Equal(t, t0.Add(2*time.Hour), idleSince(active))
	assert.Equal(t, t0.Add(time.Hour), idleSince(closed), "when its last stream closed")
	assert.Equal(t, t0, idleSince(untouched))

	clk.advance(time.Hour)
	require.NoError(t, m.Tick(ctx(t)))
	assert.Equal(t, t0.Add(3*time.Hour), idleSince(active))
	assert.Equal(t, t0.Add(time.Hour), idleSince(closed))

	clk.advance(time.Hour)
	require.NoError(t, m.Close(ctx(t)))
	assert.Equal(t, t0.Add(4*time.Hour), idleSince(active), "Close records them too")
	sa.Close()
}

// Rooms unused for a while are dropped from memory and come back from the
// stores, history and client IDs included, on next use. A room with a
// stream or with messages not yet in the log stays.
func TestForgetUnusedRooms(t *testing.T) {
	clk := newClock()
	cfg := engine.Config{Now: clk.Now}
	log := newGatedLog(retained(cfg))
	m := start(t, cfg, memstore.NewRegistry(), log)
	quiet, busy, fresh, pending := create(t, m, "u1"), create(t, m, "u1"), create(t, m, "u1"), create(t, m, "u1")
	for i, b := range []string{"one", "two", "three"} {
		send(t, m, quiet.Code, ann, []string{"c1", "c2", "c3"}[i], b)
	}
	subscribe(t, m, busy.Code, ann, rooms.Open{})
	log.hold()
	t.Cleanup(log.release)
	_, err := m.Publish(ctx(t), pending.Code, ann, "", "unwritten")
	require.NoError(t, err)
	clk.advance(engine.ForgetAfter - time.Minute)
	subscribe(t, m, fresh.Code, ann, rooms.Open{}).Close()
	clk.advance(2 * time.Minute)

	require.NoError(t, m.Tick(ctx(t)))
	assert.False(t, m.Loaded(quiet.Code), "unused")
	assert.True(t, m.Loaded(busy.Code), "a stream is open")
	assert.True(t, m.Loaded(fresh.Code), "used a minute ago")
	assert.True(t, m.Loaded(pending.Code), "a message awaits the log")

	log.release()
	require.NoError(t, m.Flush(ctx(t)))
	clk.advance(engine.ForgetAfter)
	require.NoError(t, m.Tick(ctx(t)))
	assert.False(t, m.Loaded(pending.Code), "written since")
	assert.False(t, m.Loaded(fresh.Code))
	assert.True(t, m.Loaded(busy.Code))

	got, err := m.Room(ctx(t), quiet.Code)
	require.NoError(t, err)
	assert.Equal(t, quiet, got)
	s := subscribe(t, m, quiet.Code, bob, rooms.Open{Backlog: 10})
	assert.Equal(t, uint64(3), s.Opened.Head)
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two", "three"}, bodies(evs))
	seq, err := m.Publish(ctx(t), quiet.Code, ann, "c2", "repeat")
	require.NoError(t, err)
	assert.Equal(t, uint64(2), seq, "client IDs come back with the history")
	assert.Equal(t, uint64(4), send(t, m, quiet.Code, ann, "c4", "four"))
	evs, err = drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"four"}, bodies(evs))
}

func TestRunStopsWithContext(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{IdleTTL: time.Hour})
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(c) }() // Owner: this test. Exit: cancel below.
	cancel()
	assert.NoError(t, <-done)
}

// A room deleted while another call is loading it stays deleted: the
// load, begun before the deletion, must not bring it back to life.
func TestDeleteWhileLoading(t *testing.T) {
	reg := &faultyRegistry{Registry: memstore.NewRegistry()}
	log := memstore.NewLog(retained(engine.Config{}))
	m := start(t, engine.Config{}, reg, log)
	r := create(t, m, "u1")

	loading, resume := make(chan struct{}), make(chan struct{})
	var first atomic.Bool // only the load pauses; the delete's own look-up does not
	reg.setOnRoom(func(string) {
		if first.CompareAndSwap(false, true) {
			close(loading)
			<-resume
		}
	})
	type result struct {
		sub *rooms.Subscription
		err error
	}
	done := make(chan result, 1)
	go func() { // Owner: this test. Exit: the load resumes below.
		s, err := m.Subscribe(ctx(t), r.Code, ann, rooms.Open{})
		done <- result{s, err}
	}()
	<-loading // the registry has answered that the room exists
	require.NoError(t, m.DeleteRoom(ctx(t), r.Code, "u1"))
	reg.setOnRoom(nil)
	close(resume)

	res := <-done
	if res.sub != nil {
		res.sub.Close()
	}
	assert.ErrorIs(t, res.err, rooms.ErrNotFound, "Subscribe to a room deleted while it loaded")
	_, err := m.Publish(ctx(t), r.Code, ann, "", "ghost")
	assert.ErrorIs(t, err, rooms.ErrNotFound, "Publish to a deleted room")
	require.NoError(t, m.Flush(ctx(t)))
	assert.Empty(t, logged(t, log, r.Code), "history of a deleted room")
}
