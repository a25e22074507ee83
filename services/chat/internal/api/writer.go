package api

import (
	"sync"
	"sync/atomic"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// writer sends a subscription's events on a stream from a goroutine of its
// own, so that the Chat handler never blocks in a send: a client that
// stops reading stalls only the writer, while the subscription's overflow
// still ends the stream at once.
//
// The goroutine is started on demand when events are pending: the
// subscription claims itself for the writer and calls Start (the writer is
// its rooms.Consumer), and the goroutine holds the claim while it runs, so
// that events wake it alone. Once the queue is empty it lingers (see
// linger) before releasing the claim and exiting, so a room with a steady
// flow of messages does not start a goroutine per message per stream,
// while an idle stream ends up holding none. It lingers only when the
// events that started it came less than a linger period apart (see
// dense): at light load the next event would come after the linger
// anyway, and waiting would cost a timer and its firings on top of the
// goroutine start.
//
// The writer ends the stream itself (through end, see ender) when it
// stops for good: a send failed, the subscription ended (after its last
// event, e.g. RoomDeleted, has been handed to the transport) or, after finish,
// everything queued has been written.
type writer struct {
	s   *Server
	t   transport
	sub *rooms.Subscription
	end func(error) // ends the stream with a reason (ender.end)

	// Only the goroutine holding the subscription's claim may touch these.
	head  *chatv1.Event   // sent alone before the first event (Opened)
	batch *[]*rooms.Event // from batchPool while a writer goroutine runs
	timer *time.Timer     // the linger timer, nil when no goroutine runs
	wake  <-chan struct{} // the subscription's Wake, once a writer has lingered
	woken bool            // events came in the current linger period
	start time.Time       // when the last writer goroutine found events; zero after a linger ended

	done      <-chan struct{} // the stream's context's Done, read once
	finishing atomic.Bool     // finish was called: linger no more
}

// batchPool holds the slices that writer goroutines drain events into: a
// goroutine takes one when it starts and returns it when it exits, so an
// idle stream holds none and a busy one does not grow a new one per start.
var batchPool = sync.Pool{New: func() any { return new([]*rooms.Event) }}

func newWriter(s *Server, t transport, sub *rooms.Subscription, end func(error), head *chatv1.Event) *writer {
	return &writer{s: s, t: t, sub: sub, end: end, head: head, done: t.Context().Done()}
}

// kick starts a writer goroutine unless one is running; the handler calls
// it once, so that the head is sent even if no event is pending.
func (w *writer) kick() {
	if w.sub.Claim() {
		w.Start()
	}
}

// Start starts a writer goroutine; the caller has claimed the
// subscription for it.
func (w *writer) Start() {
	// Owner: the subscription's claim, taken by kick or by the
	// subscription for this writer. Exit: when the queue has stayed empty
	// for the linger time, the stream's context ends, the subscription has
	// ended or a send fails; a send blocked on a stalled client fails once
	// the stream has ended for the transport (see transport.Context).
	go func() {
		if err := w.s.guard(w.t.Context(), w.run); err != nil {
			w.end(err)
		}
	}()
}

// Overflow ends the stream at once with rooms.ErrSlowConsumer, even while
// a writer goroutine is blocked in a send.
func (w *writer) Overflow() { w.end(rooms.ErrSlowConsumer) }

// finish makes the writer exit as soon as the queue is empty, without
// lingering, and end the stream with errFlushed once nothing is queued:
// the client has half-closed and the handler waits for what is queued to
// be written. The handler calls it at most once.
func (w *writer) finish() {
	w.finishing.Store(true)
	// A lingering writer wakes, sees finishing and exits; one that
	// releases the claim from now on sees it too. If none holds the claim
	// now, everything queued has been written.
	w.sub.Nudge()
	if w.sub.Idle() {
		w.end(errFlushed)
	}
}

func (w *writer) run() {
	w.batch = batchPool.Get().(*[]*rooms.Event)
	stay := w.dense()
	for {
		if err := w.sendPending(); err != nil {
			w.end(err)
			return // the claim is kept, so that no other writer starts
		}
		if stay && w.linger() {
			continue
		}
		// Hand over: an event pushed before Release makes it fail and is
		// sent here; one pushed after starts a new writer. Nothing may
		// touch the claimant's fields after a successful Release.
		if w.timer != nil {
			// The linger ended: a whole period passed without an event
			// (or the stream is finishing), so the next event starts
			// afresh and its writer does not linger.
			w.timer, w.start = nil, time.Time{}
		}
		batch := w.batch
		if w.sub.Release() {
			batchPool.Put(batch)
			if w.finishing.Load() {
				w.end(errFlushed)
			}
			return
		}
		// Events came while this writer was sending: they are dense.
		stay = w.dense()
	}
}

// dense records that events were found now, and reports whether they
// came less than a linger period after the previous ones, which makes it
// likely that more follow within the linger. It reads the clock once per
// writer goroutine (or failed Release), not per event.
func (w *writer) dense() bool {
	d := w.s.cfg.WriterLinger
	if d <= 0 {
		return false
	}
	now, prev := w.s.cfg.Now(), w.start
	w.start = now
	return !prev.IsZero() && now.Sub(prev) < d
}

// linger waits for more events while the queue is empty, and reports
// whether any came. It gives up once a whole linger period has passed
// without one, so a stream holds its writer at most two periods after its
// last event. The timer is not reset per event: a steady flow costs one
// channel receive per event, not a timer update. Everything else that
// should stop the wait (finish, the stream's end, which closes the
// subscription) signals the same Wake channel, so the wait has two cases:
// a select locks every channel it waits on, and in a paced run this wait
// was the service's costliest code.
func (w *writer) linger() bool {
	d := w.s.cfg.WriterLinger
	if d <= 0 {
		return false
	}
	// Wake first, then the checks: a finish or close from now on signals
	// the channel even if it comes before the wait; one before was seen.
	if w.wake == nil {
		w.wake = w.sub.Wake()
	}
	if w.stopLingering() {
		return false
	}
	if w.timer == nil {
		w.timer, w.woken = time.NewTimer(d), false
	}
	for {
		select {
		case <-w.wake:
			if w.stopLingering() {
				w.timer.Stop()
				return false
			}
			w.woken = true
			return true
		case <-w.timer.C:
			if !w.woken {
				return false
			}
			// Events came during the period that ended: wait another.
			w.woken = false
			w.timer.Reset(d)
		}
	}
}

// stopLingering reports whether the stream is finishing or has ended: the
// handler has closed the subscription (its context may end a moment
// later) or the context has ended.
func (w *writer) stopLingering() bool {
	if w.finishing.Load() || w.sub.Closed() {
		return true
	}
	select {
	case <-w.done:
		return true
	default:
		return false
	}
}

// sendPending writes frames until the queue is empty. It returns the
// subscription's end reason once that is all that is left.
func (w *writer) sendPending() error {
	if w.head != nil {
		if err := w.t.SendOpened(w.head); err != nil {
			return err
		}
		w.head = nil
	}
	for {
		batch, err := w.sub.Drain((*w.batch)[:0], w.s.cfg.MaxFrameEvents, w.s.cfg.MaxFrameBytes)
		*w.batch = batch
		if n := len(batch); n > 0 {
			serr := w.t.SendEvents(batch)
			clear(batch) // drop references to shared events promptly
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
