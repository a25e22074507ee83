package rooms

import (
	"sync"
	"sync/atomic"
)

// Subscription is one stream's bounded queue of events: the
// transport-neutral connection between an engine and a stream of any
// transport, which drains it and encodes each shared event in its format.
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
// is not, Push signals Ready, or, once a Consumer is installed with Watch,
// claims the subscription for it and calls its Start. The end of the
// subscription signals both channels (or starts the Consumer).
//
// The channels are made on first use: a stream whose consumer is started
// by Watch and never waits for more needs neither.
type Subscription struct {
	// Opened describes the room when the subscription started. Its
	// consumer reads it once, with TakeOpened.
	Opened Opened

	onClose func()
	once    sync.Once
	closed  atomic.Bool // set by Close, read by a consumer deciding to wait

	mu       sync.Mutex
	queue    []*Event
	size     int           // the bound on queued live events
	limit    int           // size plus what remains of the initial backlog
	err      error         // why the subscription ended; nil while live
	claimed  bool          // a consumer holds the subscription
	consumer Consumer      // set by Watch, cleared by Close
	ready    chan struct{} // made by Ready; 1-buffered: a pending wake-up, never a backlog
	wake     chan struct{} // made by Wake; the same, for the consumer holding the claim
}

// Consumer is told by a subscription when to consume it; see Watch. Both
// methods are called without the subscription's lock, on the goroutine
// that pushed (often the publisher, under its room's lock), so they must
// be cheap and must not block.
type Consumer interface {
	// Start is called when events are pending and no consumer holds the
	// subscription. The subscription is already claimed on the
	// consumer's behalf: Start must arrange for it to be drained and
	// released, typically by starting a goroutine.
	Start()
	// Overflow is called once when the queue overflows, that is when the
	// subscription ends with ErrSlowConsumer, whether or not it is
	// claimed, so that a consumer blocked writing to a stalled client can
	// still end its stream at once.
	Overflow()
}

// NewSubscription returns a subscription holding backlog (typically a
// replay), which does not count against the bound of size further events.
// onClose is called once by Close so the engine can drop the subscriber.
func NewSubscription(opened Opened, backlog []*Event, size int, onClose func()) *Subscription {
	return &Subscription{
		Opened:  opened,
		onClose: onClose,
		// No slots up front: most streams are idle most of the time, and
		// append grows the queue only when events arrive.
		queue: append([]*Event(nil), backlog...),
		size:  size,
		limit: len(backlog) + size,
	}
}

// TakeOpened returns Opened and clears it, so that a long-lived
// subscription does not keep its snapshot of the room's users: in a room
// of n users that list costs every stream n entries. It is not
// synchronized: only the goroutine that got the subscription from the
// engine may call it, and nothing reads Opened afterwards.
func (s *Subscription) TakeOpened() Opened {
	o := s.Opened
	s.Opened = Opened{}
	return o
}

// Watch installs c, which from now on is started (see Consumer) whenever
// events are pending while nobody holds the subscription, instead of
// Ready being signalled. If that is already so, or if the queue has
// already overflowed, Watch calls c at once, on the caller's goroutine.
// It is called at most once, before the consumer claims the
// subscription by other means.
func (s *Subscription) Watch(c Consumer) {
	s.mu.Lock()
	s.consumer = c
	overflowed := s.err == ErrSlowConsumer
	start := !overflowed && s.startLocked()
	s.mu.Unlock()
	if overflowed {
		c.Overflow()
	} else if start {
		c.Start()
	}
}

// startLocked claims the subscription for its Consumer if there is one,
// nobody holds it and something is pending, and reports whether it did.
func (s *Subscription) startLocked() bool {
	if s.consumer == nil || s.claimed || (len(s.queue) == 0 && s.err == nil) {
		return false
	}
	s.claimed = true
	return true
}

