package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
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
	}{
		{http.StatusBadRequest, client.ErrInvalidArgument},
		{http.StatusUnauthorized, client.ErrUnauthenticated},
		{http.StatusConflict, client.ErrAlreadyTaken},
		{http.StatusRequestEntityTooLarge, client.ErrInvalidArgument},
		{http.StatusUnsupportedMediaType, client.ErrInvalidArgument},
		{http.StatusTooManyRequests, client.ErrRateLimited},
		{http.StatusServiceUnavailable, client.ErrUnavailable},
		{http.StatusInternalServerError, client.ErrServer},
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
			assert.ErrorContains(t, err, "because")
		})
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
	time.Sleep(20 * time.Millisecond)
	start := time.Now()
	require.NoError(t, bob.Disconnect(testCtx(t)))
	for range 2 {
		select {
		case err := <-errc:
			assert.ErrorIs(t, err, client.ErrDisconnected)
		case <-time.After(2 * time.Second):
			t.Fatal("Receive still blocked after Disconnect")
		}
	}
	assert.Less(t, time.Since(start), time.Second)
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

func TestSlowConsumerResumes(t *testing.T) {
	e := newEnv(t)
	e.chat.setQueue(4)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob", client.WithEventBuffer(2))
	room(t, alice, bob)
	ctx := testCtx(t)
	const n = 40
	for i := range n {
		_, err := alice.Send(ctx, fmt.Sprint(i))
		require.NoError(t, err)
	}
	// bob has not read anything: the service dropped him as too slow, and
	// he resumes as he reads.
	got := messages(t, bob, n)
	for i, m := range got {
		assert.Equal(t, fmt.Sprint(i), m.Body)
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

func TestSendValidatesLocally(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice", client.WithMaxMessageBytes(8))
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	for _, body := range []string{"", "123456789", "\xff"} {
		_, err := alice.Send(ctx, body)
		assert.ErrorIs(t, err, client.ErrInvalidArgument, "%q", body)
	}
}

// A message the service refuses ends the stream; the Client reconnects and
// does not send it again.
func TestRefusedMessageNotResent(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	room(t, alice, bob)
	ctx := testCtx(t)
	_, err := alice.Send(ctx, "poison")
	require.NoError(t, err)
	rc := next[*client.Connection](t, alice)
	assert.ErrorIs(t, rc.Err, client.ErrInvalidArgument)
	_, err = alice.Send(ctx, "fine")
	require.NoError(t, err)
	got := messages(t, bob, 1)
	assert.Equal(t, "fine", got[0].Body)
}

// A message recorded twice (sent again after a reconnection although the
// service had recorded it late) is delivered once.
func TestRepeatDropped(t *testing.T) {
	e := newEnv(t)
	alice := e.loggedIn("alice")
	bob := e.loggedIn("bob")
	code := room(t, alice, bob)
	e.chat.post(e.chat.rooms[code], "alice", &chatv1.Send{ClientMessageId: "same", Body: "once"})
	e.chat.post(e.chat.rooms[code], "alice", &chatv1.Send{ClientMessageId: "same", Body: "once"})
	e.chat.post(e.chat.rooms[code], "alice", &chatv1.Send{ClientMessageId: "other", Body: "next"})
	got := messages(t, bob, 2)
	assert.Equal(t, "once", got[0].Body)
	assert.Equal(t, "next", got[1].Body)
	assert.Equal(t, uint64(3), got[1].Sequence)
}
