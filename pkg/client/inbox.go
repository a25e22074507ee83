package client

import "sync"

// DefaultEventBuffer is how many unread events a room holds unless
// WithEventBuffer says otherwise: as many as the chat service queues for
// a stream by default.
const DefaultEventBuffer = 256

// inbox holds a room's events between the session, which reads the
// stream and must never wait for the application, and Receive. It holds
// at most size events. One more than that drops the oldest, which is
// folded into a *Gap at the head of the inbox: Receive returns that Gap
// first, then the events that were kept, in order. Dropping the oldest
// keeps the newest, which is what an application that falls behind
// wants to show, and keeps the report in one Gap however many are
// dropped.
type inbox struct {
	size  int
	ready chan struct{} // holds a token when there may be an event to take

	mu    sync.Mutex
	queue []Event // oldest first; at most size
	gap   *Gap    // what was dropped before queue[0], nil if nothing was
	// readEpoch and readSeq are the last message Receive returned, or
	// where the session started: an overflow starts after them.
	readEpoch string
	readSeq   uint64
}

func newInbox(size int) *inbox {
	return &inbox{size: size, ready: make(chan struct{}, 1)}
}

// start sets the point an overflow before the first message starts after.
func (in *inbox) start(epoch string, seq uint64) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.readEpoch, in.readSeq = epoch, seq
}

// push adds ev, dropping the oldest event if the inbox is full. It never
// blocks.
func (in *inbox) push(ev Event) {
	in.mu.Lock()
	if len(in.queue) >= in.size {
		in.drop(in.queue[0])
		in.queue[0] = nil // the backing array must not keep it alive
		in.queue = in.queue[1:]
	}
	in.queue = append(in.queue, ev)
	in.mu.Unlock()
	in.signal()
}

// drop folds ev into the head Gap. in.mu must be held.
func (in *inbox) drop(ev Event) {
	g := in.gap
	if g == nil {
		g = &Gap{PreviousEpoch: in.readEpoch, AfterSequence: in.readSeq, Epoch: in.readEpoch, HeadSequence: in.readSeq}
		in.gap = g
	}
	g.Dropped++
	switch ev := ev.(type) {
	case *Message:
		g.DroppedMessages++
		g.Epoch, g.HeadSequence = ev.Epoch, ev.Sequence
	case *Gap:
		// The service's own gap: the caller's messages whose fate it hid
		// stay reported, as do refusals folded into an earlier overflow.
		g.Unconfirmed = append(g.Unconfirmed, ev.Unconfirmed...)
		g.Failed = append(g.Failed, ev.Failed...)
		g.ServiceGap = true
	case *SendFailed:
		// No later event tells of a refused message: it is kept.
		g.Failed = append(g.Failed, ev)
	}
}

// pop takes the next event, the head Gap first, if there is one.
func (in *inbox) pop() (Event, bool) {
	in.mu.Lock()
	var ev Event
	switch {
	case in.gap != nil:
		ev = in.gap
		in.readEpoch, in.readSeq = in.gap.Epoch, in.gap.HeadSequence
		in.gap = nil
	case len(in.queue) > 0:
		ev = in.queue[0]
		in.queue[0] = nil
		in.queue = in.queue[1:]
		if m, ok := ev.(*Message); ok {
			in.readEpoch, in.readSeq = m.Epoch, m.Sequence
		}
	default:
		in.mu.Unlock()
		return nil, false
	}
	more := len(in.queue) > 0
	in.mu.Unlock()
	if more {
		// Another Receive may be waiting for the token this one took.
		in.signal()
	}
	return ev, true
}

func (in *inbox) signal() {
	select {
	case in.ready <- struct{}{}:
	default:
	}
}