// Push enqueues ev. It reports false if the subscription has ended, now or
// earlier; a full queue ends it with ErrSlowConsumer.
func (s *Subscription) Push(ev *Event) bool {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.limit {
		s.err = ErrSlowConsumer
		c, ready, wake := s.consumer, s.ready, s.wake
		s.mu.Unlock()
		signal(ready)
		signal(wake)
		if c != nil {
			c.Overflow()
		}
		return false
	}
	s.queue = append(s.queue, ev)
	c, ch := s.consumer, s.wake
	if !s.claimed {
		ch = s.ready
	}
	start := s.startLocked()
	s.mu.Unlock()
	if start {
		c.Start()
	} else {
		signal(ch)
	}
	return true
}

// End enqueues last (unless nil) regardless of the bound and ends the
// subscription with err once the queue is drained. Later calls do nothing.
func (s *Subscription) End(last *Event, err error) {
	s.mu.Lock()
	if s.err == nil {
		if last != nil {
			s.queue = append(s.queue, last)
		}
		s.err = err
	}
	c, ready, wake := s.consumer, s.ready, s.wake
	start := s.startLocked()
	s.mu.Unlock()
	signal(ready)
	signal(wake)
	if start {
		c.Start()
	}
}

// Pending reports whether Drain has something to return: queued events,
// or the reason the subscription ended.
func (s *Subscription) Pending() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pendingLocked()
}

func (s *Subscription) pendingLocked() bool { return len(s.queue) > 0 || s.err != nil }

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
// signals Ready (or starts the Consumer); one pushed before makes Release
// fail, so no event is left without a consumer.
func (s *Subscription) Release() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pendingLocked() {
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
	return !s.claimed && !s.pendingLocked()
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
// subscription and no Consumer is installed, and when it ends.
func (s *Subscription) Ready() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ready == nil {
		s.ready = make(chan struct{}, 1)
		if !s.claimed && s.pendingLocked() { // what it would have been told
			s.ready <- struct{}{}
		}
	}
	return s.ready
}

// Wake is signalled when events are pushed while a consumer holds the
// subscription, and when it ends. The channel does not change, so the
// consumer may keep it.
func (s *Subscription) Wake() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.wake == nil {
		s.wake = make(chan struct{}, 1)
		if s.claimed && s.pendingLocked() { // what it would have been told
			s.wake <- struct{}{}
		}
	}
	return s.wake
}

// Drain moves up to maxEvents pending events, or as many as fit in
// maxBytes by their estimated Size (at least one), to dst and returns it. err is set once the
// subscription has ended: ErrSlowConsumer at once, dropping what is still
// queued (the client resumes from history), other reasons only after the
// queue is empty, so that e.g. RoomDeleted is delivered first.
func (s *Subscription) Drain(dst []*Event, maxEvents, maxBytes int) ([]*Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == ErrSlowConsumer {
		s.queue = nil
		return dst, s.err
	}
	n, size := 0, 0
	for n < len(s.queue) && n < maxEvents {
		l := s.queue[n].Size()
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

// Closed reports whether Close has been called.
func (s *Subscription) Closed() bool { return s.closed.Load() }

// Nudge signals Wake (if it has been asked for) without pushing anything,
// so that a consumer waiting on it looks at whatever else it watches.
func (s *Subscription) Nudge() {
	s.mu.Lock()
	wake := s.wake
	s.mu.Unlock()
	signal(wake)
}

// Close detaches the subscription from its room and uninstalls its
// Consumer, which is not started again, and signals Wake, so that a
// consumer waiting for events learns that none will come. It is safe to
// call more than once and from any goroutine.
func (s *Subscription) Close() {
	s.mu.Lock()
	s.consumer = nil
	wake := s.wake
	s.mu.Unlock()
	s.closed.Store(true)
	signal(wake)
	s.once.Do(func() {
		if s.onClose != nil {
			s.onClose()
		}
	})
}

// signal leaves a wake-up on c unless one is pending; a nil c (nobody has
// asked for the channel yet) is left alone.
func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default: // a wake-up is already pending (the reader will see everything), or c is nil
	}
}
