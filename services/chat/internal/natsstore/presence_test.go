package natsstore_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/natstest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/natsstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// TestMain checks the whole package for leaks: nats.go's goroutines end
// when each test's connections close.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// natsJS connects to url as one instance would, closing the connection at
// the end of the test.
func natsJS(t *testing.T, url string) jetstream.JetStream {
	t.Helper()
	_, js := connect(t, url)
	return js
}

// natsCtx bounds one test's calls.
func natsCtx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// fakeClock is the injected clock of a test's tables.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestPresenceContract(t *testing.T) {
	js := natsJS(t, natstest.Server(t))
	var n atomic.Int32
	contract.Presence(t, func(t *testing.T, ttl time.Duration, now func() time.Time) func(string) engine.Presence {
		i := n.Add(1) // the suite's cases share a server: buckets of their own
		p, err := natsstore.NewPresence(natsCtx(t), js, natsstore.PresenceConfig{
			TTL: ttl, Now: now,
			Bucket: fmt.Sprintf("presence_%d", i), HoldersBucket: fmt.Sprintf("holders_%d", i), Subject: fmt.Sprintf("presence.t%d", i),
		})
		require.NoError(t, err)
		return func(id string) engine.Presence { return p.Holder(id) }
	})
}

const presenceTTL = 30 * time.Second

// instance is one chat instance's view of a shared table: its own
// connection, table and holder, and the events its Watch delivered.
type instance struct {
	*natsstore.PresenceHolder
	events chan roomEvent
}

type roomEvent struct {
	room string
	ev   *rooms.Event
}

func newInstance(t *testing.T, url, id string, clock *fakeClock) *instance {
	t.Helper()
	p, err := natsstore.NewPresence(natsCtx(t), natsJS(t, url), natsstore.PresenceConfig{TTL: presenceTTL, Now: clock.Now})
	require.NoError(t, err)
	in := &instance{PresenceHolder: p.Holder(id), events: make(chan roomEvent, 100)}
	require.NoError(t, in.Watch(t.Context(), func(room string, ev *rooms.Event) {
		in.events <- roomEvent{room, ev}
	}))
	return in
}

func (in *instance) join(t *testing.T, room string, m rooms.Member) bool {
	t.Helper()
	first, err := in.Join(natsCtx(t), room, m, engine.JoinLimits{})
	require.NoError(t, err)
	return first
}

func (in *instance) leave(t *testing.T, room string, m rooms.Member) bool {
	t.Helper()
	last, err := in.Leave(natsCtx(t), room, m)
	require.NoError(t, err)
	return last
}

func (in *instance) users(t *testing.T, room string) []rooms.User {
	t.Helper()
	us, err := in.Users(natsCtx(t), room)
	require.NoError(t, err)
	return us
}

// next is the instance's next event.
func (in *instance) next(t *testing.T) roomEvent {
	t.Helper()
	select {
	case e := <-in.events:
		return e
	case <-time.After(10 * time.Second):
		t.Fatal("no presence event")
		return roomEvent{}
	}
}

func (in *instance) expect(t *testing.T, room string, kind rooms.EventKind, user string, at time.Time) {
	t.Helper()
	e := in.next(t)
	assert.Equal(t, room, e.room)
	assert.Equal(t, kind, e.ev.Kind)
	assert.Equal(t, user, e.ev.User)
	assert.True(t, at.Equal(e.ev.At), "at %s, want %s", e.ev.At, at)
}

var (
	ann = rooms.Member{ID: "u1", Name: "ann"}
	bob = rooms.Member{ID: "u2", Name: "bob"}
)

