package engine

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
)

// clock is a settable clock for tests.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Unix(1_000_000, 0)} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// codes hands out the given codes in turn, then the last one forever.
func codes(cs ...string) func(int) (string, error) {
	var mu sync.Mutex
	return func(int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		c := cs[0]
		if len(cs) > 1 {
			cs = cs[1:]
		}
		return c, nil
	}
}

// The code of a deleted room is not reused until ReuseAfter has passed,
// across a restart too, so a room token for the old room never opens a new
// one with the same code.
func TestDeletedCodeNotReused(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cfg := Config{ReuseAfter: time.Hour, Now: clk.Now, NewCode: codes("AAAA", "AAAA", "BBBB", "AAAA")}
	m, st := newEngine(t, cfg)
	old, err := m.CreateRoom(ctx, "old", "h", "u1")
	require.NoError(t, err)
	require.Equal(t, "AAAA", old.Code)
	require.NoError(t, m.DeleteRoom(ctx, old.Code, "u1"))
	require.Len(t, st.tombs, 1)
	assert.Equal(t, "AAAA", st.tombs[0].Code)

	fresh, err := m.CreateRoom(ctx, "new", "h", "u2")
	require.NoError(t, err)
	assert.Equal(t, "BBBB", fresh.Code, "a tombstoned code is skipped")

	// Only AAAA on offer now: refused as exhausted, and after a restart too.
	m2, err := New(m.cfg, st)
	require.NoError(t, err)
	_, err = m2.CreateRoom(ctx, "again", "h", "u2")
	require.ErrorIs(t, err, rooms.ErrNoCode)

	clk.advance(time.Hour)
	again, err := m2.CreateRoom(ctx, "again", "h", "u2")
	require.NoError(t, err)
	assert.Equal(t, "AAAA", again.Code, "free once tokens for the old room have expired")
	assert.Empty(t, st.tombs, "expired tombstones are dropped")
}

// Delete persists first: a failed write leaves the room and its streams.
func TestDeleteFailedSaveChangesNothing(t *testing.T) {
	ctx := context.Background()
	m, st := newEngine(t, Config{})
	r, err := m.CreateRoom(ctx, "room", "h", "u1")
	require.NoError(t, err)
	s, err := m.Subscribe(ctx, r.Code, ann, nil)
	require.NoError(t, err)
	defer s.Close()

	st.fail = errors.New("disk full")
	require.ErrorIs(t, m.DeleteRoom(ctx, r.Code, "u1"), st.fail)
	_, err = m.Room(ctx, r.Code)
	require.NoError(t, err, "still there")
	assert.False(t, s.Pending(), "streams were not told")
	_, err = m.Publish(ctx, r.Code, ann, "", "still open")
	assert.NoError(t, err)

	st.fail = nil
	require.NoError(t, m.DeleteRoom(ctx, r.Code, "u1"))
	assert.Empty(t, st.rooms)
}

// Sweeping: a room never joined and a room joined but never streamed are
// deleted after the TTL, a room with a stream is not, a join restarts the
// clock, and a restart keeps it.
func TestSweepIdle(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	dir := t.TempDir()
	f, err := store.Open(dir)
	require.NoError(t, err)
	defer f.Close()
	cfg := Config{CodeLength: 6, HistorySize: 10, QueueSize: 10, IdleTTL: time.Hour, Now: clk.Now}
	m, err := New(cfg, f)
	require.NoError(t, err)
	never, _ := m.CreateRoom(ctx, "never joined", "h", "u1")
	joined, _ := m.CreateRoom(ctx, "joined", "h", "u1")
	active, _ := m.CreateRoom(ctx, "active", "h", "u1")
	s, err := m.Subscribe(ctx, active.Code, ann, nil)
	require.NoError(t, err)
	defer s.Close()

	clk.advance(40 * time.Minute)
	require.NoError(t, m.Touch(ctx, joined.Code))
	clk.advance(20 * time.Minute)
	n, err := m.SweepIdle()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	_, err = m.Room(ctx, never.Code)
	assert.ErrorIs(t, err, rooms.ErrNotFound)

	// A restart does not reset the clock of the joined room.
	require.NoError(t, m.Persist())
	m2, err := New(cfg, f)
	require.NoError(t, err)
	clk.advance(40 * time.Minute)
	n, err = m2.SweepIdle()
	require.NoError(t, err)
	assert.Equal(t, 1, n, "joined: idle for 1h since its join, across the restart")
	_, err = m2.Room(ctx, joined.Code)
	assert.ErrorIs(t, err, rooms.ErrNotFound)
	// The active room's stream ended with the restart (saved at 60 min).
	clk.advance(20 * time.Minute)
	n, err = m2.SweepIdle()
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.Zero(t, m2.Len())
}

