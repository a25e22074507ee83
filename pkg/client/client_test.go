package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// next returns the next event of type T, skipping others.
func next[T client.Event](t *testing.T, c *client.Client) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		ev, err := c.Receive(ctx)
		require.NoError(t, err, "waiting for %T", *new(T))
		if v, ok := ev.(T); ok {
			return v
		}
	}
}

// messages receives n messages, failing on a gap.
func messages(t *testing.T, c *client.Client, n int) []*client.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*client.Message
	for len(out) < n {
		ev, err := c.Receive(ctx)
		require.NoError(t, err, "after %d of %d messages", len(out), n)
		switch v := ev.(type) {
		case *client.Message:
			out = append(out, v)
		case *client.Gap:
			t.Fatalf("unexpected gap after %d messages: %+v", len(out), v)
		}
	}
	return out
}

// room makes alice create a room and both clients join it.
func room(t *testing.T, alice, bob *client.Client) string {
	t.Helper()
	ctx := testCtx(t)
	code, err := alice.CreateChatRoom(ctx, "general", "room-pw")
	require.NoError(t, err)
	_, err = alice.JoinChatRoom(ctx, code, "room-pw")
	require.NoError(t, err)
	_, err = bob.JoinChatRoom(ctx, code, "room-pw")
	require.NoError(t, err)
	assert.Equal(t, "bob", next[*client.Presence](t, alice).User)
	return code
}

func TestWrongOrder(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	ctx := testCtx(t)

	_, err := c.CreateChatRoom(ctx, "r", "pw")
	assert.ErrorIs(t, err, client.ErrNotLoggedIn)
	_, err = c.JoinChatRoom(ctx, "ROOM1", "pw")
	assert.ErrorIs(t, err, client.ErrNotLoggedIn)
	_, err = c.Send(ctx, "hi")
	assert.ErrorIs(t, err, client.ErrNotJoined)
	_, err = c.Receive(ctx)
	assert.ErrorIs(t, err, client.ErrNotJoined)
	_, err = c.ListChatRoomUsers(ctx)
	assert.ErrorIs(t, err, client.ErrNotJoined)
	assert.ErrorIs(t, c.Disconnect(ctx), client.ErrNotJoined)

	require.NoError(t, c.Close())
	_, err = c.Send(ctx, "hi")
	assert.ErrorIs(t, err, client.ErrClosed)
	assert.NoError(t, c.Close(), "Close twice")
}

func TestAccountErrors(t *testing.T) {
	e := newEnv(t)
	c := e.newClient()
	ctx := testCtx(t)
	_, err := c.CreateAccount(ctx, "alice", "pw")
	require.NoError(t, err)

	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"name taken", func() error { _, err := c.CreateAccount(ctx, "ALICE", "x"); return err }, client.ErrAlreadyTaken},
		{"empty password", func() error { _, err := c.CreateAccount(ctx, "bob", ""); return err }, client.ErrInvalidArgument},
		{"bad password", func() error { _, err := c.LogIn(ctx, "alice", "nope"); return err }, client.ErrUnauthenticated},
		{"throttled", func() error { _, err := c.LogIn(ctx, "throttled", "x"); return err }, client.ErrRateLimited},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.ErrorIs(t, err, tt.want)
			var ce *client.Error
			require.ErrorAs(t, err, &ce)
			assert.NotEmpty(t, ce.Message, "the service's message is kept")
		})
	}
	d, ok := client.RetryAfter(tests[3].call())
	assert.True(t, ok)
	assert.Equal(t, 7*time.Second, d)
}

