package api

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A writer lingers only when the events that started it came less than a
// linger period apart. The linger is an hour and the clock is the test's,
// so a writer that lingers when it should not never exits, and one that
// does not linger when it should is seen exiting or restarting.
func TestWriterLingersOnlyForDenseEvents(t *testing.T) {
	tests := []struct {
		name   string
		gap    time.Duration // between events, on the writer's clock
		starts int           // writer goroutines started for 5 events
	}{
		{"sparse events release the claim at once", 2 * time.Hour, 5},
		// The first event has no predecessor; from the second on the
		// writer lingers and every later event wakes it alone.
		{"dense events reuse one writer", time.Millisecond, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			s := &Server{cfg: Config{WriterLinger: time.Hour, MaxFrameEvents: 64, MaxFrameBytes: 1 << 20,
				Metrics: metrics.New(func() int { return 0 }),
				Now:     func() time.Time { mu.Lock(); defer mu.Unlock(); return now }}}
			stream := newFakeStream(t)
			sub := rooms.NewSubscription(rooms.Opened{}, nil, 16, nil)
			defer sub.Close()
			var ended []error // the writer's calls to end
			var endMu sync.Mutex
			w := newWriter(s, grpcStream{stream}, sub, func(err error) { endMu.Lock(); ended = append(ended, err); endMu.Unlock() }, nil)
			c := &countingConsumer{w: w}
			sub.Watch(c)

			for i := range 5 {
				mu.Lock()
				now = now.Add(tt.gap)
				mu.Unlock()
				require.True(t, sub.Push(&rooms.Event{Kind: rooms.EventJoined, User: fmt.Sprint(i), At: now})) // starts a writer unless one holds the claim
				stream.next(t)
				if tt.starts == 5 || i == 0 {
					// Without lingering the writer exits once the queue is
					// empty, keeping neither claim nor timer.
					waitStopped(t, w)
					assert.True(t, sub.Idle(), "claim released")
					assert.Nil(t, w.timer, "no linger timer kept")
				} else {
					waitLingering(t, w)
				}
			}
			assert.Equal(t, tt.starts, c.starts, "writer goroutines started")
			var want []error
			if tt.starts < 5 {
				w.finish() // half-close: the lingering writer exits at once
				waitStopped(t, w)
				assert.True(t, sub.Idle(), "claim released")
				want = []error{errFlushed} // and ends the stream: all is written
			}
			endMu.Lock()
			defer endMu.Unlock()
			assert.Equal(t, want, ended, "the writer's reasons to end the stream")
		})
	}
}

// countingConsumer counts the writer goroutines a subscription starts.
type countingConsumer struct {
	w      *writer
	starts int // Push calls Start on the test's goroutine
}

func (c *countingConsumer) Start()    { c.starts++; c.w.Start() }
func (c *countingConsumer) Overflow() { c.w.Overflow() }

// waitStopped waits until w has no goroutine, and fails the test if that
// takes more than 10 s.
func waitStopped(t *testing.T, w *writer) {
	t.Helper()
	require.Eventually(t, func() bool { return !writerRunning(w) }, 10*time.Second, time.Millisecond,
		"the writer did not exit")
}

// waitLingering waits until w's goroutine waits in linger, and fails the
// test if it exits instead.
func waitLingering(t *testing.T, w *writer) {
	t.Helper()
	frame := []byte(fmt.Sprintf("api.(*writer).linger(%p", w))
	require.Eventually(t, func() bool {
		buf := stacks()
		require.True(t, bytes.Contains(buf, []byte(fmt.Sprintf("api.(*writer).run(%p", w))),
			"the writer exited instead of lingering")
		return bytes.Contains(buf, frame)
	}, 10*time.Second, time.Millisecond)
}

// writerRunning reports whether a goroutine of w runs.
func writerRunning(w *writer) bool {
	return bytes.Contains(stacks(), []byte(fmt.Sprintf("api.(*writer).run(%p", w)))
}

func stacks() []byte {
	buf := make([]byte, 1<<20)
	return buf[:runtime.Stack(buf, true)]
}

// fakeStream is a server stream that hands every frame sent to the test.
type fakeStream struct {
	grpc.ServerStream
	ctx    context.Context
	frames chan any
}

func newFakeStream(t *testing.T) *fakeStream {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &fakeStream{ctx: ctx, frames: make(chan any, 16)}
}

func (f *fakeStream) Context() context.Context { return f.ctx }

func (f *fakeStream) SendMsg(m any) error {
	f.frames <- m
	return nil
}

func (f *fakeStream) next(t *testing.T) {
	t.Helper()
	select {
	case <-f.frames:
	case <-time.After(10 * time.Second):
		t.Fatal("no frame sent")
	}
}
