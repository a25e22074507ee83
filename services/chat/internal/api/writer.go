package api

import (
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// writer sends a subscription's events on a stream from a goroutine of its
// own, so that the Chat handler never blocks in SendMsg: a client that
// stops reading stalls only the writer, while the handler still sees the
// queue overflow and ends the stream at once. The goroutine is started on
// demand when events are pending and exits when the queue is empty, so an
// idle stream holds none.
type writer struct {
	s      *Server
	stream grpc.ServerStream
	sub    *rooms.Subscription

	// running is true while a writer goroutine exists, and stays true after
	// one stopped for good, so that no other starts. Only the goroutine
	// that set it may touch head and batch.
	running atomic.Bool
	head    any          // sent before the first event (the Opened frame)
	batch   []wire.Event // reused between frames

	stopped chan struct{} // 1-buffered: a writer goroutine has exited

	mu  sync.Mutex
	err error // why writing stopped for good: a send failed or the subscription ended
}

func newWriter(s *Server, stream grpc.ServerStream, sub *rooms.Subscription, head any) *writer {
	return &writer{s: s, stream: stream, sub: sub, head: head, stopped: make(chan struct{}, 1)}
}

// kick starts a writer goroutine unless one is running.
func (w *writer) kick() {
	if w.running.CompareAndSwap(false, true) {
		// Owner: the Chat handler, through kick. Exit: when the queue is
		// empty, the subscription has ended or a send fails; a send blocked
		// on a stalled client fails once the handler returns and gRPC
		// cancels the stream.
		go w.run()
	}
}

// Stopped is signalled whenever a writer goroutine exits.
func (w *writer) Stopped() <-chan struct{} { return w.stopped }

// Err is why writing stopped for good, or nil.
func (w *writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Idle reports whether everything queued has been written and no writer
// is running.
func (w *writer) Idle() bool { return !w.running.Load() && !w.sub.Pending() }

func (w *writer) run() {
	defer func() {
		select {
		case w.stopped <- struct{}{}:
		default: // a wake-up is already pending
		}
	}()
	for {
		if err := w.sendPending(); err != nil {
			w.mu.Lock()
			w.err = err
			w.mu.Unlock()
			return // running stays true
		}
		// Hand over: an event pushed after the last Drain either sees
		// running false (and its Ready makes the handler start a writer) or
		// is seen here, and exactly one of the two wins the swap. Nothing
		// may touch w's fields after Store unless the swap is won here.
		w.batch = nil // an idle stream keeps no batch
		w.running.Store(false)
		if !w.sub.Pending() || !w.running.CompareAndSwap(false, true) {
			return
		}
	}
}

// sendPending writes frames until the queue is empty. It returns the
// subscription's end reason once that is all that is left.
func (w *writer) sendPending() error {
	if w.head != nil {
		if err := w.stream.SendMsg(w.head); err != nil {
			return err
		}
		w.head = nil
	}
	for {
		var err error
		w.batch, err = w.sub.Drain(w.batch[:0], w.s.cfg.MaxFrameEvents, w.s.cfg.MaxFrameBytes)
		if n := len(w.batch); n > 0 {
			// SendMsg, not Send: the frame is already encoded and the
			// server's codec passes it through.
			serr := w.stream.SendMsg(wire.NewFrame(w.batch))
			clear(w.batch) // drop references to shared events promptly
			if serr != nil {
				return serr
			}
			w.s.cfg.Metrics.MessagesOut.Add(float64(n))
		} else if err == nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