func TestHTTPStatusMapping(t *testing.T) {
	tests := []struct {
		status int
		want   error
		msg    string
	}{
		{http.StatusBadRequest, client.ErrInvalidArgument, "because"},
		{http.StatusUnauthorized, client.ErrUnauthenticated, "because"},
		{http.StatusConflict, client.ErrAlreadyTaken, "because"},
		{http.StatusRequestEntityTooLarge, client.ErrInvalidArgument, "because"},
		{http.StatusUnsupportedMediaType, client.ErrInvalidArgument, "because"},
		{http.StatusTooManyRequests, client.ErrRateLimited, "because"},
		{http.StatusServiceUnavailable, client.ErrUnavailable, "because"},
		{http.StatusInternalServerError, client.ErrServer, "because"},
		// No auth endpoint is ever missing: a 404 is a wrong auth URL, and
		// must not read as a missing room.
		{http.StatusNotFound, client.ErrServer, "check the auth URL"},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(tt.status)
				_, _ = w.Write([]byte(`{"error":"because"}`))
			}))
			defer srv.Close()
			c, err := client.New(client.WithAuthURL(srv.URL))
			require.NoError(t, err)
			defer c.Close()
			_, err = c.LogIn(testCtx(t), "a", "b")
			assert.ErrorIs(t, err, tt.want)
			assert.NotErrorIs(t, err, client.ErrNotFound)
			assert.ErrorContains(t, err, tt.msg)
		})
	}
}

func TestNewRejectsBadAuthURL(t *testing.T) {
	for _, u := range []string{"localhost:8080", "ftp://host", "http://", "://x", "https://bob:hunter2-secret@auth.example"} {
		_, err := client.New(client.WithAuthURL(u))
		assert.ErrorIs(t, err, client.ErrInvalidArgument, u)
		assert.NotContains(t, err.Error(), "hunter2", "a password in the URL is never shown")
	}
}

// A service asking for an absurd delay cannot stall the client for longer
// than MaxRetryAfter.
func TestRetryAfterIsCapped(t *testing.T) {
	far := time.Now().AddDate(80, 0, 0).UTC().Format(http.TimeFormat) // the HTTP-date form
	for _, header := range []string{"86400", "99999999999999999", far} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Retry-After", header)
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = w.Write([]byte(`{"error":"slow down"}`))
		}))
		c, err := client.New(client.WithAuthURL(srv.URL))
		require.NoError(t, err)
		_, err = c.LogIn(testCtx(t), "alice", "password1")
		d, ok := client.RetryAfter(err)
		assert.True(t, ok, header)
		assert.Equal(t, client.MaxRetryAfter, d, "Retry-After %s, which could overflow a Duration or stall for years unchecked", header)
		c.Close()
		srv.Close()
	}
}

func TestChatErrors(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	ctx := testCtx(t)
	code, err := alice.CreateChatRoom(ctx, "general", "room-pw")
	require.NoError(t, err)

	_, err = bob.JoinChatRoom(ctx, code, "wrong")
	assert.ErrorIs(t, err, client.ErrPermissionDenied)
	_, err = bob.JoinChatRoom(ctx, "NOPE", "x")
	assert.ErrorIs(t, err, client.ErrNotFound)
	_, err = alice.CreateChatRoom(ctx, "", "pw")
	assert.ErrorIs(t, err, client.ErrInvalidArgument)
	assert.ErrorIs(t, bob.DeleteChatRoom(ctx, code), client.ErrPermissionDenied)
	var ce *client.Error
	require.ErrorAs(t, bob.DeleteChatRoom(ctx, code), &ce)
	assert.Equal(t, codes.PermissionDenied, ce.Code)
}

func TestChatBothWays(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	code := room(t, alice, bob)
	ctx := testCtx(t)

	id, err := alice.Send(ctx, "hi bob")
	require.NoError(t, err)
	first := messages(t, bob, 1)[0]
	_, err = bob.Send(ctx, "hi alice")
	require.NoError(t, err)
	second := messages(t, bob, 1)[0]
	assert.Equal(t, "alice", first.Sender)
	assert.Equal(t, "hi bob", first.Body)
	assert.Equal(t, id, first.ClientMessageID)
	assert.False(t, first.SentAt.IsZero())
	assert.Equal(t, "bob", second.Sender)
	assert.Equal(t, first.Sequence+1, second.Sequence)
	assert.Equal(t, []*client.Message{first, second}, messages(t, alice, 2))

	users, err := bob.ListChatRoomUsers(ctx)
	require.NoError(t, err)
	assert.ElementsMatch(t, []client.User{{Name: "alice", Streams: 1}, {Name: "bob", Streams: 1}}, users)
	carol := e.loggedIn("carol")
	peek, err := carol.PeekChatRoomUsers(ctx, code, "room-pw")
	require.NoError(t, err)
	assert.Len(t, peek, 2, "peeking does not join")

	require.NoError(t, bob.Disconnect(ctx))
	left := next[*client.Presence](t, alice)
	assert.Equal(t, client.Left, left.Kind)
	assert.Equal(t, "bob", left.User)
}

