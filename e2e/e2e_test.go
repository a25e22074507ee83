package e2e

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
)

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a Client for the stack, closed at the end of the test.
func newClient(t *testing.T, s *stack, opts ...client.Option) *client.Client {
	t.Helper()
	base := []client.Option{
		client.WithAuthURL(s.authURL),
		client.WithChatAddress(s.chatAddr),
		client.WithBackoff(client.Backoff{Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond}),
	}
	c, err := client.New(append(base, opts...)...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// newUser registers and logs in a user through the SDK.
func newUser(t *testing.T, s *stack, name string, opts ...client.Option) *client.Client {
	t.Helper()
	c := newClient(t, s, opts...)
	ctx := testCtx(t, 10*time.Second)
	_, err := c.CreateAccount(ctx, name, "pw-"+name+"-long-enough")
	require.NoError(t, err)
	_, err = c.LogIn(ctx, name, "pw-"+name+"-long-enough")
	require.NoError(t, err)
	return c
}

// nextOf returns the next event of type T, skipping others.
func nextOf[T client.Event](t *testing.T, c *client.Client) T {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	for {
		ev, err := c.Receive(ctx)
		require.NoError(t, err, "waiting for %T", *new(T))
		if v, ok := ev.(T); ok {
			return v
		}
	}
}

// receiveMessages returns the next n messages and whether a gap came first.
func receiveMessages(t *testing.T, c *client.Client, n int) (msgs []*client.Message, gaps int, reconnects []*client.Connection) {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	for len(msgs) < n {
		ev, err := c.Receive(ctx)
		require.NoError(t, err, "after %d of %d messages", len(msgs), n)
		switch v := ev.(type) {
		case *client.Message:
			msgs = append(msgs, v)
		case *client.Gap:
			gaps++
		case *client.Connection:
			reconnects = append(reconnects, v)
		}
	}
	return msgs, gaps, reconnects
}

// joinedRoom has alice create a room and both join it.
func joinedRoom(t *testing.T, alice, bob *client.Client) string {
	t.Helper()
	ctx := testCtx(t, 10*time.Second)
	code, err := alice.CreateChatRoom(ctx, "general", "room-secret")
	require.NoError(t, err)
	_, err = alice.JoinChatRoom(ctx, code, "room-secret")
	require.NoError(t, err)
	room, err := bob.JoinChatRoom(ctx, strings.ToLower(code), "room-secret")
	require.NoError(t, err)
	assert.Equal(t, "general", room.Name)
	p := nextOf[*client.Presence](t, alice)
	assert.Equal(t, client.Joined, p.Kind)
	assert.Equal(t, "bob", p.User)
	return code
}

func TestChat(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			opts := stackOptions{}
			if backend == "postgres" {
				opts.databaseURL = postgresURL(t)
			}
			s := newStack(t, opts)
			alice := newUser(t, s, "alice")
			bob := newUser(t, s, "bob")
			ctx := testCtx(t, 30*time.Second)

			// The services' errors arrive as the SDK's sentinels.
			_, err := alice.CreateAccount(ctx, "ALICE", "another-password")
			assert.ErrorIs(t, err, client.ErrAlreadyTaken)
			_, err = alice.LogIn(ctx, "bob", "wrong-password")
			assert.ErrorIs(t, err, client.ErrUnauthenticated)
			_, err = alice.LogIn(ctx, "alice", "pw-alice-long-enough")
			require.NoError(t, err)

			// Repeated bad passwords are throttled, with a delay to wait.
			var loginErr error
			for range 10 {
				if _, loginErr = alice.LogIn(ctx, "mallory", "guess-guess-guess"); errors.Is(loginErr, client.ErrRateLimited) {
					break
				}
			}
			require.ErrorIs(t, loginErr, client.ErrRateLimited)
			d, ok := client.RetryAfter(loginErr)
			assert.True(t, ok && d > 0, "Retry-After given: %v", loginErr)

			code := joinedRoom(t, alice, bob)
			carol := newUser(t, s, "carol")
			_, err = carol.JoinChatRoom(ctx, code, "wrong")
			assert.ErrorIs(t, err, client.ErrPermissionDenied)
			var joinErr error
			for range 10 {
				if _, joinErr = carol.JoinChatRoom(ctx, code, "wrong"); errors.Is(joinErr, client.ErrRateLimited) {
					break
				}
			}
			require.ErrorIs(t, joinErr, client.ErrRateLimited)
			d, ok = client.RetryAfter(joinErr)
			assert.True(t, ok && d > 0, "RetryInfo given: %v", joinErr)
			_, err = bob.JoinChatRoom(ctx, code, "room-secret")
			assert.ErrorIs(t, err, client.ErrAlreadyJoined)

			// Messages both ways, in order, seen alike by both.
			const rounds = 5
			for i := range rounds {
				_, err := alice.Send(ctx, fmt.Sprintf("alice %d", i))
				require.NoError(t, err)
				_, err = bob.Send(ctx, fmt.Sprintf("bob %d", i))
				require.NoError(t, err)
			}
			atAlice, _, _ := receiveMessages(t, alice, 2*rounds)
			atBob, _, _ := receiveMessages(t, bob, 2*rounds)
			assert.Equal(t, atAlice, atBob, "both see the same messages in the same order")
			for i := 1; i < len(atBob); i++ {
				assert.Equal(t, atBob[i-1].Sequence+1, atBob[i].Sequence)
			}
			var fromAlice []string
			for _, m := range atBob {
				if m.Sender == "alice" {
					fromAlice = append(fromAlice, m.Body)
				}
			}
			assert.Equal(t, []string{"alice 0", "alice 1", "alice 2", "alice 3", "alice 4"}, fromAlice)

			users, err := alice.ListChatRoomUsers(ctx)
			require.NoError(t, err)
			assert.Equal(t, []client.User{{Name: "alice", Streams: 1}, {Name: "bob", Streams: 1}}, users)

			require.NoError(t, bob.Disconnect(ctx))
			left := nextOf[*client.Presence](t, alice)
			assert.Equal(t, client.Left, left.Kind)
			assert.Equal(t, "bob", left.User)
			users, err = alice.ListChatRoomUsers(ctx)
			require.NoError(t, err)
			assert.Equal(t, []client.User{{Name: "alice", Streams: 1}}, users)

			// Deleting the room ends alice's session.
			require.NoError(t, alice.DeleteChatRoom(ctx, code))
			nextOf[*client.RoomDeleted](t, alice)
			_, err = alice.Receive(ctx)
			assert.ErrorIs(t, err, client.ErrRoomDeleted)
			_, err = bob.JoinChatRoom(ctx, code, "room-secret")
			assert.ErrorIs(t, err, client.ErrNotFound)
		})
	}
}

