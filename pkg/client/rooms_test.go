package client_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// nextIn returns the room's next event of type T, skipping others.
func nextIn[T client.Event](t *testing.T, r *client.Room) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		ev, err := r.Receive(ctx)
		require.NoError(t, err, "waiting for %T in %s", *new(T), r.ShortCode)
		if v, ok := ev.(T); ok {
			return v
		}
	}
}

// bodiesIn receives n messages from the room and returns their bodies,
// failing on a gap.
func bodiesIn(t *testing.T, r *client.Room, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n {
		ev := nextIn[client.Event](t, r)
		switch v := ev.(type) {
		case *client.Message:
			out = append(out, v.Body)
		case *client.Gap:
			t.Fatalf("unexpected gap in %s after %d messages: %+v", r.ShortCode, len(out), v)
		}
	}
	return out
}

// dialCounter counts the connections a Client opens to the fakes.
func dialCounter(e *env) (client.Option, *atomic.Int32) {
	var n atomic.Int32
	return client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
		n.Add(1)
		return e.lis.DialContext(ctx)
	})), &n
}

// One Client (one login, one connection) in three rooms gets each room's
// messages on that room's handle and no other's; leaving one room leaves
// the others open and receiving.
func TestOneClientManyRooms(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	dials, dialed := dialCounter(e)
	bob := e.loggedIn("bob", dials)
	ctx := testCtx(t)

	names := []string{"general", "random", "help"}
	var codes []string
	var ars, brs []*client.Room
	for _, name := range names {
		code, err := alice.CreateChatRoom(ctx, name, "pw-"+name)
		require.NoError(t, err)
		codes = append(codes, code)
		ar, err := alice.JoinRoom(ctx, code, "pw-"+name)
		require.NoError(t, err)
		br, err := bob.JoinRoom(ctx, code, "pw-"+name)
		require.NoError(t, err)
		assert.Equal(t, name, br.Name)
		assert.Equal(t, "bob", nextIn[*client.Presence](t, ar).User)
		ars, brs = append(ars, ar), append(brs, br)
	}
	_, err := bob.JoinRoom(ctx, codes[1], "pw-random")
	assert.ErrorIs(t, err, client.ErrAlreadyJoined, "a room the Client is in already")

	// Interleaved, so that a mix-up between rooms would show.
	const each = 20
	for i := range each {
		for r, ar := range ars {
			_, err := ar.Send(ctx, fmt.Sprintf("%s %d", names[r], i))
			require.NoError(t, err)
		}
	}
	for r, br := range brs {
		var want []string
		for i := range each {
			want = append(want, fmt.Sprintf("%s %d", names[r], i))
		}
		assert.Equal(t, want, bodiesIn(t, br, each), "room %s", names[r])
		assert.Equal(t, want, bodiesIn(t, ars[r], each), "alice's own, room %s", names[r])
	}

	require.NoError(t, brs[1].Leave(ctx))
	left := nextIn[*client.Presence](t, ars[1])
	assert.Equal(t, client.Left, left.Kind)
	assert.Equal(t, "bob", left.User)
	_, err = brs[1].Receive(ctx)
	assert.ErrorIs(t, err, client.ErrDisconnected)
	_, err = brs[1].Send(ctx, "still here?")
	assert.ErrorIs(t, err, client.ErrDisconnected)
	assert.ErrorIs(t, brs[1].Leave(ctx), client.ErrNotJoined, "left already")
	assert.Equal(t, 1, e.chat.streamCount(codes[1]), "only alice's stream is left")

	for _, r := range []int{0, 2} {
		_, err := ars[r].Send(ctx, "after the leave")
		require.NoError(t, err)
		assert.Equal(t, []string{"after the leave"}, bodiesIn(t, brs[r], 1), "room %s", names[r])
		_, err = brs[r].Send(ctx, "bob still in "+names[r])
		require.NoError(t, err)
		assert.Equal(t, []string{"after the leave", "bob still in " + names[r]}, bodiesIn(t, ars[r], 2))
		users, err := brs[r].ListUsers(ctx)
		require.NoError(t, err)
		assert.ElementsMatch(t, []client.User{{Name: "alice", Streams: 1}, {Name: "bob", Streams: 1}}, users)
	}

	// The room left can be joined again, as a new session: the backlog,
	// then live messages.
	again, err := bob.JoinRoom(ctx, codes[1], "pw-random")
	require.NoError(t, err)
	require.Equal(t, each, again.Backlog)
	_, err = ars[1].Send(ctx, "welcome back")
	require.NoError(t, err)
	got := bodiesIn(t, again, each+1)
	assert.Equal(t, "random 0", got[0])
	assert.Equal(t, "welcome back", got[each])

	assert.Equal(t, int32(1), dialed.Load(), "one connection for every room")
	assert.Equal(t, 1, e.users.loginCount("bob"), "one login for every room")
}

