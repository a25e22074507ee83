package api

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/h2guard"
)

// A client that opens and resets streams in a loop, without a token,
// gets GOAWAY (ENHANCE_YOUR_CALM, "too_many_resets") once its burst is
// spent: the GOAWAY's last stream ID shows the server saw no more than
// the burst and what the refill allowed in the meantime. The streams are
// unary calls, whose handlers wait for the request: each is reset by the
// client alone.
func TestRapidResetGetsGoAway(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	c := dialH2(t, h.addr)
	stop := make(chan struct{})
	flooded := make(chan int, 1)
	start := time.Now()
	// Owner: the test. Exit: a write fails once the server closes the
	// connection, or stop.
	go func() { flooded <- c.rapidReset(headerBlock(usersPath), stop) }()
	ga, err := c.goAway()
	elapsed := time.Since(start)
	close(stop)
	_ = c.conn.Close()
	sent := <-flooded
	require.NoError(t, err, "a GOAWAY before the connection ended")

	assert.Equal(t, http2.ErrCodeEnhanceYourCalm, ga.ErrCode)
	assert.Equal(t, "too_many_resets", string(ga.DebugData()))
	seen := int(ga.LastStreamID+1) / 2 // client stream IDs are odd, from 1
	bound := resetBound(elapsed)
	t.Logf("GOAWAY after %s: the server saw %d streams (bound %d); the client had sent %d resets", elapsed, seen, bound, sent)
	assert.GreaterOrEqual(t, seen, h2guard.DefaultBurst+1, "the whole burst is allowed")
	assert.LessOrEqual(t, seen, bound)
	m := h.srv.cfg.Metrics
	assert.Equal(t, 1.0, testutil.ToFloat64(m.ResetFloods))
	byClient := testutil.ToFloat64(m.StreamResets.WithLabelValues("client"))
	assert.GreaterOrEqual(t, byClient, float64(h2guard.DefaultBurst+1))
	assert.LessOrEqual(t, byClient, float64(bound))
	assert.Zero(t, testutil.ToFloat64(m.StreamResets.WithLabelValues("server")))
}

// A client that opens Chat streams without a token and never resets one
// gets each refused, and reset by the server, at once; those resets count
// too, so it gets GOAWAY after a bounded number of handler runs. The
// server's resets count as they are written, so a few more handlers run
// than for a resetting client: those whose resets gRPC had queued (it
// stops reading at 50 queued), and the streams in the 8 KiB it had read.
func TestStreamFloodGetsGoAway(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	c := dialH2(t, h.addr)
	block := headerBlock(chatPath)
	start := time.Now()
	// Owner: the test. Exit: a write fails once the server closes the
	// connection.
	flooded := make(chan struct{})
	go func() {
		defer close(flooded)
		for {
			for range 32 {
				if _, err := c.open(block); err != nil {
					return
				}
			}
			if c.flush() != nil {
				return
			}
		}
	}()
	ga, err := c.goAway()
	elapsed := time.Since(start)
	_ = c.conn.Close()
	<-flooded
	require.NoError(t, err, "a GOAWAY before the connection ended")
	assert.Equal(t, http2.ErrCodeEnhanceYourCalm, ga.ErrCode)

	m := h.srv.cfg.Metrics
	runs := testutil.ToFloat64(m.RPCs.WithLabelValues(chatPath, "Unauthenticated"))
	bound := resetBound(elapsed) + 50 + 8<<10/(9+len(block))
	t.Logf("GOAWAY after %s: %v Chat handlers ran (bound %d)", elapsed, runs, bound)
	assert.Positive(t, runs)
	assert.LessOrEqual(t, runs, float64(bound))
	assert.Zero(t, testutil.ToFloat64(m.StreamResets.WithLabelValues("client")))
	assert.Equal(t, 1.0, testutil.ToFloat64(m.ResetFloods))
}

// usersPath is a unary method: its handler waits for the request.
const usersPath = "/grpcchatter.chat.v1.ChatService/ListChatRoomUsers"