// historyStores are the chat service's two places for message history:
// the database, which survives a restart, and memory, which does not.
var historyStores = []struct {
	name    string
	durable bool
}{{"database", true}, {"memory", false}}

// receiveUntil returns the messages up to the first with this body, and
// the gaps received on the way.
func receiveUntil(t *testing.T, c *client.Client, body string) (msgs []*client.Message, gaps []*client.Gap) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	for len(msgs) == 0 || msgs[len(msgs)-1].Body != body {
		ev, err := c.Receive(ctx)
		require.NoError(t, err, "waiting for %q after %d messages", body, len(msgs))
		switch v := ev.(type) {
		case *client.Message:
			msgs = append(msgs, v)
		case *client.Gap:
			gaps = append(gaps, v)
		}
	}
	return msgs, gaps
}

// TestChatRestart stops the chat service with SIGTERM and starts it again;
// bob, whose connection goes through a proxy that refuses him for a while,
// comes back after alice, who sends meanwhile. With the history
// in the database the clients resume where they were, in the same epoch,
// and bob gets alice's message from the history; with the history in
// memory both are told of a gap into a new epoch, and bob still gets every
// message of the new epoch.
func TestChatRestart(t *testing.T) {
	for _, hs := range historyStores {
		t.Run(hs.name, func(t *testing.T) {
			s := newStack(t, stackOptions{chatEnv: map[string]string{"HISTORY_STORE": hs.name}})
			px := newProxy(t, s.chatAddr)
			alice := newUser(t, s, "alice")
			bob := newUser(t, s, "bob", client.WithChatAddress(px.Addr()))
			joinedRoom(t, alice, bob)
			ctx := testCtx(t, 60*time.Second)
			_, err := alice.Send(ctx, "before")
			require.NoError(t, err)
			before, _, _ := receiveMessages(t, bob, 1)
			// alice's own copy too: a message not seen come back before a
			// restart would be sent again.
			receiveMessages(t, alice, 1)
			epoch, seq := before[0].Epoch, before[0].Sequence

			px.SetRefusing(true)
			s.restartChat(t)
			_, err = alice.Send(ctx, "while bob is away")
			require.NoError(t, err)
			atAlice, aliceGaps := receiveUntil(t, alice, "while bob is away")
			px.SetRefusing(false)
			for nextOf[*client.Connection](t, bob).State != client.Connected {
			}
			// One after the other, so that "after, from bob" comes last.
			_, err = alice.Send(ctx, "after, from alice")
			require.NoError(t, err)
			more, moreGaps := receiveUntil(t, alice, "after, from alice")
			atAlice, aliceGaps = append(atAlice, more...), append(aliceGaps, moreGaps...)
			_, err = bob.Send(ctx, "after, from bob")
			require.NoError(t, err)
			want := []string{"while bob is away", "after, from alice", "after, from bob"}
			var newEpoch string
			for _, c := range []struct {
				name string
				c    *client.Client
				msgs []*client.Message
				gaps []*client.Gap
			}{{"alice", alice, atAlice, aliceGaps}, {"bob", bob, nil, nil}} {
				msgs, gaps := receiveUntil(t, c.c, "after, from bob")
				msgs, gaps = append(c.msgs, msgs...), append(c.gaps, gaps...)
				var bodies []string
				for i, m := range msgs {
					bodies = append(bodies, m.Body)
					assert.Equal(t, msgs[0].Epoch, m.Epoch, "%s: message %d", c.name, i)
					assert.Equal(t, msgs[0].Sequence+uint64(i), m.Sequence, "%s: message %d", c.name, i)
				}
				assert.Equal(t, want, bodies, "%s gets every message sent since the restart, once, in order", c.name)
				if hs.durable {
					assert.Empty(t, gaps, c.name)
					assert.Equal(t, epoch, msgs[0].Epoch, "%s: a restart keeps the epoch", c.name)
					assert.Equal(t, seq+1, msgs[0].Sequence, "%s: and the sequences go on", c.name)
					continue
				}
				if assert.Len(t, gaps, 1, c.name) {
					assert.Equal(t, epoch, gaps[0].PreviousEpoch, c.name)
					assert.Equal(t, seq, gaps[0].AfterSequence, c.name)
					assert.NotEqual(t, epoch, gaps[0].Epoch, "%s: a restart without the history changes the epoch", c.name)
					assert.Equal(t, gaps[0].Epoch, msgs[0].Epoch, c.name)
				}
				if newEpoch == "" {
					newEpoch = msgs[0].Epoch
				}
				assert.Equal(t, newEpoch, msgs[0].Epoch, "%s: the same new epoch", c.name)
			}
			users, err := bob.ListChatRoomUsers(ctx)
			require.NoError(t, err)
			assert.Len(t, users, 2)
		})
	}
}