// The single-room methods act on the room JoinChatRoom joined, beside
// rooms joined with JoinRoom; Close leaves them all.
func TestSingleRoomBesideOthers(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	ctx := testCtx(t)
	first, err := alice.CreateChatRoom(ctx, "first", "pw")
	require.NoError(t, err)
	second, err := alice.CreateChatRoom(ctx, "second", "pw")
	require.NoError(t, err)
	a1, err := alice.JoinRoom(ctx, first, "pw")
	require.NoError(t, err)
	a2, err := alice.JoinRoom(ctx, second, "pw")
	require.NoError(t, err)

	single, err := bob.JoinChatRoom(ctx, first, "pw")
	require.NoError(t, err)
	other, err := bob.JoinRoom(ctx, second, "pw")
	require.NoError(t, err)
	_, err = bob.JoinChatRoom(ctx, second, "pw")
	assert.ErrorIs(t, err, client.ErrAlreadyJoined, "JoinChatRoom's room is open")
	_, err = bob.JoinRoom(ctx, first, "pw")
	assert.ErrorIs(t, err, client.ErrAlreadyJoined, "the Client is in the room already")

	_, err = a2.Send(ctx, "in second")
	require.NoError(t, err)
	_, err = a1.Send(ctx, "in first")
	require.NoError(t, err)
	assert.Equal(t, "in first", messages(t, bob, 1)[0].Body, "Client.Receive reads JoinChatRoom's room only")
	assert.Equal(t, []string{"in second"}, bodiesIn(t, other, 1))
	_, err = single.Send(ctx, "through the handle")
	require.NoError(t, err)
	assert.Equal(t, []string{"in first", "through the handle"}, bodiesIn(t, a1, 2))

	require.NoError(t, bob.Disconnect(ctx))
	_, err = bob.Receive(ctx)
	assert.ErrorIs(t, err, client.ErrNotJoined)
	_, err = single.Receive(ctx)
	assert.ErrorIs(t, err, client.ErrDisconnected)
	_, err = a2.Send(ctx, "still open")
	require.NoError(t, err)
	assert.Equal(t, []string{"still open"}, bodiesIn(t, other, 1), "Disconnect leaves the other rooms open")

	// A pending Receive ends with Close; later calls say the Client is closed.
	errc := make(chan error, 1)
	go func() { // returns when Close ends the session
		_, err := other.Receive(context.Background())
		errc <- err
	}()
	waitBlocked(t, "client.(*session).receive", 1)
	require.NoError(t, bob.Close())
	assert.ErrorIs(t, <-errc, client.ErrDisconnected)
	_, err = other.Send(ctx, "x")
	assert.ErrorIs(t, err, client.ErrClosed)
	for p := nextIn[*client.Presence](t, a2); p.Kind != client.Left; p = nextIn[*client.Presence](t, a2) {
	}
	assert.Equal(t, 1, e.chat.streamCount(second), "Close closed bob's stream")
}

// A Room the Client did not return, such as a test's literal, has no
// session: its methods say so rather than panic.
func TestRoomNotFromClient(t *testing.T) {
	ctx := testCtx(t)
	for name, r := range map[string]*client.Room{"nil": nil, "literal": {ShortCode: "ROOM1", Name: "general"}} {
		t.Run(name, func(t *testing.T) {
			_, err := r.Send(ctx, "hi")
			assert.ErrorIs(t, err, client.ErrNotJoined)
			_, err = r.Receive(ctx)
			assert.ErrorIs(t, err, client.ErrNotJoined)
			_, err = r.ListUsers(ctx)
			assert.ErrorIs(t, err, client.ErrNotJoined)
			assert.ErrorIs(t, r.Leave(ctx), client.ErrNotJoined)
		})
	}
}