func TestDisconnectUnblocksReceive(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)

	errc := make(chan error, 2)
	for range 2 {
		go func() { // returns when Disconnect ends the session
			_, err := bob.Receive(context.Background())
			errc <- err
		}()
	}
	waitBlocked(t, "client.(*session).receive", 2)
	require.NoError(t, bob.Disconnect(testCtx(t)))
	for range 2 {
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, client.ErrDisconnected)
		case <-time.After(5 * time.Second):
			t.Fatal("Receive still blocked after Disconnect")
		}
	}
	_, err := bob.Send(testCtx(t), "x")
	assert.ErrorIs(t, err, client.ErrNotJoined)
	// Joining again after Disconnect works.
	_, err = bob.JoinChatRoom(testCtx(t), "ROOM1", "room-pw")
	require.NoError(t, err)
}

// TestResumeWithoutLoss breaks bob's stream repeatedly, in both ways the
// service does (Unavailable, and ResourceExhausted for a slow consumer),
// while alice sends: bob must get every message once, in order.
func TestResumeWithoutLoss(t *testing.T) {
	for _, tc := range []struct {
		name string
		code codes.Code
	}{{"unavailable", codes.Unavailable}, {"slow consumer", codes.ResourceExhausted}, {"transport", codes.Internal}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			alice := e.loggedIn("alice")
			bob := e.loggedIn("bob")
			room(t, alice, bob)
			ctx := testCtx(t)
			const n = 60
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // sends n messages, breaking streams now and then
				defer wg.Done()
				for i := range n {
					if _, err := alice.Send(ctx, fmt.Sprint(i)); err != nil {
						t.Errorf("send %d: %v", i, err)
						return
					}
					if i%10 == 5 {
						e.chat.killStreams(status.Error(tc.code, "broken on purpose"))
					}
				}
			}()
			got := messages(t, bob, n)
			wg.Wait()
			for i, m := range got {
				assert.Equal(t, fmt.Sprint(i), m.Body)
				assert.Equal(t, uint64(i+1), m.Sequence)
			}
		})
	}
}

func TestRestartGivesGap(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	_, err := alice.Send(ctx, "before")
	require.NoError(t, err)
	assert.Equal(t, "before", messages(t, bob, 1)[0].Body)

	e.chat.restart("epoch-2")
	rc := next[*client.Connection](t, bob)
	assert.Equal(t, client.Reconnecting, rc.State)
	assert.ErrorIs(t, rc.Err, client.ErrUnavailable)
	cn := next[*client.Connection](t, bob)
	assert.Equal(t, client.Connected, cn.State)
	gap := next[*client.Gap](t, bob)
	assert.Equal(t, "epoch-1", gap.PreviousEpoch)
	assert.Equal(t, uint64(1), gap.AfterSequence)
	assert.Equal(t, "epoch-2", gap.Epoch)

	// Alice's Send waits for her own reconnection rather than failing.
	_, err = alice.Send(ctx, "after")
	require.NoError(t, err)
	m := messages(t, bob, 1)[0]
	assert.Equal(t, "after", m.Body)
	assert.Equal(t, "epoch-2", m.Epoch)
	assert.Equal(t, uint64(1), m.Sequence, "a new epoch starts over")
}