// TestDroppedConnectionResumes cuts bob's TCP connection while alice sends:
// bob reconnects and resumes with nothing lost and nothing twice.
func TestDroppedConnectionResumes(t *testing.T) {
	s := newStack(t, stackOptions{})
	px := newProxy(t, s.chatAddr)
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob", client.WithChatAddress(px.Addr()))
	joinedRoom(t, alice, bob)
	ctx := testCtx(t, 60*time.Second)

	const n = 30
	for i := range n {
		_, err := alice.Send(ctx, fmt.Sprint(i))
		require.NoError(t, err)
		if i%10 == 3 {
			px.Cut()
		}
	}
	msgs, gaps, reconnects := receiveMessages(t, bob, n)
	assert.Zero(t, gaps)
	assert.NotEmpty(t, reconnects, "the cut was noticed")
	for i, m := range msgs {
		assert.Equal(t, fmt.Sprint(i), m.Body)
	}
	// bob's own messages get through after a cut too.
	px.Cut()
	_, err := bob.Send(ctx, "bob is back")
	require.NoError(t, err)
	got, _, _ := receiveMessages(t, alice, n+1)
	assert.Equal(t, "bob is back", got[n].Body)
}

// TestSlowConsumerResumes makes bob's network too slow for a small server
// queue: his connection stops carrying anything while alice sends, the
// service drops his stream as too slow, and once the network is back he
// resumes without loss. (The SDK always reads its streams, buffering for
// the application, so only the network can make it fall behind.)
func TestSlowConsumerResumes(t *testing.T) {
	s := newStack(t, stackOptions{chatEnv: map[string]string{
		"MAX_MESSAGE_QUEUE_SIZE": "16",
		"HISTORY_SIZE":           "1000",
		// Alice is not slowed down (MAX_SEND_RATE): bob is the subject.
		"MAX_SEND_RATE": "1000000", "MAX_USER_SEND_RATE": "1000000",
	}})
	px := newProxy(t, s.chatAddr)
	const n = 300
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob", client.WithChatAddress(px.Addr()), client.WithEventBuffer(2*n))
	joinedRoom(t, alice, bob)
	ctx := testCtx(t, 60*time.Second)

	done := make(chan struct{})
	// Alice reads her own echoes until her session ends at Cleanup: a
	// client that sends must also receive.
	go func() {
		defer close(done)
		for {
			if _, err := alice.Receive(context.Background()); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() { _ = alice.Close(); <-done })

	// 300 messages of 3 KB are far more than bob's stream's flow-control
	// window (64 KiB) and queue (16) hold: once they are all accepted,
	// the service has dropped his stream. The freeze is shorter than the
	// keepalive (10 s + 10 s), so the connection itself survives.
	px.Freeze()
	body := strings.Repeat("x", 3000)
	for i := range n {
		_, err := alice.Send(ctx, fmt.Sprintf("%d %s", i, body))
		require.NoError(t, err)
	}
	px.Thaw()

	msgs, gaps, reconnects := receiveMessages(t, bob, n)
	assert.Zero(t, gaps)
	for i, m := range msgs {
		assert.True(t, strings.HasPrefix(m.Body, fmt.Sprintf("%d ", i)), "message %d out of order: %.12s (seq %d)", i, m.Body, m.Sequence)
	}
	var slow bool
	for _, r := range reconnects {
		slow = slow || errors.Is(r.Err, client.ErrSlowConsumer)
		assert.NotErrorIs(t, r.Err, client.ErrRateLimited, "falling behind is not a rate limit")
	}
	assert.True(t, slow, "the service dropped bob as too slow at least once (reconnects: %d)", len(reconnects))
}

// TestTokenExpiry runs with short-lived tokens. A room token that the
// service refuses is renewed by joining again, and once the user token of a
// Client given it with UseToken (which has no password to log in again
// with) has expired, the session ends with ErrUnauthenticated instead of
// retrying for ever.
//
// The Client renews a room token shortly before it expires, and the service
// tolerates 30s of clock skew (token.Leeway), so the service never refuses
// a token of a Client as expired within a test's time. To make it refuse
// one, bob's connection presents his room token once with a damaged
// signature: the service answers UNAUTHENTICATED as for an expired token.
func TestTokenExpiry(t *testing.T) {
	s := newStack(t, stackOptions{
		authEnv: map[string]string{"TOKEN_DURATION": "5s"},
		chatEnv: map[string]string{"ROOM_TOKEN_DURATION": "2s"},
	})
	px := newProxy(t, s.chatAddr)
	var (
		mu        sync.Mutex
		roomToks  []string
		stale     string // presented once on the next Chat stream
		refusedAt int    // how many room tokens had been issued then
	)
	recordJoins := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		err := invoker(ctx, method, req, reply, cc, opts...)
		if r, ok := reply.(*chatv1.JoinChatRoomResponse); ok && err == nil {
			mu.Lock()
			roomToks = append(roomToks, r.GetToken())
			mu.Unlock()
		}
		return err
	}
	presentStale := func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		mu.Lock()
		tok := stale
		stale = ""
		if tok != "" {
			refusedAt = len(roomToks)
		}
		mu.Unlock()
		if tok != "" && strings.HasSuffix(method, "/Chat") {
			md, _ := metadata.FromOutgoingContext(ctx)
			md = md.Copy()
			md.Set("authorization", "Bearer "+tok)
			ctx = metadata.NewOutgoingContext(ctx, md)
		}
		return streamer(ctx, desc, cc, method, opts...)
	}
	alice := newUser(t, s, "alice")
	creds, err := newUser(t, s, "bob").Credentials()
	require.NoError(t, err)
	bob := newClient(t, s, client.WithChatAddress(px.Addr()),
		client.WithDialOptions(grpc.WithChainUnaryInterceptor(recordJoins), grpc.WithChainStreamInterceptor(presentStale)))
	_, err = bob.UseToken(creds.Token)
	require.NoError(t, err)
	joinedRoom(t, alice, bob)
	ctx := testCtx(t, 30*time.Second)

	mu.Lock()
	require.Len(t, roomToks, 1)
	stale = roomToks[len(roomToks)-1] + "x"
	mu.Unlock()
	px.Cut()
	for nextOf[*client.Connection](t, bob).State != client.Connected {
	}
	mu.Lock()
	issued, before := len(roomToks), refusedAt
	mu.Unlock()
	assert.Greater(t, issued, before, "the refused token was renewed by joining again")
	_, err = alice.Send(ctx, "still here")
	require.NoError(t, err)
	msgs, gaps, _ := receiveMessages(t, bob, 1)
	assert.Equal(t, "still here", msgs[0].Body)
	assert.Zero(t, gaps)

	time.Sleep(time.Until(creds.ExpiresAt) + 1100*time.Millisecond)
	px.Cut()
	for {
		_, err := bob.Receive(ctx)
		if err != nil {
			assert.ErrorIs(t, err, client.ErrUnauthenticated)
			break
		}
	}
}