// resetBound is the most resets a connection may make within elapsed:
// the burst, the refill, the one that spends the budget, and one for the
// difference between the client's clock and the server's start.
func resetBound(elapsed time.Duration) int {
	return h2guard.DefaultBurst + int(math.Ceil(h2guard.DefaultRate*elapsed.Seconds())) + 2
}

// attack runs rapid-reset clients against addr, one connection at a
// time, each until its GOAWAY, until stop is closed, from workers
// goroutines. It returns the number of GOAWAYs received once stopped.
func attack(addr string, workers int, stop <-chan struct{}) <-chan int {
	block := headerBlock(chatPath)
	var goAways atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		// Owner: attack. Exit: stop is closed.
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := tryDialH2(addr)
				if err != nil {
					continue
				}
				got := make(chan struct{})
				// Owner: this attacker. Exit: GOAWAY or the connection
				// ends; closing it ends the flood's writes.
				go func() {
					defer close(got)
					if ga, err := c.goAway(); err == nil && ga.ErrCode == http2.ErrCodeEnhanceYourCalm {
						goAways.Add(1)
					}
					_ = c.conn.Close()
				}()
				c.rapidReset(block, stop)
				_ = c.conn.Close()
				<-got
			}
		}()
	}
	out := make(chan int, 1)
	// Owner: attack. Exit: once every worker has.
	go func() { wg.Wait(); out <- int(goAways.Load()) }()
	return out
}

// While two connections reset streams as fast as they can, reconnecting
// after each GOAWAY, a member on another connection receives every
// message of the room, in order. The latency is logged, not asserted.
func TestRapidResetSparesOtherMembers(t *testing.T) {
	const messages = 300
	h := newHarness(t, opts{tcp: true})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	sender := h.open(h.client, h.join(ann, code, "pw"), nil)
	reader := h.open(chatv1.NewChatServiceClient(h.dial()), h.member(code, "u2", "bob"), nil)
	require.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, sender.nextPresence().Kind)

	stop := make(chan struct{})
	goAways := attack(h.addr, 2, stop)
	// Let the attack get going before the first message.
	require.Eventually(t, func() bool { return testutil.ToFloat64(h.srv.cfg.Metrics.ResetFloods) >= 2 },
		10*time.Second, time.Millisecond)

	var lat []time.Duration
	// Owner: the test. Exit: after the last message, or when the stream
	// ends; the sender's own copies are read so that its queue never fills.
	echoes := make(chan error, 1)
	go func() {
		for {
			ev, err := sender.recv()
			if err != nil {
				echoes <- err
				return
			}
			if ev.GetMessage().GetSequence() == messages {
				echoes <- nil
				return
			}
		}
	}()
	sent := make(chan struct{})
	go func() { // Owner: the test. Exit: after the last message.
		defer close(sent)
		for i := range messages {
			sender.send(strconv.Itoa(i), strconv.FormatInt(time.Now().UnixNano(), 10))
			time.Sleep(2 * time.Millisecond)
		}
	}()
	for i := range messages {
		m := reader.nextMessage()
		require.Equal(t, uint64(i+1), m.GetSequence(), "every message, in order")
		at, err := strconv.ParseInt(m.GetBody(), 10, 64)
		require.NoError(t, err)
		lat = append(lat, time.Since(time.Unix(0, at)))
	}
	<-sent
	close(stop)
	n := <-goAways
	floods := testutil.ToFloat64(h.srv.cfg.Metrics.ResetFloods)
	slices.Sort(lat)
	t.Logf("%d messages received during the attack; %d GOAWAYs to attackers (%v counted by the server), %v resets; latency p50 %v, p99 %v, max %v",
		messages, n, floods, testutil.ToFloat64(h.srv.cfg.Metrics.StreamResets.WithLabelValues("client")), lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1])
	assert.Positive(t, n)
	require.NoError(t, <-echoes)
}