// After a restart that lost history, what others sent in the new epoch
// before the client reconnected follows its Gap: nothing the service
// still holds is lost.
func TestGapThenNewEpochReplay(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob", client.WithOpenTimeout(200*time.Millisecond))
	room(t, alice, bob)
	_, err := alice.Send(testCtx(t), "before")
	require.NoError(t, err)
	assert.Equal(t, "before", messages(t, bob, 1)[0].Body)

	// Bob's reconnections stall while the room talks in the new epoch.
	e.chat.set(func(f *fakeChat) { f.stall = true })
	e.chat.restart("epoch-2")
	e.chat.set(func(f *fakeChat) {
		for _, r := range f.rooms {
			r.history = append(r.history, &chatv1.Message{Sequence: 1, Epoch: "epoch-2", Sender: "carol", Body: "while bob was away"})
		}
		f.stall = false
	})
	gap := next[*client.Gap](t, bob)
	assert.Equal(t, "epoch-1", gap.PreviousEpoch)
	assert.Equal(t, "epoch-2", gap.Epoch)
	m := messages(t, bob, 1)[0]
	assert.Equal(t, "while bob was away", m.Body)
	assert.Equal(t, uint64(1), m.Sequence)

	_, err = alice.Send(testCtx(t), "after")
	require.NoError(t, err)
	m = messages(t, bob, 1)[0]
	assert.Equal(t, "after", m.Body)
	assert.Equal(t, uint64(2), m.Sequence, "no gap or repeat after the replay")
}

func TestRoomTokenRenewed(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	joins := e.chat.joinCount()
	e.chat.killStreams(status.Error(codes.Unauthenticated, "room token expired"))
	next[*client.Connection](t, bob) // Connected again, without Reconnecting first
	assert.Greater(t, e.chat.joinCount(), joins, "rejoined with the saved password")
	_, err := alice.Send(testCtx(t), "still here")
	require.NoError(t, err)
	assert.Equal(t, "still here", messages(t, bob, 1)[0].Body)
}

func TestUserTokenExpiredEndsSession(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.chat.setRefuseJoins(true)
	e.chat.killStreams(status.Error(codes.Unauthenticated, "room token expired"))
	ctx := testCtx(t)
	for {
		_, err := bob.Receive(ctx)
		if err != nil {
			assert.ErrorIs(t, err, client.ErrUnauthenticated)
			break
		}
	}
	_, err := bob.Send(ctx, "x")
	assert.ErrorIs(t, err, client.ErrUnauthenticated)
}

func TestRoomDeleted(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	code := room(t, alice, bob)
	ctx := testCtx(t)
	require.NoError(t, alice.DeleteChatRoom(ctx, code))
	next[*client.RoomDeleted](t, bob)
	_, err := bob.Receive(ctx)
	assert.ErrorIs(t, err, client.ErrRoomDeleted)
	assert.ErrorIs(t, err, client.ErrNotFound)
	// The ended session does not block a new join.
	_, err = bob.JoinChatRoom(ctx, code, "room-pw")
	assert.ErrorIs(t, err, client.ErrNotFound)
}

func TestConcurrentSendReceive(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	const senders, each = 4, 10
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() { // sends its share, then exits
			defer wg.Done()
			for i := range each {
				_, err := alice.Send(ctx, fmt.Sprintf("%d-%d", s, i))
				assert.NoError(t, err)
			}
		}()
	}
	got := messages(t, bob, senders*each)
	wg.Wait()
	seen := map[string]bool{}
	for _, m := range got {
		assert.False(t, seen[m.Body], "duplicate %s", m.Body)
		seen[m.Body] = true
	}
	// Disconnect racing a Close from another goroutine never panics.
	done := make(chan struct{})
	go func() { // exits after Close
		defer close(done)
		_ = bob.Close()
	}()
	err := bob.Disconnect(ctx)
	if err != nil {
		assert.True(t, errors.Is(err, client.ErrNotJoined), err)
	}
	<-done
}

func TestUseToken(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	creds, err := alice.Credentials()
	require.NoError(t, err)

	other := e.newClient()
	got, err := other.UseToken(creds.Token)
	require.NoError(t, err)
	assert.Equal(t, "alice", got.UserName)
	assert.WithinDuration(t, creds.ExpiresAt, got.ExpiresAt, time.Second)
	_, err = other.CreateChatRoom(testCtx(t), "mine", "pw")
	require.NoError(t, err)
	_, err = other.UseToken("not-a-jwt")
	assert.ErrorIs(t, err, client.ErrUnauthenticated)
}

