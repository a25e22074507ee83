package rooms

import (
	"sync"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// Subscription is one stream's bounded queue of encoded events.
//
// Engines fill it with Push, which never blocks: it appends under the
// queue's own small mutex and signals without waiting. When the queue
// would exceed its bound the subscription ends with ErrSlowConsumer instead,
// so one stalled client never delays a broadcast.
//
// One consumer at a time may Claim the subscription, take everything
// pending with Drain, wait on Wake for more while it likes, and Release it
// once the queue is empty. While it is claimed, Push signals only Wake, so
// a consumer that keeps up is the only goroutine woken per event; while it
// is not, Push signals Ready, on which the stream's handler waits to start
// a consumer. The end of the subscription signals both.
type Subscription struct {
	// Opened describes the room when the subscription started.
	Opened Opened

	ready   chan struct{} // 1-buffered: a pending wake-up, never a backlog
	wake    chan struct{} // the same, for the consumer holding the claim
	onClose func()
	once    sync.Once

	mu      sync.Mutex
	queue   []wire.Event
	size    int   // the bound on queued live events
	limit   int   // size plus what remains of the initial backlog
	err     error // why the subscription ended; nil while live
	claimed bool  // a consumer holds the subscription
}

// NewSubscription returns a subscription holding backlog (typically a
// replay), which does not count against the bound of size further events.
// onClose is called once by Close so the engine can drop the subscriber.
func NewSubscription(opened Opened, backlog []wire.Event, size int, onClose func()) *Subscription {
	s := &Subscription{
		Opened:  opened,
		ready:   make(chan struct{}, 1),
		wake:    make(chan struct{}, 1),
		onClose: onClose,
		// No slots up front: most streams are idle most of the time, and
		// append grows the queue only when events arrive.
		queue: append([]wire.Event(nil), backlog...),
		size:  size,
		limit: len(backlog) + size,
	}
	if len(backlog) > 0 {
		signal(s.ready)
	}
	return s
}

// Push enqueues ev. It reports false if the subscription has ended, now or
// earlier; a full queue ends it with ErrSlowConsumer.
func (s *Subscription) Push(ev wire.Event) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.limit {
		s.err = ErrSlowConsumer
		s.mu.Unlock()
		s.signalAll()
		return false
	}
	s.queue = append(s.queue, ev)
	claimed := s.claimed
	s.mu.Unlock()
	if claimed {
		signal(s.wake)
	} else {
		signal(s.ready)
	}
	return true
}

// End enqueues last (if it has bytes) regardless of the bound and ends the
// subscription with err once the queue is drained. Later calls do nothing.
func (s *Subscription) End(last wire.Event, err error) {
	s.mu.Lock()
	if s.err == nil {
		if last.Len() > 0 {
			s.queue = append(s.queue, last)
		}
		s.err = err
	}
	s.mu.Unlock()
	s.signalAll()
}

// Pending reports whether Drain has something to return: queued events,
// or the reason the subscription ended.
func (s *Subscription) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.queue) > 0 || s.err != nil
}

// Claim makes the caller the subscription's consumer, unless one already
// is: it reports whether the claim was won.
func (s *Subscription) Claim() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.claimed {
		return false
	}
	s.claimed = true
	return true
}

// Release gives up the consumer's claim if nothing is pending, and
// reports whether it did. An event pushed after a successful Release
// signals Ready; one pushed before makes Release fail, so no event is
// left without a consumer.
func (s *Subscription) Release() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.queue) > 0 || s.err != nil {
		return false
	}
	s.claimed = false
	return true
}

// Idle reports whether no consumer holds the subscription and nothing is
// pending.
func (s *Subscription) Idle() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return !s.claimed && len(s.queue) == 0 && s.err == nil
}

// Overflowed returns ErrSlowConsumer once the queue has overflowed, and nil
// before. Unlike Drain it does not need the stream to be writable, so a
// handler can end a stalled stream while its writer is blocked.
func (s *Subscription) Overflowed() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == ErrSlowConsumer {
		return s.err
	}
	return nil
}

// Ready is signalled when events are pushed while no consumer holds the
// subscription, and when it ends.
func (s *Subscription) Ready() <-chan struct{} { return s.ready }

// Wake is signalled when events are pushed while a consumer holds the
// subscription, and when it ends.
func (s *Subscription) Wake() <-chan struct{} { return s.wake }

// Drain moves up to maxEvents pending events, or as many as fit in
// maxBytes (at least one), to dst and returns it. err is set once the
// subscription has ended: ErrSlowConsumer at once, dropping what is still
// queued (the client resumes from history), other reasons only after the
// queue is empty, so that e.g. RoomDeleted is delivered first.
func (s *Subscription) Drain(dst []wire.Event, maxEvents, maxBytes int) ([]wire.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == ErrSlowConsumer {
		s.queue = nil
		return dst, s.err
	}
	n, size := 0, 0
	for n < len(s.queue) && n < maxEvents {
		l := s.queue[n].Len()
		if n > 0 && size+l > maxBytes {
			break
		}
		size += l
		n++
	}
	dst = append(dst, s.queue[:n]...)
	s.limit = max(s.size, s.limit-n) // the backlog's allowance shrinks as it drains
	// Shift rather than reslice so the backing array is reused and does not
	// grow without bound on a long-lived stream.
	rest := copy(s.queue, s.queue[n:])
	clear(s.queue[rest:])
	s.queue = s.queue[:rest]
	if rest > 0 {
		if !s.claimed { // a claimant drains until empty anyway
			signal(s.ready)
		}
		return dst, nil
	}
	if len(s.queue) == 0 && cap(s.queue) > 64 {
		s.queue = nil // release a burst's memory once idle
	}
	return dst, s.err
}

// Close detaches the subscription from its room. It is safe to call more
// than once and from any goroutine.
func (s *Subscription) Close() {
	s.once.Do(func() {
		if s.onClose != nil {
			s.onClose()
		}
	})
}

// signalAll wakes the handler and the consumer: the subscription ended.
func (s *Subscription) signalAll() {
	signal(s.ready)
	signal(s.wake)
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wake-up is already pending; the reader will see everything
	}
}
