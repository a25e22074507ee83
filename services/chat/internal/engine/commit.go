package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// maxBatch bounds the messages written to the log in one Append.
const maxBatch = 1024

// pending is a message accepted for a room and not yet in the log.
type pending struct {
	r  *room
	ev *rooms.Event
}

// remote is what a feed of a shared log reported for one room: messages
// another instance appended, or the end of the room's history.
type remote struct {
	code    string
	msgs    []rooms.Message
	dropped bool
}

// committer writes accepted messages to the log in batches (a group
// commit: one Append for whatever accumulated while the previous one
// ran) and only then hands them to their rooms' streams, so nobody ever
// sees a message that a crash could take back, and a restart continues
// the same sequences. A failed Append is retried until it succeeds or the
// engine closes: the messages are held, not lost, and Publish waits once
// MaxPending of them are.
type committer struct {
	m *Engine

	mu    sync.Mutex
	queue []pending
	// remote are other instances' appends to a shared log, applied
	// before the next batch is written (see Engine.Apply).
	remote   []remote
	accepted uint64        // messages ever queued
	written  uint64        // messages ever written and delivered (or given up at close)
	progress chan struct{} // closed and replaced whenever written moves
	closed   bool

	wake chan struct{} // 1-buffered: a pending wake-up, never a backlog
	stop chan struct{} // closed by close: write what is left, then exit
	// abort ends when close's context ends: the write in progress and the
	// retries stop.
	abort    context.Context
	abortNow context.CancelFunc
	done     chan struct{} // closed when run returns
}

func newCommitter(m *Engine) *committer {
	abort, abortNow := context.WithCancel(context.Background())
	return &committer{m: m, progress: make(chan struct{}), wake: make(chan struct{}, 1),
		stop: make(chan struct{}), abort: abort, abortNow: abortNow, done: make(chan struct{})}
}