// waitBlocked waits until n goroutines are blocked in fn, read from the
// goroutine dump: it is the condition itself, not a guess at how long it
// takes.
func waitBlocked(t *testing.T, fn string, n int) {
	t.Helper()
	buf := make([]byte, 1<<20)
	deadline := time.Now().Add(5 * time.Second)
	for {
		dump := string(buf[:runtime.Stack(buf, true)])
		blocked := 0
		for _, g := range strings.Split(dump, "\n\n") {
			if strings.Contains(g, fn) && strings.Contains(strings.SplitN(g, "\n", 2)[0], "[select") {
				blocked++
			}
		}
		if blocked >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutine(s) blocked in %s, want %d", blocked, fn, n)
		}
		runtime.Gosched()
	}
}

func TestSendValidatesLocally(t *testing.T) {
	tests := []struct {
		name       string
		serverMax  int // advertised in Opened, 0 for a service that does not
		opts       []client.Option
		tooLong    string
		longEnough string
	}{
		{"option", 0, []client.Option{client.WithMaxMessageBytes(8)}, "123456789", "12345678"},
		{"service's limit", 16, nil, strings.Repeat("x", 17), strings.Repeat("x", 16)},
		{"option caps the service's", 16, []client.Option{client.WithMaxMessageBytes(8)}, "123456789", "12345678"},
		{"default without either", 0, nil, strings.Repeat("x", client.DefaultMaxMessageBytes+1), strings.Repeat("x", client.DefaultMaxMessageBytes)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.chat.set(func(f *fakeChat) { f.maxBody = tt.serverMax })
			alice := e.loggedIn("alice", tt.opts...)
			bob := e.loggedIn("bob")
			room(t, alice, bob)
			ctx := testCtx(t)
			for _, body := range []string{"", tt.tooLong, "\xff"} {
				_, err := alice.Send(ctx, body)
				assert.ErrorIs(t, err, client.ErrInvalidArgument, "%.20q", body)
			}
			_, err := alice.Send(ctx, tt.longEnough)
			require.NoError(t, err)
			assert.Equal(t, tt.longEnough, messages(t, bob, 1)[0].Body, "the refused bodies were never sent")
		})
	}
}

// A message the service refuses ends the stream. The Client reports that
// message, and only it, as failed; the messages sent after it on the same
// stream are sent again, in order.
func TestRefusedMessageDropsOnlyItself(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	// Hold the service's reads so that every message is written to the
	// stream the refusal ends.
	resume := e.chat.pauseReads()
	var poisonID string
	for _, body := range []string{"before", "poison", "after 1", "after 2"} {
		id, err := alice.Send(ctx, body)
		require.NoError(t, err)
		if body == "poison" {
			poisonID = id
		}
	}
	resume()
	failed := next[*client.SendFailed](t, alice)
	assert.Equal(t, poisonID, failed.ClientMessageID)
	assert.Equal(t, "poison", failed.Body)
	assert.ErrorIs(t, failed.Err, client.ErrInvalidArgument)
	_, err := alice.Send(ctx, "later")
	require.NoError(t, err)
	var bodies []string
	for _, m := range messages(t, bob, 4) {
		bodies = append(bodies, m.Body)
	}
	assert.Equal(t, []string{"before", "after 1", "after 2", "later"}, bodies)
}

// Client message IDs belong to their sender: another client of the same
// user (or another SDK, or a message older than the service's history) may
// reuse one. The Client tells messages apart by their place in the room.
func TestSameClientIDDelivered(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	code := room(t, alice, bob)
	e.chat.post(e.chat.rooms[code], "alice", &chatv1.Send{ClientMessageId: "1", Body: "from the phone"})
	e.chat.post(e.chat.rooms[code], "alice", &chatv1.Send{ClientMessageId: "1", Body: "from the laptop"})
	e.chat.post(e.chat.rooms[code], "carol", &chatv1.Send{ClientMessageId: "1", Body: "from carol"})
	got := messages(t, bob, 3)
	assert.Equal(t, "from the phone", got[0].Body)
	assert.Equal(t, "from the laptop", got[1].Body)
	assert.Equal(t, "from carol", got[2].Body)
}