// Limits: rooms per user and streams per user in a room.
func TestLimits(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngine(t, Config{MaxRoomsPerUser: 2, MaxStreamsPerUser: 2})
	r, err := m.CreateRoom(ctx, "a", "h", "u1")
	require.NoError(t, err)
	_, err = m.CreateRoom(ctx, "b", "h", "u1")
	require.NoError(t, err)
	_, err = m.CreateRoom(ctx, "c", "h", "u1")
	require.ErrorIs(t, err, rooms.ErrTooManyRooms)
	_, err = m.CreateRoom(ctx, "c", "h", "u2")
	require.NoError(t, err, "per user")

	for range 2 {
		s, err := m.Subscribe(ctx, r.Code, ann, nil)
		require.NoError(t, err)
		defer s.Close()
	}
	_, err = m.Subscribe(ctx, r.Code, ann, nil)
	require.ErrorIs(t, err, rooms.ErrTooManyStreams)
	s, err := m.Subscribe(ctx, r.Code, bob, nil)
	require.NoError(t, err, "per user")
	s.Close()
}

// Event times are read under the room lock, so that sent_at never goes
// backwards against the sequence: the clock must never run unlocked.
func TestClockReadUnderRoomLock(t *testing.T) {
	ctx := context.Background()
	var m *Memory
	var code string
	unlocked := 0
	now := func() time.Time {
		if code != "" {
			if r, err := m.lookup(code); err == nil && r.mu.TryLock() {
				r.mu.Unlock()
				unlocked++
			}
		}
		return time.Unix(1_000_000, 0)
	}
	m, _ = newEngine(t, Config{Now: now})
	r, err := m.CreateRoom(ctx, "room", "h", "u1")
	require.NoError(t, err)
	code = r.Code
	s, err := m.Subscribe(ctx, code, ann, nil)
	require.NoError(t, err)
	s2, err := m.Subscribe(ctx, code, bob, nil) // JOINED
	require.NoError(t, err)
	_, err = m.Publish(ctx, code, ann, "", "hi")
	require.NoError(t, err)
	s2.Close() // LEFT
	s.Close()
	assert.Zero(t, unlocked, "clock read outside the room lock")
}

// The history ring grows with the room's messages.
func TestHistoryGrows(t *testing.T) {
	ctx := context.Background()
	m, _ := newEngine(t, Config{HistorySize: 4, QueueSize: 1})
	r, _ := m.CreateRoom(ctx, "room", "h", "u1")
	rm, _ := m.lookup(r.Code)
	for i := range 6 {
		_, err := m.Publish(ctx, r.Code, ann, "", "x")
		require.NoError(t, err)
		assert.Len(t, rm.history, min(i+1, 4))
	}
}

// Idle times reach the file on the next tick, so a crash (no final save)
// does not make an active room look idle since its last registry write.
func TestTickPersistsIdleTimes(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	m, st := newEngine(t, Config{IdleTTL: time.Hour, Now: clk.Now})
	active, _ := m.CreateRoom(ctx, "active", "h", "u1")
	joined, _ := m.CreateRoom(ctx, "joined", "h", "u1")
	s, err := m.Subscribe(ctx, active.Code, ann, nil)
	require.NoError(t, err)
	defer s.Close()

	clk.advance(2 * time.Hour) // streaming all along
	require.NoError(t, m.Touch(ctx, joined.Code))
	saves := st.saves
	require.NoError(t, m.tick())
	assert.Equal(t, saves+1, st.saves, "idle times moved: written")

	// Crash: a new engine over what was written, 30 minutes later.
	clk.advance(30 * time.Minute)
	m2, err := New(m.cfg, st)
	require.NoError(t, err)
	n, err := m2.SweepIdle()
	require.NoError(t, err)
	assert.Zero(t, n, "both rooms were active 30 minutes ago")

	// An engine with nothing new to write does not write.
	require.NoError(t, m2.tick())
	saves = st.saves
	require.NoError(t, m2.tick())
	assert.Equal(t, saves, st.saves)
}
