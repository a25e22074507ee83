package api

import (
	"errors"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// errFlushed is the writer's reason to end a stream once everything queued
// before the client half-closed has been written: the stream ends with OK.
var errFlushed = errors.New("half-closed stream flushed")

// ender collects the reason a Chat stream ends, from any goroutine: the
// first reason given wins, and the handler, waiting on done, returns it.
type ender struct {
	once sync.Once
	err  error
	done chan struct{} // closed once err is set
}

func newEnder() *ender { return &ender{done: make(chan struct{})} }

// end ends the stream with err unless it has ended already. It does not
// block.
func (e *ender) end(err error) {
	e.once.Do(func() {
		e.err = err
		close(e.done)
	})
}

// ended reports whether the stream has an end reason.
func (e *ender) ended() bool {
	select {
	case <-e.done:
		return true
	default:
		return false
	}
}

// result waits for the end reason and returns it as the handler's error:
// errFlushed becomes nil, OK.
func (e *ender) result() error {
	<-e.done
	if e.err == errFlushed {
		return nil
	}
	return e.err
}

// openStreams are the Chat streams that Drain ends, in a list through
// the conns, so that an open stream costs two pointers here rather than a
// registration on a context or a goroutine waiting for Drain.
type openStreams struct {
	mu      sync.Mutex
	head    *conn
	drained bool
}

// add registers c, unless Drain has been called: then it reports false.
func (l *openStreams) add(c *conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained {
		return false
	}
	c.next = l.head
	if l.head != nil {
		l.head.prev = c
	}
	l.head = c
	return true
}

// remove unregisters c, which add registered.
func (l *openStreams) remove(c *conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained {
		return // drain has taken the list
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	}
	c.prev, c.next = nil, nil
}

// drain makes add refuse from now on and ends every registered stream
// with rooms.ErrShuttingDown: a subscribed stream once what is queued for
// it has been written, or after grace if its client does not read it; any
// other at once.
func (l *openStreams) drain(grace time.Duration) {
	l.mu.Lock()
	if l.drained {
		l.mu.Unlock()
		return
	}
	l.drained = true
	head := l.head
	l.head = nil
	l.mu.Unlock()
	// The list is drain's alone now: remove leaves it alone. Ending a
	// stream does not block.
	for c := head; c != nil; c = c.next {
		if sub := c.sub.Load(); sub != nil {
			sub.End(nil, rooms.ErrShuttingDown)
		} else {
			c.e.end(rooms.ErrShuttingDown)
		}
	}
	if head != nil {
		time.AfterFunc(grace, func() {
			for c := head; c != nil; c = c.next {
				c.e.end(rooms.ErrShuttingDown)
			}
		})
	}
}