// The IDs Send generates are 128-bit random hex, unique per message.
func TestMessageIDsUnique(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	seen := map[string]bool{}
	for range 50 {
		id, err := alice.Send(testCtx(t), "x")
		require.NoError(t, err)
		assert.Regexp(t, `^[0-9a-f]{32}$`, id)
		assert.False(t, seen[id], "repeated ID %s", id)
		seen[id] = true
	}
}

// A service that accepts the stream and never answers does not wedge the
// session: each attempt has its own deadline, after which the Client backs
// off and tries again.
func TestReconnectAttemptTimesOut(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob", client.WithOpenTimeout(200*time.Millisecond))
	room(t, alice, bob)
	e.chat.set(func(f *fakeChat) { f.stall = true })
	e.chat.killStreams(status.Error(codes.Unavailable, "restarting"), "bob")
	first := next[*client.Connection](t, bob)
	require.Equal(t, client.Reconnecting, first.State)
	assert.Equal(t, 0, first.Attempt)
	second := next[*client.Connection](t, bob)
	require.Equal(t, client.Reconnecting, second.State, "the stalled attempt gave up")
	assert.Equal(t, 1, second.Attempt)
	assert.ErrorIs(t, second.Err, client.ErrUnavailable)
	e.chat.set(func(f *fakeChat) { f.stall = false })
	for next[*client.Connection](t, bob).State != client.Connected {
	}
	_, err := alice.Send(testCtx(t), "back")
	require.NoError(t, err)
	assert.Equal(t, "back", messages(t, bob, 1)[0].Body)
}

func TestJoinAttemptTimesOut(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice", client.WithOpenTimeout(100*time.Millisecond))
	code, err := alice.CreateChatRoom(testCtx(t), "general", "room-pw")
	require.NoError(t, err)
	e.chat.set(func(f *fakeChat) { f.stall = true })
	_, err = alice.JoinChatRoom(testCtx(t), code, "room-pw")
	assert.ErrorIs(t, err, client.ErrUnavailable)
}

// After a gap in the same epoch the Client cannot tell which of its
// messages the service recorded: it sends them all again (the service
// ignores repeats) and names them in the Gap rather than dropping them.
func TestGapResendsUnconfirmed(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	_, err := alice.Send(ctx, "recorded")
	require.NoError(t, err)
	assert.Equal(t, "recorded", messages(t, bob, 1)[0].Body)
	assert.Equal(t, "recorded", messages(t, alice, 1)[0].Body)

	e.chat.set(func(f *fakeChat) { f.dropSends = true })
	id, err := alice.Send(ctx, "lost in transit")
	require.NoError(t, err)
	e.chat.killStreams(status.Error(codes.Unavailable, "network"), "alice")
	e.chat.set(func(f *fakeChat) { f.dropSends, f.failResume = false, true })
	gap := next[*client.Gap](t, alice)
	assert.Equal(t, gap.PreviousEpoch, gap.Epoch)
	assert.Equal(t, []string{id}, gap.Unconfirmed)

	_, err = alice.Send(ctx, "marker")
	require.NoError(t, err)
	var bodies []string
	for _, m := range messages(t, bob, 2) {
		bodies = append(bodies, m.Body)
	}
	assert.Equal(t, []string{"lost in transit", "marker"}, bodies)
}

// Send returns once the stream's writer has the message, whatever its
// context does afterwards: a Send that failed must mean a message that is
// never delivered.
func TestSendErrorMeansNotSent(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	resume := e.chat.pauseReads()
	body := strings.Repeat("x", 4000)
	var sent []string
	var refused string
	// The service reads nothing: its flow-control window fills, the writer
	// blocks, and a Send finally finds no writer to take its message.
	for i := 0; refused == ""; i++ {
		require.Less(t, i, 1000, "flow control never blocked the writer")
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		b := fmt.Sprintf("%d %s", i, body)
		_, err := alice.Send(ctx, b)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.Contains(t, err.Error(), "waiting for the chat service to take the messages sent before it")
			refused = b
		} else {
			sent = append(sent, b)
		}
	}
	resume()
	_, err := alice.Send(testCtx(t), "last")
	require.NoError(t, err)
	var got []string
	for _, m := range messages(t, bob, len(sent)+1) {
		got = append(got, m.Body)
	}
	assert.Equal(t, append(sent, "last"), got, "every Send that returned nil was delivered, the one that failed was not")
}