func TestPresenceEventsReachOtherHolders(t *testing.T) {
	url := natstest.Server(t)
	clock := newFakeClock()
	// c's ID is no valid KV key: its record's key is a hash of it.
	a, b, c := newInstance(t, url, "a", clock), newInstance(t, url, "b", clock), newInstance(t, url, "c.host:8080/1", clock)

	require.True(t, a.join(t, "R", ann))
	b.expect(t, "R", rooms.EventJoined, "ann", clock.Now())
	c.expect(t, "R", rooms.EventJoined, "ann", clock.Now())
	require.False(t, a.join(t, "R", ann), "a second stream is no arrival")
	require.False(t, b.join(t, "R", ann))

	clock.Advance(time.Second)
	require.False(t, a.leave(t, "R", ann))
	require.False(t, a.leave(t, "R", ann))
	require.True(t, b.leave(t, "R", ann))
	a.expect(t, "R", rooms.EventLeft, "ann", clock.Now())
	c.expect(t, "R", rooms.EventLeft, "ann", clock.Now())

	require.True(t, a.join(t, "R", ann), "again, in a room whose key was deleted")
	b.expect(t, "R", rooms.EventJoined, "ann", clock.Now())
	c.expect(t, "R", rooms.EventJoined, "ann", clock.Now())

	require.True(t, c.join(t, "OTHER", bob))
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, a.users(t, "OTHER"))
	// a's next event is c's: it never heard its own Joined, and b never
	// heard its own Left.
	a.expect(t, "OTHER", rooms.EventJoined, "bob", clock.Now())
	b.expect(t, "OTHER", rooms.EventJoined, "bob", clock.Now())
}

// A crashed holder's users are gone from Users once its lease lapses, and
// the next Renew of a live holder removes its counts and announces their
// departure to every instance, its own included.
func TestPresenceCleanupAnnouncesDeparture(t *testing.T) {
	url := natstest.Server(t)
	clock := newFakeClock()
	crashed, live := newInstance(t, url, "crashed", clock), newInstance(t, url, "live", clock)
	crashed.join(t, "R", ann)
	crashed.join(t, "R", ann)
	live.expect(t, "R", rooms.EventJoined, "ann", clock.Now())
	live.join(t, "R", bob)
	crashed.expect(t, "R", rooms.EventJoined, "bob", clock.Now())
	crashed.join(t, "S", bob)
	live.expect(t, "S", rooms.EventJoined, "bob", clock.Now())

	clock.Advance(presenceTTL / 2)
	require.NoError(t, live.Renew(natsCtx(t)))
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 2}, {Name: "bob", Streams: 1}}, live.users(t, "R"), "within the lease")
	assert.Empty(t, len(live.events), "no departure yet")

	clock.Advance(presenceTTL / 2)
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, live.users(t, "R"), "the lease has lapsed")
	require.NoError(t, live.Renew(natsCtx(t)))
	got := map[string]string{}
	for range 2 {
		e := live.next(t)
		assert.Equal(t, rooms.EventLeft, e.ev.Kind)
		assert.True(t, clock.Now().Equal(e.ev.At))
		got[e.room] = e.ev.User
	}
	assert.Equal(t, map[string]string{"R": "ann", "S": "bob"}, got, "bob is still in R")
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, live.users(t, "R"))
	assert.Empty(t, live.users(t, "S"))

	// The crashed holder's counts and record are gone from the buckets.
	js := natsJS(t, url)
	kv, err := js.KeyValue(natsCtx(t), "chat_presence")
	require.NoError(t, err)
	e, err := kv.Get(natsCtx(t), "R")
	require.NoError(t, err)
	assert.NotContains(t, string(e.Value()), "crashed")
	_, err = kv.Get(natsCtx(t), "S")
	assert.ErrorIs(t, err, jetstream.ErrKeyNotFound, "a room without users has no key")
	holders, err := js.KeyValue(natsCtx(t), "chat_presence_holders")
	require.NoError(t, err)
	_, err = holders.Get(natsCtx(t), "crashed")
	assert.ErrorIs(t, err, jetstream.ErrKeyNotFound)
}

