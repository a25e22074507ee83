package api

import (
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The bucket lets Burst frames through back to back, then one per
// 1/Rate, and gives back what an idle period earns, never more than Burst.
func TestBucket(t *testing.T) {
	ms := int64(time.Millisecond)
	p := newPacing(SendLimit{Rate: 100, Burst: 3}) // a token every 10 ms
	require.Equal(t, 10*ms, p.every)
	var b bucket
	now := 1000 * ms
	for i := range 3 {
		assert.Zero(t, b.take(p, now), "burst frame %d", i)
	}
	assert.Equal(t, 10*time.Millisecond, b.take(p, now), "past the burst: the next token")
	assert.Equal(t, 20*time.Millisecond, b.take(p, now), "one reserved already: the one after")
	assert.Equal(t, 50*time.Millisecond, b.fullIn(now), "five tokens owed")

	now += 50 * ms // everything owed is back
	assert.Zero(t, b.fullIn(now))
	now += time.Hour.Nanoseconds() // a long idle time earns no more than the burst
	for range 3 {
		assert.Zero(t, b.take(p, now))
	}
	assert.Equal(t, 10*time.Millisecond, b.take(p, now))

	var off bucket
	for range 1000 {
		assert.Zero(t, off.take(newPacing(SendLimit{}), now), "no limit")
	}
	assert.Zero(t, off.fullIn(now))
}

func TestSendLimitValidated(t *testing.T) {
	for _, l := range []SendLimit{{Rate: -1, Burst: 1}, {Rate: 1, Burst: 0}, {Rate: math.NaN(), Burst: 1},
		{Rate: math.Inf(1), Burst: 1}, {Rate: 1e-9, Burst: 1}, {Rate: 1, Burst: 1 << 30}} {
		_, err := newFlow(Config{Now: time.Now, SendLimit: l})
		assert.Error(t, err, "%+v", l)
		_, err = newFlow(Config{Now: time.Now, UserSendLimit: l})
		assert.Error(t, err, "%+v", l)
	}
	_, err := newFlow(Config{Now: time.Now, SendLimit: SendLimit{Rate: 0.5, Burst: 1}})
	assert.NoError(t, err)
}

// One member sends 1,000 messages back to back into a room of 20 members
// that keep up, on connections of their own over loopback. Paced, the
// burst fits in every queue and nobody is cut: each member, the sender
// included, receives every message in order, and the sender's stream
// ends OK after the last one. Without pacing every member was cut with
// ResourceExhausted (the queue, 256, was the room's burst limit).
func TestFastSenderCutsNobody(t *testing.T) {
	// A test-sized rate (the defaults would take 50 s): still a small
	// fraction of what these readers drain, with the default burst.
	h := newHarness(t, opts{tcp: true, send: SendLimit{Rate: 200, Burst: 50}, userSend: SendLimit{Rate: 400, Burst: 100}})
	code := h.room(h.userToken("owner", "owner"), "room", "pw")
	const members, total = 20, 1000
	streams := make([]*stream, members)
	for i := range streams {
		streams[i] = h.open(chatv1.NewChatServiceClient(h.dial()), h.member(code, fmt.Sprint("u", i), fmt.Sprint("m", i)), nil)
	}
	sender := streams[0]
	body := func(i int) string { return fmt.Sprintf("line %04d of the pasted file", i) }

	var wg sync.WaitGroup
	got := make([]int, members)
	errs := make([]error, members)
	for i, s := range streams {
		wg.Add(1)
		// Owner: the test. Exit: after the last message, or when the
		// stream fails (the test's deadline ends it).
		go func() {
			defer wg.Done()
			for got[i] < total {
				ev, err := s.recv()
				if err != nil {
					errs[i] = err
					return
				}
				m := ev.GetMessage()
				if m == nil {
					continue
				}
				if m.Body != body(got[i]) || m.ClientMessageId != fmt.Sprint(got[i]) {
					errs[i] = fmt.Errorf("message %d: got %q (%s)", got[i], m.Body, m.ClientMessageId)
					return
				}
				got[i]++
			}
		}()
	}
	for i := range total {
		require.NoError(t, sender.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{
			ClientMessageId: fmt.Sprint(i), Body: body(i),
		}}}), "send %d", i)
	}
	wg.Wait()
	for i := range streams {
		assert.NoError(t, errs[i], "member %d, after %d messages", i, got[i])
		assert.Equal(t, total, got[i], "member %d", i)
	}
	require.NoError(t, sender.c.CloseSend())
	assert.Equal(t, codes.OK, sender.end(), "the sender is never cut")
	assert.Zero(t, testutil.ToFloat64(h.srv.cfg.Metrics.SlowConsumers))
	assert.Positive(t, testutil.ToFloat64(h.srv.cfg.Metrics.SendsPaced), "the sender was paced")
}

// A user's streams share the user's bucket: two streams of one user,
// each sending back to back with no limit of their own, together take as
// long as the user's rate allows, and lose nothing.
func TestUserSendLimitSharedByStreams(t *testing.T) {
	limit := SendLimit{Rate: 100, Burst: 10}
	h := newHarness(t, opts{userSend: limit})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")
	a1, a2 := h.open(h.client, tok, nil), h.open(chatv1.NewChatServiceClient(h.dial()), tok, nil)
	watcher := h.open(h.client, h.member(code, "u2", "bob"), nil)

	const each = 60
	for i := range each {
		a1.send(fmt.Sprint("a", i), "from the first")
		a2.send(fmt.Sprint("b", i), "from the second")
	}
	first := watcher.nextMessage()
	last := first
	for range 2*each - 1 {
		last = watcher.nextMessage()
	}
	span := last.SentAt.AsTime().Sub(first.SentAt.AsTime())
	// 110 messages past the burst at 100 a second: 1.1 s if the streams
	// share the bucket, 0.5 s if each had its own.
	want := time.Duration(float64(2*each-limit.Burst) / limit.Rate * float64(time.Second))
	assert.GreaterOrEqual(t, span, want*9/10, "the streams share their user's rate")
	assert.Equal(t, uint64(2*each), last.Sequence, "nothing lost")
}