func TestSlowConsumerIsNotRateLimited(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	e.chat.killStreams(status.Error(codes.ResourceExhausted, "stream too slow"), "bob")
	rc := next[*client.Connection](t, bob)
	assert.ErrorIs(t, rc.Err, client.ErrSlowConsumer)
	assert.NotErrorIs(t, rc.Err, client.ErrRateLimited)
}

// A room token is renewed shortly before it expires, not on every use:
// a short-lived one (here 30s) would otherwise be renewed all the time.
func TestShortRoomTokenNotRenewedOnEveryUse(t *testing.T) {
	e := newEnv(t)
	e.chat.set(func(f *fakeChat) { f.roomTTL = 30 * time.Second })
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	joins := e.chat.joinCount()
	_, err := bob.ListChatRoomUsers(testCtx(t))
	require.NoError(t, err)
	assert.Equal(t, joins, e.chat.joinCount())
}

// Close while JoinChatRoom waits for the stream makes it return ErrClosed,
// not the closing connection's cancellation.
func TestCloseDuringJoin(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	code, err := alice.CreateChatRoom(testCtx(t), "general", "room-pw")
	require.NoError(t, err)
	stalled := make(chan struct{}, 1)
	e.chat.set(func(f *fakeChat) { f.stall, f.stalled = true, stalled })
	errc := make(chan error, 1)
	go func() { // returns when Close ends the join
		_, err := alice.JoinChatRoom(testCtx(t), code, "room-pw")
		errc <- err
	}()
	<-stalled
	require.NoError(t, alice.Close())
	assert.ErrorIs(t, <-errc, client.ErrClosed)
}

func TestClosedClientMakesNoCalls(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusTeapot)
	}))
	defer srv.Close()
	c, err := client.New(client.WithAuthURL(srv.URL))
	require.NoError(t, err)
	require.NoError(t, c.Close())
	ctx := testCtx(t)
	_, err = c.CreateAccount(ctx, "alice", "password")
	assert.ErrorIs(t, err, client.ErrClosed)
	_, err = c.LogIn(ctx, "alice", "password")
	assert.ErrorIs(t, err, client.ErrClosed)
	assert.Zero(t, calls.Load())
}

func TestZeroValueClient(t *testing.T) {
	var c client.Client
	ctx := testCtx(t)
	calls := map[string]func() error{
		"CreateAccount":     func() error { _, err := c.CreateAccount(ctx, "a", "b"); return err },
		"LogIn":             func() error { _, err := c.LogIn(ctx, "a", "b"); return err },
		"UseToken":          func() error { _, err := c.UseToken("x.y.z"); return err },
		"CreateChatRoom":    func() error { _, err := c.CreateChatRoom(ctx, "a", "b"); return err },
		"DeleteChatRoom":    func() error { return c.DeleteChatRoom(ctx, "a") },
		"JoinChatRoom":      func() error { _, err := c.JoinChatRoom(ctx, "a", "b"); return err },
		"JoinRoom":          func() error { _, err := c.JoinRoom(ctx, "a", "b"); return err },
		"PeekChatRoomUsers": func() error { _, err := c.PeekChatRoomUsers(ctx, "a", "b"); return err },
		"ListChatRoomUsers": func() error { _, err := c.ListChatRoomUsers(ctx); return err },
		"Send":              func() error { _, err := c.Send(ctx, "hi"); return err },
		"Receive":           func() error { _, err := c.Receive(ctx); return err },
		"Disconnect":        func() error { return c.Disconnect(ctx) },
		"Close":             c.Close,
	}
	for name, call := range calls {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, call(), client.ErrNotCreated)
		})
	}
}