// TestSenderCutWhileSending cuts the sender's connection again and again
// while it sends: every message reaches the other side once, in order.
func TestSenderCutWhileSending(t *testing.T) {
	s := newStack(t, stackOptions{})
	px := newProxy(t, s.chatAddr)
	alice := newUser(t, s, "alice")
	bob := newUser(t, s, "bob", client.WithChatAddress(px.Addr()))
	joinedRoom(t, alice, bob)
	ctx := testCtx(t, 60*time.Second)

	const n = 60
	sent := make(chan error, 1)
	go func() { // bob sends n messages, cutting his connection now and then
		for i := range n {
			if _, err := bob.Send(ctx, fmt.Sprint(i)); err != nil {
				sent <- fmt.Errorf("send %d: %w", i, err)
				return
			}
			if i%10 == 4 {
				px.Cut()
			}
		}
		sent <- nil
	}()
	msgs, _, _ := receiveMessages(t, alice, n)
	require.NoError(t, <-sent)
	for i, m := range msgs {
		assert.Equal(t, fmt.Sprint(i), m.Body, "message %d", i)
		assert.Equal(t, "bob", m.Sender)
	}
	// A copy sent twice would come before this one.
	_, err := bob.Send(ctx, "end")
	require.NoError(t, err)
	last, _, _ := receiveMessages(t, alice, 1)
	assert.Equal(t, "end", last[0].Body)
}