// A WebSocket stream is paced as a gRPC one: the socket is not read until
// the sender may send again, and every message arrives.
func TestWebSocketSenderPaced(t *testing.T) {
	limit := SendLimit{Rate: 200, Burst: 20}
	h := newHarness(t, opts{send: limit})
	w := h.web()
	code := h.room(h.userToken("u1", "ann"), "room", "pw")
	watcher := h.open(h.client, h.member(code, "u2", "bob"), nil)
	sender := w.open(t, &chatv1.Open{Token: h.member(code, "u3", "carol")})

	const total = 200
	for i := range total {
		sender.send(fmt.Sprint(i), fmt.Sprint("line ", i))
	}
	first := watcher.nextMessage()
	last := first
	for i := 1; i < total; i++ {
		last = watcher.nextMessage()
		require.Equal(t, fmt.Sprint("line ", i), last.Body)
	}
	span := last.SentAt.AsTime().Sub(first.SentAt.AsTime())
	want := time.Duration(float64(total-limit.Burst) / limit.Rate * float64(time.Second))
	assert.GreaterOrEqual(t, span, want*9/10, "the WebSocket sender was paced")
	for i := 0; i < total; i++ {
		require.Equal(t, fmt.Sprint("line ", i), sender.nextMessage().Body, "the sender sees its own messages")
	}
}

// A stream waiting for its sender's next token ends at once when its
// client cancels it: the wait does not outlive the stream.
func TestPaceEndsWithStream(t *testing.T) {
	h := newHarness(t, opts{send: SendLimit{Rate: 0.01, Burst: 1}}) // a token every 100 s
	code := h.room(h.userToken("u1", "ann"), "room", "pw")
	s := h.open(h.client, h.member(code, "u2", "bob"), nil)
	s.send("1", "the burst")
	require.Equal(t, "the burst", s.nextMessage().Body)
	s.send("2", "waits for the next token")
	require.Eventually(t, func() bool { return testutil.ToFloat64(h.srv.cfg.Metrics.SendsPaced) == 1 },
		10*time.Second, 10*time.Millisecond, "the reader waits")
	s.cancel()
	require.Eventually(t, func() bool { return testutil.ToFloat64(h.srv.cfg.Metrics.OpenStreams) == 0 },
		10*time.Second, 10*time.Millisecond, "the stream ended while its reader waited")
	users, err := h.eng.Users(t.Context(), code)
	require.NoError(t, err)
	assert.Empty(t, users)
}

// A stream whose client sends nothing takes no token: a user with many
// open streams still has the whole burst for the one that sends.
func TestIdleStreamsTakeNoTokens(t *testing.T) {
	h := newHarness(t, opts{userSend: SendLimit{Rate: 0.01, Burst: 2}}) // then a token every 100 s
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")
	var s *stream
	for range 5 {
		s = h.open(h.client, tok, nil)
	}
	s.send("1", "first")
	s.send("2", "second")
	assert.Equal(t, "first", s.nextMessage().Body)
	assert.Equal(t, "second", s.nextMessage().Body)
	assert.Zero(t, testutil.ToFloat64(h.srv.cfg.Metrics.SendsPaced))
}

// A user's bucket outlives the user's last stream until it is full
// again, so that leaving and coming back does not buy a fresh burst; then
// the user is forgotten.
func TestUserBucketOutlivesStreams(t *testing.T) {
	var u userStreams
	p := newPacing(SendLimit{Rate: 50, Burst: 2}) // a token every 20 ms
	c := &conn{code: "ROOM", member: rooms.Member{ID: "u1"}}
	c.user = u.add(c)
	e := c.user
	for range 3 {
		e.send.take(p, 0)
	}
	u.remove(c, 0) // 60 ms owed
	c2 := &conn{code: "ROOM", member: rooms.Member{ID: "u1"}}
	c2.user = u.add(c2)
	assert.Same(t, e, c2.user, "back within the refill: the same bucket")
	assert.Equal(t, 40*time.Millisecond, e.send.take(p, 0), "still owing")
	u.remove(c2, 0)
	require.Eventually(t, func() bool {
		u.mu.Lock()
		defer u.mu.Unlock()
		return u.users["u1"] == nil
	}, 5*time.Second, 5*time.Millisecond, "forgotten once full again")

	// A full bucket is forgotten with the last stream.
	c3 := &conn{code: "ROOM", member: rooms.Member{ID: "u2"}}
	c3.user = u.add(c3)
	u.remove(c3, 0)
	u.mu.Lock()
	defer u.mu.Unlock()
	assert.Empty(t, u.users)
}

// BenchmarkPace is the pacing's cost per frame on the hot path, with
// limits that are never reached: the stream's and its user's buckets.
func BenchmarkPace(b *testing.B) {
	unreached := SendLimit{Rate: 1e9, Burst: 1 << 20}
	fl, err := newFlow(Config{Now: time.Now, SendLimit: unreached, UserSendLimit: unreached})
	require.NoError(b, err)
	s := &Server{flow: fl}
	c := &conn{s: s, user: &userEntry{}}
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		if !c.pace(ctx) {
			b.Fatal("paced out")
		}
	}
}
