package api

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// A client that opens a stream over its own TCP connection and then never
// reads fills the transport's buffers, which blocks the server's writer in
// SendMsg, and then its queue. The overflow alone must end the stream: the
// others see the user leave while the client is still not reading, the
// stream's server goroutines go away, and the client, when it reads at
// last, finds ResourceExhausted after what had been buffered.
func TestStalledClientLeavesWithoutReading(t *testing.T) {
	const maxMessages = 2000 // far more than buffers and queue hold
	h := newHarness(t, opts{tcp: true, queue: 4, maxBody: 2048})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	annRoom := h.join(ann, code, "pw")
	chat := h.open(h.client, annRoom, nil)
	before := idleStreamGoroutines(t, [2]int{1, 0})

	stalled := h.open(chatv1.NewChatServiceClient(h.dial()), h.member(code, "u2", "stalled"), nil)
	require.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, chat.nextPresence().Kind)

	body := strings.Repeat("x", 1024)
	var left *chatv1.Presence
	for i := 1; left == nil; i++ {
		require.LessOrEqual(t, i, maxMessages, "the stalled user never left")
		chat.send(fmt.Sprint(i), body)
		for left == nil {
			ev := chat.next()
			if p := ev.GetPresence(); p != nil {
				left = p
			} else if ev.GetMessage().GetSequence() == uint64(i) {
				break
			}
		}
	}
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, left.Kind)
	assert.Equal(t, "stalled", left.UserName)
	assertOnline(t, h, annRoom, code, "ann")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.srv.cfg.Metrics.SlowConsumers))

	// The handler has returned; its writer, blocked in SendMsg, returns
	// once the stream's context has ended.
	require.Eventually(t, func() bool { return streamGoroutines() == before },
		10*time.Second, 10*time.Millisecond, "stream goroutines: %v, before %v", streamGoroutines(), before)

	assert.Equal(t, codes.ResourceExhausted, stalled.end())
}

// An idle stream holds no writer goroutine: one that wrote lingers for
// the writer's linger time, then exits, and another starts for the next
// event.
func TestIdleStreamHasNoWriter(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	chat := h.open(h.client, h.join(ann, code, "pw"), nil)
	idleStreamGoroutines(t, [2]int{1, 0})
	for i := range 3 {
		chat.send(fmt.Sprint(i), "hello")
		assert.Equal(t, uint64(i+1), chat.nextMessage().GetSequence())
		idleStreamGoroutines(t, [2]int{1, 0})
	}
}

// idleStreamGoroutines waits until streamGoroutines returns want, which
// it returns, and fails the test if it does not within 10 s.
func idleStreamGoroutines(t *testing.T, want [2]int) [2]int {
	t.Helper()
	require.Eventually(t, func() bool { return streamGoroutines() == want },
		10*time.Second, time.Millisecond, "stream goroutines: %v, want %v", streamGoroutines(), want)
	return want
}

// streamGoroutines counts the goroutines of the Chat handlers, which
// read, and of their writers. Idle streams have no writer, and no stream
// has a goroutine of its own for reading.
func streamGoroutines() [2]int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out [2]int
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		switch {
		case bytes.Contains(g, []byte("api.(*writer).run(")):
			out[1]++
		case bytes.Contains(g, []byte("api.(*Server).Chat(")):
			out[0]++
		}
	}
	return out
}
