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

// committer writes accepted messages to the log in batches (a group
// commit: one Append for whatever accumulated while the previous one
// ran) and only then hands them to their rooms' streams, so nobody ever
// sees a message that a crash could take back, and a restart continues
// the same sequences. A failed Append is retried until it succeeds or the
// engine closes: the messages are held, not lost, and Publish waits once
// MaxPending of them are.
type committer struct {
	m *Engine

	mu       sync.Mutex
	queue    []pending
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
			closed := c.closed
			c.mu.Unlock()
			if n == 0 {
				if closed {
					return
				}
				break
			}
			live = c.live(live[:0], batch)
			msgs = msgs[:0]
			for _, p := range live {
				msgs = append(msgs, p.ev.Message)
			}
			if len(msgs) > 0 && !c.write(msgs, live) {
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
// neither forgotten nor deleted: a room reset after a sequence conflict is
// reloaded from the log, and what its old state accepted would conflict
// again (its streams were ended, so their clients resend it); a deleted
// room's history is being dropped. (The idle sweep marks a room deleted
// while it decides, but only a room with nothing pending.)
func (c *committer) live(dst, batch []pending) []pending {
	for i := 0; i < len(batch); {
		r, j := batch[i].r, i+1
		for j < len(batch) && batch[j].r == r {
			j++
		}
		r.mu.Lock()
		gone := r.gone || r.deleted
		r.mu.Unlock()
		if !gone {
			dst = append(dst, batch[i:j]...)
		}
		i = j
	}
	return dst
}

// write appends msgs, retrying with backoff, and reports false if close
// gave up meanwhile. A sequence conflict means another writer shares the
// log (two instances on one database without a shared engine): the rooms
// concerned are written one by one, and those that conflict are reset.
func (c *committer) write(msgs []rooms.Message, batch []pending) bool {
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 2*time.Second) {
		err := c.append(msgs, batch)
		if err == nil {
			return true
		}
		c.m.cfg.Report(fmt.Errorf("engine: write %d messages to the log (retrying in %s): %w", len(msgs), delay, err))
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-c.abort.Done():
			t.Stop()
			return false
		}
	}
}

func (c *committer) append(msgs []rooms.Message, batch []pending) (err error) {
	// A panic in the log's driver fails this attempt, which is retried,
	// rather than the process.
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("engine: log append panicked: %v\n%s", p, debug.Stack())
		}
	}()
	ctx, cancel := context.WithTimeout(c.abort, 30*time.Second)
	defer cancel()
	err = c.m.log.Append(ctx, msgs)
	if !errors.Is(err, rooms.ErrSeqConflict) {
		return err
	}
	// Room by room. A run may be in the log already, as it is: a retry
	// after a commit whose answer was lost, or after an earlier pass of
	// this loop. Otherwise another writer took its sequences.
	for i := 0; i < len(msgs); {
		j := i
		for j < len(msgs) && msgs[j].Room == msgs[i].Room {
			j++
		}
		run := msgs[i:j]
		err := c.m.log.Append(ctx, run)
		if errors.Is(err, rooms.ErrSeqConflict) {
			var there bool
			if there, err = c.inLog(ctx, run); err == nil && !there {
				c.m.reset(batch[i].r)
				c.m.cfg.Report(fmt.Errorf("engine: room %s: %d messages refused by the log, which another writer changed: %w",
					run[0].Room, len(run), rooms.ErrSeqConflict))
			}
		}
		if err != nil {
			return err
		}
		i = j
	}
	return nil
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