// accountFor checks that events, read until sequence n, account for every
// message from 1 to n exactly once: received, or counted in a Gap that
// the application's reading caused. It returns the messages received.
func accountFor(t *testing.T, events []client.Event, n uint64) (msgs []*client.Message, gaps []*client.Gap) {
	t.Helper()
	var last uint64
	for _, ev := range events {
		switch v := ev.(type) {
		case *client.Message:
			require.Equal(t, last+1, v.Sequence, "the message after sequence %d", last)
			last = v.Sequence
			msgs = append(msgs, v)
		case *client.Gap:
			require.NotZero(t, v.Dropped, "a gap of the service's: %+v", v)
			require.Equal(t, last, v.AfterSequence, "the gap starts after the last message read")
			require.Equal(t, uint64(v.DroppedMessages), v.HeadSequence-v.AfterSequence, "the gap counts the messages in its range: %+v", v)
			assert.False(t, v.ServiceGap)
			last = v.HeadSequence
			gaps = append(gaps, v)
		}
	}
	require.Equal(t, n, last)
	return msgs, gaps
}

// readUntil receives c's events until a message with sequence n.
func readUntil(t *testing.T, c *client.Client, n uint64) []client.Event {
	t.Helper()
	ctx := testCtx(t)
	var out []client.Event
	for {
		ev, err := c.Receive(ctx)
		require.NoError(t, err, "after %d events", len(out))
		out = append(out, ev)
		if m, ok := ev.(*client.Message); ok && m.Sequence >= n {
			return out
		}
	}
}

// A client that only sends never blocks: the Client reads the stream
// whatever the application does, and the unread events it could not keep
// are counted in a Gap. (A sender this fast can outrun the service's
// fan-out, which may then cut the stream as slow; the Client resumes it
// without loss, and Send waits for that, never for Receive.)
func TestSendOnlyNeverBlocks(t *testing.T) {
	e := newEnv(t)
	e.chat.setQueue(256) // the chat service's default MAX_MESSAGE_QUEUE_SIZE
	alice := e.loggedIn("alice")
	code, err := alice.CreateChatRoom(testCtx(t), "general", "room-pw")
	require.NoError(t, err)
	_, err = alice.JoinChatRoom(testCtx(t), code, "room-pw")
	require.NoError(t, err)

	const n = 10_000
	// A deadline only so that a stall fails rather than hangs; the sends
	// are not timed.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var lastID string
	for i := range n {
		lastID, err = alice.Send(ctx, fmt.Sprint(i))
		require.NoError(t, err, "send %d of %d", i+1, n)
	}

	msgs, gaps := accountFor(t, readUntil(t, alice, n), n)
	require.NotEmpty(t, gaps, "more was sent than a room holds unread")
	dropped := 0
	for _, g := range gaps {
		dropped += g.DroppedMessages
	}
	assert.Equal(t, n, dropped+len(msgs), "every message received or counted as dropped")
	assert.Zero(t, gaps[0].AfterSequence, "alice read nothing before the first gap")
	assert.Equal(t, lastID, msgs[len(msgs)-1].ClientMessageID, "the newest are kept")
}

// A member who does not read loses the oldest unread events, not the
// stream, and learns what was lost. The room sends far more than the
// stream's flow-control window, one message at a time once the service has
// handed the one before to bob's stream: a Client that stopped reading
// would stall that, and the service would drop it as too slow.
func TestUnreadEventsDropOldest(t *testing.T) {
	e := newEnv(t)
	e.chat.setQueue(4)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob", client.WithEventBuffer(2))
	code := room(t, alice, bob)
	ctx := testCtx(t)
	const n = 100
	body := strings.Repeat("x", 3000) // 300 kB in all, against a 64 kB window
	for i := range n {
		e.chat.say(code, "alice", fmt.Sprintf("%d %s", i+1, body))
		for !e.chat.handedOver(code, "bob", i+1) {
			require.NoError(t, ctx.Err(), "message %d never left the service's queue for bob", i+1)
			time.Sleep(time.Millisecond)
		}
	}
	assert.Len(t, e.chat.opened("bob"), 1, "bob's stream was never dropped")

	// The last messages may still be on their way to bob's Client as he
	// starts reading: the counts, not the split, are certain.
	msgs, gaps := accountFor(t, readUntil(t, bob, n), n)
	require.NotEmpty(t, gaps)
	dropped := 0
	for _, g := range gaps {
		assert.Equal(t, g.DroppedMessages, g.Dropped, "only messages were sent, so only messages were dropped")
		dropped += g.DroppedMessages
	}
	assert.Equal(t, n, dropped+len(msgs))
	for _, m := range msgs {
		assert.True(t, strings.HasPrefix(m.Body, fmt.Sprintf("%d ", m.Sequence)))
	}
}
