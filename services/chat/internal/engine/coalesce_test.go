package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/enginetest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// coalescing returns an engine whose presence windows w ends.
func coalescing(t *testing.T, cfg engine.Config) (*engine.Engine, *enginetest.Windows) {
	t.Helper()
	w := &enginetest.Windows{}
	cfg.PresenceWindow, cfg.AfterFunc = time.Second, w.After
	m, _, _ := newEngine(t, cfg)
	return m, w
}

// change is a presence change as a stream sees it.
type change struct {
	left bool
	user string
}

// changes flattens the presence events among evs, batched or not.
func changes(evs []*rooms.Event) []change {
	var out []change
	for _, ev := range evs {
		one := []*rooms.Event{ev}
		if ev.Kind == rooms.EventPresence {
			one = ev.Batch
		}
		for _, e := range one {
			switch e.Kind {
			case rooms.EventJoined, rooms.EventLeft:
				out = append(out, change{e.Kind == rooms.EventLeft, e.User})
			}
		}
	}
	return out
}

func joined(u string) change { return change{false, u} }
func left(u string) change   { return change{true, u} }

// A 3,000-member join storm: every member ends up knowing every other,
// exactly once each, while the room pushes each stream at most one event
// per presence window instead of one per later arrival. Windows end every
// 100 arrivals, so there are 30: the bound is 30 pushes per member (90,000
// in all) where one event per arrival per member present made
// 3000×2999/2 = 4,498,500, and each arrival is one shared event, encoded
// once whatever the number of streams that get it.
func TestJoinStormWork(t *testing.T) {
	const members, perWindow = 3000, 100
	m, w := coalescing(t, engine.Config{QueueSize: 64})
	r := create(t, m, "u0")
	subs := make([]*rooms.Subscription, members)
	windowsEnded := 0
	for i := range subs {
		subs[i] = subscribe(t, m, r.Code, rooms.Member{ID: fmt.Sprint("id", i), Name: fmt.Sprint("user", i)}, rooms.Open{})
		if (i+1)%perWindow == 0 {
			windowsEnded += w.End()
		}
	}
	windowsEnded += w.End()
	require.Equal(t, members/perWindow, windowsEnded, "one window per %d arrivals", perWindow)

	// Checked by hand rather than with an assertion per change: there
	// are millions.
	pushes, delivered := 0, 0
	shared := make(map[*rooms.Event]bool) // the change events, by identity
	for i, s := range subs {
		evs, err := drain(s)
		require.NoError(t, err, "member %d: no stream overflows its queue of 64", i)
		pushes += len(evs)
		online := make(map[string]bool, members)
		for _, u := range s.Opened.Users {
			online[u.Name] = true
		}
		require.True(t, online[fmt.Sprint("user", i)], "Opened lists the member itself")
		for _, ev := range evs {
			if ev.Kind != rooms.EventPresence {
				require.Failf(t, "not a presence batch", "member %d got event kind %d", i, ev.Kind)
			}
			for _, c := range ev.Batch {
				if c.Kind != rooms.EventJoined || online[c.User] {
					require.Failf(t, "a change heard twice, or before the Opened that listed it",
						"member %d: kind %d for %s", i, c.Kind, c.User)
				}
				online[c.User] = true
				shared[c] = true
				delivered++
			}
		}
		require.Len(t, online, members, "member %d knows everyone", i)
	}
	assert.LessOrEqual(t, pushes, windowsEnded*members, "at most one push per member per window")
	assert.Equal(t, members*(members-1)/2, delivered, "each member hears of each later arrival")
	assert.Len(t, shared, members-1, "one event per arrival (the first had nobody to tell), shared by every stream")
}

