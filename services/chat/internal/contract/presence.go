package contract

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// PresenceTable opens an empty presence table whose leases last ttl, read
// against now, and returns the function that makes its holders (one per
// instance that shares it).
type PresenceTable func(t *testing.T, ttl time.Duration, now func() time.Time) func(holder string) engine.Presence

// Presence runs the engine.Presence suite.
func Presence(t *testing.T, open PresenceTable) {
	ann := rooms.Member{ID: "u1", Name: "ann"}
	bob := rooms.Member{ID: "u2", Name: "bob"}
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	const ttl = 30 * time.Second

	join := func(t *testing.T, p engine.Presence, room string, m rooms.Member, limit int) bool {
		t.Helper()
		first, err := p.Join(ctx(t), room, m, engine.JoinLimits{Streams: limit})
		require.NoError(t, err)
		return first
	}
	leave := func(t *testing.T, p engine.Presence, room string, m rooms.Member) bool {
		t.Helper()
		last, err := p.Leave(ctx(t), room, m)
		require.NoError(t, err)
		return last
	}
	users := func(t *testing.T, p engine.Presence, room string) []rooms.User {
		t.Helper()
		us, err := p.Users(ctx(t), room)
		require.NoError(t, err)
		return us
	}

	t.Run("first and last stream of a user", func(t *testing.T) {
		p := open(t, ttl, clock)("a")
		assert.True(t, join(t, p, "R", bob, 0))
		assert.False(t, join(t, p, "R", bob, 0))
		assert.True(t, join(t, p, "R", ann, 0))
		assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 2}}, users(t, p, "R"), "sorted by name")
		assert.Empty(t, users(t, p, "OTHER"), "rooms are independent")
		assert.False(t, leave(t, p, "R", bob))
		assert.True(t, leave(t, p, "R", bob))
		assert.False(t, leave(t, p, "R", bob), "leaving a stream never joined does nothing")
		assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}}, users(t, p, "R"))
		assert.True(t, leave(t, p, "R", ann))
		assert.Empty(t, users(t, p, "R"))
	})
	t.Run("stream limit across holders", func(t *testing.T) {
		holder := open(t, ttl, clock)
		a, b := holder("a"), holder("b")
		join(t, a, "R", ann, 2)
		assert.False(t, join(t, b, "R", ann, 2), "counted across holders")
		_, err := a.Join(ctx(t), "R", ann, engine.JoinLimits{Streams: 2})
		require.ErrorIs(t, err, rooms.ErrTooManyStreams)
		assert.Equal(t, []rooms.User{{Name: "ann", Streams: 2}}, users(t, b, "R"), "a refused join counts nothing")
		assert.True(t, join(t, a, "R", bob, 2), "per user")
		assert.False(t, leave(t, b, "R", ann))
		assert.False(t, join(t, b, "R", ann, 2), "room again once one left")
	})
	t.Run("concurrent joins respect the limit", func(t *testing.T) {
		holder := open(t, ttl, clock)
		o := race(20, rooms.ErrTooManyStreams, func(i int) error {
			_, err := holder([]string{"a", "b"}[i%2]).Join(ctx(t), "R", ann, engine.JoinLimits{Streams: 5})
			return err
		})
		assert.Empty(t, o.others)
		assert.Equal(t, 5, o.ok)
		assert.Equal(t, 15, o.want)
	})
	t.Run("room member limit across holders", func(t *testing.T) {
		holder := open(t, ttl, clock)
		a, b := holder("a"), holder("b")
		full := engine.JoinLimits{Members: 2}
		cy := rooms.Member{ID: "u3", Name: "cy"}
		_, err := a.Join(ctx(t), "R", ann, full)
		require.NoError(t, err)
		_, err = b.Join(ctx(t), "R", bob, full)
		require.NoError(t, err)
		_, err = a.Join(ctx(t), "R", cy, full)
		require.ErrorIs(t, err, rooms.ErrRoomFull, "a third user, counted across holders")
		first, err := b.Join(ctx(t), "R", ann, full)
		require.NoError(t, err, "a member's further stream is no new member")
		assert.False(t, first)
		assert.Equal(t, []rooms.User{{Name: "ann", Streams: 2}, {Name: "bob", Streams: 1}}, users(t, a, "R"), "a refused join counts nothing")
		_, err = a.Join(ctx(t), "OTHER", cy, full)
		require.NoError(t, err, "per room")
		assert.True(t, leave(t, b, "R", bob))
		assert.True(t, join(t, a, "R", cy, 0), "room again once one left")
		_, err = b.Join(ctx(t), "R", bob, full)
		require.ErrorIs(t, err, rooms.ErrRoomFull)
	})
	t.Run("concurrent first joins respect the member limit", func(t *testing.T) {
		holder := open(t, ttl, clock)
		o := race(12, rooms.ErrRoomFull, func(i int) error {
			m := rooms.Member{ID: fmt.Sprintf("c%d", i), Name: fmt.Sprintf("c%d", i)}
			_, err := holder([]string{"a", "b"}[i%2]).Join(ctx(t), "R", m, engine.JoinLimits{Members: 4})
			return err
		})
		assert.Empty(t, o.others)
		assert.Equal(t, 4, o.ok)
		assert.Equal(t, 8, o.want)
		assert.Len(t, users(t, holder("a"), "R"), 4)
	})
	t.Run("a holder that stops renewing disappears within the TTL", func(t *testing.T) {
		holder := open(t, ttl, clock)
		crashed, live := holder("crashed"), holder("live")
		join(t, crashed, "R", ann, 0)
		join(t, live, "R", bob, 0)
		for range 4 { // live renews three times per lease; crashed never
			advance(ttl / 3)
			require.NoError(t, live.Renew(ctx(t)))
		}
		assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, users(t, live, "R"))
		assert.True(t, join(t, live, "R", ann, 1), "ann's lapsed stream neither counts nor limits")
	})
	t.Run("renewing keeps the counts", func(t *testing.T) {
		p := open(t, ttl, clock)("a")
		join(t, p, "R", ann, 0)
		for range 6 {
			advance(ttl / 2)
			require.NoError(t, p.Renew(ctx(t)))
		}
		assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}}, users(t, p, "R"))
	})
}