// A holder whose counts were removed while its lease had lapsed (its NATS
// was unreachable) re-asserts them at its next Renew: the other instances
// list its users again at once and hear of their return.
func TestPresenceReassertsAfterCleanup(t *testing.T) {
	url := natstest.Server(t)
	clock := newFakeClock()
	x, y := newInstance(t, url, "x", clock), newInstance(t, url, "y", clock)
	x.join(t, "R", ann)
	x.join(t, "R", ann)
	y.expect(t, "R", rooms.EventJoined, "ann", clock.Now())
	x.join(t, "S", bob)
	y.expect(t, "S", rooms.EventJoined, "bob", clock.Now())
	y.join(t, "R", bob)
	x.expect(t, "R", rooms.EventJoined, "bob", clock.Now())

	clock.Advance(presenceTTL)
	require.NoError(t, y.Renew(natsCtx(t)))
	left := map[string]string{}
	for range 2 {
		e := y.next(t)
		require.Equal(t, rooms.EventLeft, e.ev.Kind)
		left[e.room] = e.ev.User
	}
	assert.Equal(t, map[string]string{"R": "ann", "S": "bob"}, left)
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, y.users(t, "R"))

	clock.Advance(time.Second)
	require.NoError(t, x.Renew(natsCtx(t)))
	joined := map[string]string{}
	for range 2 {
		e := y.next(t)
		require.Equal(t, rooms.EventJoined, e.ev.Kind)
		assert.True(t, clock.Now().Equal(e.ev.At))
		joined[e.room] = e.ev.User
	}
	assert.Equal(t, map[string]string{"R": "ann", "S": "bob"}, joined)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 2}, {Name: "bob", Streams: 1}}, y.users(t, "R"), "counted again at once")
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, y.users(t, "S"))

	assert.False(t, x.leave(t, "R", ann))
	assert.True(t, x.leave(t, "R", ann), "the re-asserted streams are x's own again")
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, y.users(t, "R"))
}

// With its NATS server down, presence fails with rooms.ErrUnavailable
// within the caller's deadline; once the server is back, the holder goes
// on with its counts intact.
func TestPresenceUnavailable(t *testing.T) {
	node := natstest.StartServer(t)
	clock := newFakeClock()
	in := newInstance(t, node.URL, "a", clock)
	in.join(t, "R", ann)

	node.Stop()
	bounded := func(call func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), 250*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := call(ctx)
		assert.ErrorIs(t, err, rooms.ErrUnavailable)
		assert.Less(t, time.Since(start), 5*time.Second)
	}
	bounded(func(ctx context.Context) error { _, err := in.Join(ctx, "R", bob, engine.JoinLimits{}); return err })
	bounded(func(ctx context.Context) error { _, err := in.Leave(ctx, "R", ann); return err })
	bounded(func(ctx context.Context) error { _, err := in.Users(ctx, "R"); return err })
	bounded(in.Renew)

	node.Start()
	clock.Advance(time.Second)
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		return in.Renew(ctx) == nil
	}, 20*time.Second, 50*time.Millisecond)
	assert.Empty(t, in.users(t, "R"), "ann's stream left while NATS was down, bob's never joined")
	assert.True(t, in.join(t, "R", bob))
	assert.Equal(t, []rooms.User{{Name: "bob", Streams: 1}}, in.users(t, "R"))
}

// A holder that renews while another removes its counts ends with its
// counts in place, whichever way the two interleave.
func TestPresenceRenewRacesCleanup(t *testing.T) {
	url := natstest.Server(t)
	clock := newFakeClock()
	open := func() *natsstore.Presence {
		p, err := natsstore.NewPresence(natsCtx(t), natsJS(t, url), natsstore.PresenceConfig{TTL: presenceTTL, Now: clock.Now})
		require.NoError(t, err)
		return p
	}
	x, y := open().Holder("x"), open().Holder("y")
	roomCodes := []string{"R1", "R2", "R3"}
	want := []rooms.User{}
	for i, name := range []string{"ann", "bob", "cid"} {
		m := rooms.Member{ID: name, Name: name}
		for _, room := range roomCodes {
			for range i + 1 {
				_, err := x.Join(natsCtx(t), room, m, engine.JoinLimits{})
				require.NoError(t, err)
			}
		}
		want = append(want, rooms.User{Name: name, Streams: uint32(i + 1)})
	}
	for i := range 16 {
		clock.Advance(presenceTTL) // x's lease lapses: y's Renew may remove its counts
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, y.Renew(natsCtx(t))) })
		wg.Go(func() {
			// x renews before y looks, while y removes its counts, or after.
			time.Sleep(time.Duration(i%8) * time.Millisecond)
			assert.NoError(t, x.Renew(natsCtx(t)))
		})
		wg.Wait()
		for _, room := range roomCodes {
			us, err := y.Users(natsCtx(t), room)
			require.NoError(t, err)
			assert.Equal(t, want, us, "round %d, room %s", i, room)
		}
	}
}