// A well-behaved client that cancels streams at a normal pace is never
// sent GOAWAY: it cancels 128 streams at once (all a connection may
// have), then 120 more, one every 25 ms, on one connection: more than the
// burst in all, within it thanks to the refill.
func TestCancellingClientKeepsItsConnection(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	roomTok := h.join(ann, code, "pw")
	client := chatv1.NewChatServiceClient(h.dial())

	var streams []*stream
	for range 128 {
		streams = append(streams, h.open(client, roomTok, nil))
	}
	for _, s := range streams {
		s.cancel()
	}
	for range 120 {
		h.open(client, roomTok, nil).cancel()
		time.Sleep(25 * time.Millisecond)
	}
	// The connection still serves.
	s := h.open(client, roomTok, nil)
	s.send("c1", "still here")
	assert.Equal(t, "still here", s.nextMessage().GetBody())

	m := h.srv.cfg.Metrics
	byClient := m.StreamResets.WithLabelValues("client")
	require.Eventually(t, func() bool { return testutil.ToFloat64(byClient) >= 248 }, 10*time.Second, 10*time.Millisecond,
		"the server got every reset: %v", testutil.ToFloat64(byClient))
	assert.Zero(t, testutil.ToFloat64(m.ResetFloods))
}

// The GOAWAY arrives as a frame of its own while the server is writing
// large frames on the same connection: a member's 48 KiB messages go out
// as DATA frames of 16 KiB, written in several pieces each, when the
// connection's resets run out. Every frame parses.
func TestGoAwayBetweenLargeFrames(t *testing.T) {
	h := newHarness(t, opts{tcp: true, maxBody: 60 << 10})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	sender := h.open(h.client, h.join(ann, code, "pw"), nil)

	c := dialH2(t, h.addr)
	require.NoError(t, c.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1<<31 - 1}))
	require.NoError(t, c.fr.WriteWindowUpdate(0, 1<<30))
	id, err := c.open(headerBlock(chatPath, hpack.HeaderField{Name: "token", Value: h.member(code, "u2", "bob")}))
	require.NoError(t, err)
	open, err := proto.Marshal(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}})
	require.NoError(t, err)
	msg := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(open)))
	require.NoError(t, c.fr.WriteData(id, false, append(msg, open...)))
	require.NoError(t, c.flush())

	// Owner: the test. Exit: after stop, or when a send fails.
	stop := make(chan struct{})
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		body := strings.Repeat("m", 48<<10)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if sender.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: fmt.Sprint(i), Body: body}}}) != nil {
				return
			}
			if _, err := sender.c.Recv(); err != nil {
				return
			}
		}
	}()

	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	var full, during int
	flooding := false
	flooded := make(chan int, 1)
	for {
		f, err := c.fr.ReadFrame()
		require.NoError(t, err, "every frame parses, up to the GOAWAY")
		if d, ok := f.(*http2.DataFrame); ok && d.StreamID == id {
			if flooding {
				during++
			}
			if d.Length == 16384 {
				full++
			}
			if full == 20 && !flooding {
				// Owner: the test. Exit: a write fails once the server
				// closes the connection.
				go func() { flooded <- c.rapidReset(headerBlock(chatPath), nil) }()
				flooding = true
			}
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			assert.Equal(t, http2.ErrCodeEnhanceYourCalm, ga.ErrCode)
			assert.Equal(t, "too_many_resets", string(ga.DebugData()))
			assert.GreaterOrEqual(t, ga.LastStreamID, id)
			break
		}
	}
	_, err = c.fr.ReadFrame()
	assert.Error(t, err, "nothing after the GOAWAY")
	_ = c.conn.Close()
	<-flooded
	close(stop)
	<-sending
	t.Logf("%d DATA frames of 16 KiB before the resets, %d DATA frames while they ran, then the GOAWAY", full, during)
	assert.Positive(t, during, "the stream was written while the resets ran")
}