// admit waits while MaxPending messages await the log.
func (c *committer) admit(ctx context.Context) error {
	for {
		c.mu.Lock()
		closed, full, progress := c.closed, c.accepted-c.written >= uint64(c.m.cfg.MaxPending), c.progress
		c.mu.Unlock()
		switch {
		case closed:
			return rooms.ErrShuttingDown
		case !full:
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// add queues ev of r; the caller holds r's lock, so a room's messages are
// queued in sequence order.
func (c *committer) add(r *room, ev *rooms.Event) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return rooms.ErrShuttingDown
	}
	c.queue = append(c.queue, pending{r, ev})
	c.accepted++
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
	return nil
}

// flush waits until every message queued before the call is written.
func (c *committer) flush(ctx context.Context) error {
	c.mu.Lock()
	target := c.accepted
	for c.written < target {
		progress := c.progress
		c.mu.Unlock()
		select {
		case <-progress:
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return rooms.ErrShuttingDown
		}
		c.mu.Lock()
	}
	c.mu.Unlock()
	return nil
}

// close refuses new messages, waits until the queued ones are written or
// ctx ends, and stops run.
func (c *committer) close(ctx context.Context) error {
	c.mu.Lock()
	already := c.closed
	c.closed = true
	c.mu.Unlock()
	if !already {
		close(c.stop)
	}
	select {
	case <-c.done:
	case <-ctx.Done():
		c.abortNow()
		<-c.done
	}
	c.abortNow() // releases the context's resources
	c.mu.Lock()
	defer c.mu.Unlock()
	if lost := c.accepted - c.written; lost > 0 {
		return fmt.Errorf("engine: %d accepted messages not written to the log: %w", lost, rooms.ErrUnavailable)
	}
	return nil
}

// run writes batches until close; it exits once the queue is empty after
// close, or when close gives up.
func (c *committer) run() {
	defer close(c.done)
	var batch, live []pending
	var msgs []rooms.Message
	var remotes []remote
	for {
		select {
		case <-c.wake:
		case <-c.stop:
		}
		for {
			c.mu.Lock()
			n := min(len(c.queue), maxBatch)
			batch = append(batch[:0], c.queue[:n]...)
			rest := copy(c.queue, c.queue[n:])
			clear(c.queue[rest:])
			c.queue = c.queue[:rest]
			remotes = append(remotes[:0], c.remote...)
			clear(c.remote)
			c.remote = c.remote[:0]
			closed := c.closed
			c.mu.Unlock()
			// Other instances' messages first: they hold the sequences
			// this batch would otherwise try and fail to take.
			for _, rm := range remotes {
				c.apply(rm)
			}
			clear(remotes)
			if n == 0 {
				if closed {
					return
				}
				if len(remotes) > 0 {
					continue
				}
				break
			}
			live, msgs = c.live(live[:0], msgs[:0], batch)
			if len(live) > 0 && !c.write(live, msgs) {
				return // close gave up: the rest is counted as lost
			}
			c.deliver(live)
			clear(batch)
			clear(live)
			c.mu.Lock()
			c.written += uint64(n)
			close(c.progress)
			c.progress = make(chan struct{})
			c.mu.Unlock()
		}
	}
}

// live appends to dst the messages of batch whose room the engine has
// neither forgotten nor deleted: a room reset after it lost track of the
// log is reloaded from the log, and what its old state accepted would
// conflict (its streams were ended, so their clients resend it); a deleted
// room's history is being dropped. (The idle sweep marks a room deleted
// while it decides, but only a room with nothing pending.)
func (c *committer) live(dst []pending, msgs []rooms.Message, batch []pending) ([]pending, []rooms.Message) {
	for i := 0; i < len(batch); {
		r, j := batch[i].r, i+1
		for j < len(batch) && batch[j].r == r {
			j++
		}
		r.mu.Lock()
		if !r.gone && !r.deleted {
			dst = append(dst, batch[i:j]...)
			msgs = r.toWriteLocked(msgs, batch[i:j])
		}
		r.mu.Unlock()
		i = j
	}
	return dst, msgs
}

// write appends the batch's messages, msgs as they stand now, retrying
// with backoff, and reports false if close gave up meanwhile.
func (c *committer) write(batch []pending, msgs []rooms.Message) bool {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := c.append(batch, msgs)
		if err == nil {
			return true
		}
		msgs = nil // a conflict may have renumbered them: read them again
		c.m.cfg.Report(fmt.Errorf("engine: write %d messages to the log (retrying in %s): %w", len(batch), delay, err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.abort.Done():
			t.Stop()
			return false
		}
	}
}

// messages appends to dst the messages of batch to write: those not
// voided, as currently numbered. Only the committer's goroutine changes a
// pending message, so reading them here needs no room lock; voided is read
// under it.
func (c *committer) messages(dst []rooms.Message, batch []pending) []rooms.Message {
	for i := 0; i < len(batch); {
		r, j := batch[i].r, i+1
		for j < len(batch) && batch[j].r == r {
			j++
		}
		r.mu.Lock()
		if !r.gone && !r.deleted {
			dst = r.toWriteLocked(dst, batch[i:j])
		}
		r.mu.Unlock()
		i = j
	}
	return dst
}

// toWriteLocked appends to dst the messages of run, one room's pending
// messages, that are not voided, as currently numbered.
func (r *room) toWriteLocked(dst []rooms.Message, run []pending) []rooms.Message {
	for _, p := range run {
		if _, void := r.voided[p.ev]; !void {
			dst = append(dst, p.ev.Message)
		}
	}
	return dst
}

func (c *committer) append(batch []pending, msgs []rooms.Message) (err error) {
	// A panic in the log's driver fails this attempt, which is retried,
	// rather than the process.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("engine: log append panicked: %v\n%s", p, debug.Stack())
		}
	}()
	ctx, cancel := context.WithTimeout(c.abort, 30*time.Second)
	defer cancel()
	if msgs == nil {
		msgs = c.messages(nil, batch)
	}
	if len(msgs) == 0 {
		return nil
	}
	err = c.m.log.Append(ctx, msgs)
	if !errors.Is(err, rooms.ErrSeqConflict) {
		return err
	}
	// Room by room. A run may be in the log already, as it is: a retry
	// after a commit whose answer was lost, or after an earlier pass of
	// this loop. Otherwise another writer took its sequences: catch up
	// with what it wrote and try again after it.
	for i := 0; i < len(batch); {
		r, j := batch[i].r, i+1
		for j < len(batch) && batch[j].r == r {
			j++
		}
		if err := c.appendRoom(ctx, r, batch[i:j]); err != nil {
			return err
		}
		i = j
	}
	return nil
}

// appendRoom writes one room's run, catching up with other writers until
// it is in the log or the room is reset.
func (c *committer) appendRoom(ctx context.Context, r *room, batch []pending) error {
	for {
		run := c.messages(nil, batch)
		if len(run) == 0 {
			return nil // voided, or the room was reset
		}
		err := c.m.log.Append(ctx, run)
		if !errors.Is(err, rooms.ErrSeqConflict) {
			return err
		}
		there, err := c.inLog(ctx, run)
		if err != nil || there {
			return err
		}
		caught, err := c.catchUp(ctx, r)
		if err != nil || !caught {
			return err
		}
	}
}

// inLog reports whether the log holds run exactly: the same sequences,
// senders, client IDs and bodies.
func (c *committer) inLog(ctx context.Context, run []rooms.Message) (bool, error) {
	got, err := c.m.log.Since(ctx, run[0].Room, run[0].Seq-1, len(run))
	if err != nil || len(got) != len(run) {
		return false, err
	}
	for k, m := range run {
		g := got[k]
		if g.Seq != m.Seq || g.SenderID != m.SenderID || g.ClientID != m.ClientID || g.Body != m.Body {
			return false, nil
		}
	}
	return true, nil
}

// deliver hands a written batch to the rooms' streams, one room lock per
// run of messages of the same room.
func (c *committer) deliver(batch []pending) {
	for i := 0; i < len(batch); {
		r, j := batch[i].r, i+1
		for j < len(batch) && batch[j].r == r {
			j++
		}
		r.mu.Lock()
		r.deliverLocked(batch[i:j])
		r.mu.Unlock()
		i = j
	}
}