// A window's changes reach every stream open before it as one batch, in
// order, joins and leaves alike and not netted; a stream opened during the
// window gets only the changes after its Opened; messages are not held
// back, and every stream sees them in the same place against the batch.
func TestPresenceWindow(t *testing.T) {
	m, w := coalescing(t, engine.Config{})
	r := create(t, m, "u1")
	cy := rooms.Member{ID: "u3", Name: "cy"}
	a := subscribe(t, m, r.Code, ann, rooms.Open{})
	b := subscribe(t, m, r.Code, bob, rooms.Open{})
	c := subscribe(t, m, r.Code, cy, rooms.Open{})
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 1}, {Name: "cy", Streams: 1}}, c.Opened.Users)
	send(t, m, r.Code, ann, "", "during the window")
	b.Close()
	for _, s := range []*rooms.Subscription{a, c} {
		evs, err := drain(s)
		require.NoError(t, err)
		assert.Equal(t, []string{"during the window"}, bodies(evs), "messages are not held back")
		assert.Empty(t, changes(evs), "presence waits for the window's end")
	}

	require.Equal(t, 1, w.End(), "one window for the three changes")
	evs, err := drain(a)
	require.NoError(t, err)
	require.Len(t, evs, 1, "one push")
	assert.Equal(t, []change{joined("bob"), joined("cy"), left("bob")}, changes(evs), "in order, not netted")
	evs, err = drain(c)
	require.NoError(t, err)
	assert.Equal(t, []change{left("bob")}, changes(evs), "cy's Opened showed bob and itself")

	assert.Zero(t, w.End(), "no change, no window")
	send(t, m, r.Code, ann, "", "after")
	c.Close()
	evs, _ = drain(a)
	assert.Equal(t, []string{"after"}, bodies(evs))
	assert.Empty(t, changes(evs))
	require.Equal(t, 1, w.End())
	evs, _ = drain(a)
	assert.Equal(t, []change{left("cy")}, changes(evs))
}

// Another instance's changes (Notify) share the window of this one's.
func TestRemotePresenceWindow(t *testing.T) {
	m, w := coalescing(t, engine.Config{})
	r := create(t, m, "u1")
	a := subscribe(t, m, r.Code, ann, rooms.Open{})
	m.Notify(r.Code, &rooms.Event{Kind: rooms.EventJoined, User: "zed", At: t0})
	subscribe(t, m, r.Code, bob, rooms.Open{})
	m.Notify(r.Code, &rooms.Event{Kind: rooms.EventLeft, User: "zed", At: t0})
	assert.False(t, a.Pending())
	require.Equal(t, 1, w.End())
	evs, err := drain(a)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, []change{joined("zed"), joined("bob"), left("zed")}, changes(evs))
}

// A window that gathers as many changes as a batch holds sends them at
// once, so that no frame grows with the room.
func TestPresenceBatchBound(t *testing.T) {
	const members = 1500
	m, w := coalescing(t, engine.Config{QueueSize: 4})
	r := create(t, m, "u0")
	first := subscribe(t, m, r.Code, rooms.Member{ID: "first", Name: "first"}, rooms.Open{})
	for i := range members {
		s := subscribe(t, m, r.Code, rooms.Member{ID: fmt.Sprint("id", i), Name: fmt.Sprint("user", i)}, rooms.Open{})
		_, err := drain(s)
		require.NoError(t, err)
	}
	evs, err := drain(first)
	require.NoError(t, err)
	require.Len(t, evs, 1, "a full batch went at once")
	assert.Len(t, evs[0].Batch, 1000)
	w.End()
	evs, err = drain(first)
	require.NoError(t, err)
	require.Len(t, evs, 1, "the rest at the window's end")
	assert.Len(t, evs[0].Batch, members-1000)
}

// MaxRoomMembers refuses a further user's first stream, not another
// stream of a user online; a place frees when a user's last stream closes.
func TestRoomFull(t *testing.T) {
	m, _, _ := newEngine(t, engine.Config{MaxRoomMembers: 2})
	r := create(t, m, "u1")
	cy := rooms.Member{ID: "u3", Name: "cy"}
	subscribe(t, m, r.Code, ann, rooms.Open{})
	b := subscribe(t, m, r.Code, bob, rooms.Open{})
	_, err := m.Subscribe(ctx(t), r.Code, cy, rooms.Open{})
	require.ErrorIs(t, err, rooms.ErrRoomFull)
	b2 := subscribe(t, m, r.Code, bob, rooms.Open{})
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 2}}, b2.Opened.Users, "the refusal counted nothing")
	b.Close()
	_, err = m.Subscribe(ctx(t), r.Code, cy, rooms.Open{})
	require.ErrorIs(t, err, rooms.ErrRoomFull, "bob is still online")
	b2.Close()
	subscribe(t, m, r.Code, cy, rooms.Open{})
}