// TestSendDuringOutage sends while the chat service is down: Send waits
// for the service to come back, and the message is delivered to both
// members, in the same epoch when the history is in the database and in
// a new one when it is in memory.
func TestSendDuringOutage(t *testing.T) {
	for _, hs := range historyStores {
		t.Run(hs.name, func(t *testing.T) {
			s := newStack(t, stackOptions{chatEnv: map[string]string{"HISTORY_STORE": hs.name}})
			alice := newUser(t, s, "alice")
			bob := newUser(t, s, "bob")
			joinedRoom(t, alice, bob)
			ctx0 := testCtx(t, 10*time.Second)
			_, err := alice.Send(ctx0, "before")
			require.NoError(t, err)
			before, _, _ := receiveMessages(t, alice, 1)
			receiveMessages(t, bob, 1)
			ctx := testCtx(t, 60*time.Second)

			s.chat.stop(t)
			rc := nextOf[*client.Connection](t, alice)
			require.Equal(t, client.Reconnecting, rc.State)
			sent := make(chan error, 1)
			go func() { // returns once the service is back
				_, err := alice.Send(ctx, "sent during the outage")
				sent <- err
			}()
			s.startChat(t)
			select {
			case err := <-sent:
				require.NoError(t, err)
			case <-ctx.Done():
				t.Fatal("Send still waiting after the service came back")
			}
			for _, c := range []*client.Client{alice, bob} {
				msgs, gaps := receiveUntil(t, c, "sent during the outage")
				assert.Len(t, msgs, 1, "only the message sent during the outage")
				if hs.durable {
					assert.Empty(t, gaps)
					assert.Equal(t, before[0].Epoch, msgs[0].Epoch, "a restart keeps the epoch")
					assert.Equal(t, before[0].Sequence+1, msgs[0].Sequence)
				} else {
					assert.Len(t, gaps, 1)
					assert.NotEqual(t, before[0].Epoch, msgs[0].Epoch, "recorded by the restarted service, in a new epoch")
				}
			}
		})
	}
}
