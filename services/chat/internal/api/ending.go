package api

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A Chat handler spends its stream's life blocked in RecvMsg, which
// returns early only when the stream's context ends, and then writes the
// stream's status itself: Canceled, whatever the reason. So whatever else
// must end the stream (an overflowing queue, the token's expiry, Drain,
// the writer) writes the status it wants first, through the transport
// stream, which ends the stream: its context is cancelled, RecvMsg
// returns, and its own status comes too late to replace the first one.
//
// gRPC has no public API for writing a status from outside the handler;
// the transport stream that it puts in the context has the method, though
// not in the interface it declares it as. Should that change, Chat fails
// every stream with Internal (errNoStatusWriter) and the tests notice.

// statusWriter is the part of gRPC's transport stream that ends it.
type statusWriter interface {
	WriteStatus(*status.Status) error
}

// errNoStatusWriter means that the context of a Chat stream carries no
// transport stream that can write its status.
var errNoStatusWriter = errors.New("api: the gRPC transport stream cannot end a Chat stream with a status")

// errFlushed is the writer's reason to end a stream once everything queued
// before the client half-closed has been written: the stream ends with OK.
var errFlushed = errors.New("half-closed stream flushed")

// errReturned marks a stream whose handler has returned: nothing else may
// end it any more.
var errReturned = errors.New("handler returned")

// ender ends one Chat stream from any goroutine, with the first reason
// given.
type ender struct {
	sw statusWriter

	mu  sync.Mutex
	err error // the first reason; nil while the stream runs

	prev, next *ender // in the server's open streams, guarded by its lock
}

// newEnder returns the ender of the stream whose context is ctx.
func newEnder(ctx context.Context) (*ender, error) {
	sw, ok := grpc.ServerTransportStreamFromContext(ctx).(statusWriter)
	if !ok {
		return nil, errNoStatusWriter
	}
	return &ender{sw: sw}, nil
}

// end ends the stream with err's status unless it has ended already. It
// does not block: the status is queued behind the frames already sent,
// so an event whose SendMsg returned before end still reaches the client
// first; a SendMsg still blocked on flow control is abandoned. A client
// that has stopped reading sees the status only once it reads what is
// queued before it; on the server the stream ends at once. The stream's
// context is cancelled, which wakes the handler.
func (e *ender) end(err error) {
	if !e.set(err) {
		return
	}
	st := status.New(codes.OK, "")
	if err != errFlushed {
		st, _ = toStatus(err) // an internal error is logged when the handler returns it
	}
	_ = e.sw.WriteStatus(st) // fails only if the stream has ended anyway
}

// set records err as the reason unless there is one, and reports whether
// it did.
func (e *ender) set(err error) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.err != nil {
		return false
	}
	e.err = err
	return true
}

// result is what the handler returns when it would return err: the
// reason the stream was ended with if it was (errFlushed becomes nil, OK),
// else err. From then on nothing else ends the stream, so the client sees
// the status of the error the handler returns. Later calls return err.
func (e *ender) result(err error) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.err {
	case nil:
		e.err = errReturned
		return err
	case errReturned:
		return err
	case errFlushed:
		return nil
	default:
		return e.err
	}
}

// openStreams are the Chat streams that Drain ends, in a list through
// their enders, so that an open stream costs two pointers here rather
// than a registration on a context or a goroutine waiting for Drain.
type openStreams struct {
	mu      sync.Mutex
	head    *ender
	drained bool
}

// add registers e, unless Drain has been called: then it reports false.
func (l *openStreams) add(e *ender) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained {
		return false
	}
	e.next = l.head
	if l.head != nil {
		l.head.prev = e
	}
	l.head = e
	return true
}

// remove unregisters e, which add registered.
func (l *openStreams) remove(e *ender) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.drained {
		return // drain has taken the list
	}
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		l.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	}
	e.prev, e.next = nil, nil
}

// drain ends every registered stream with err, and makes add refuse
// from now on.
func (l *openStreams) drain(err error) {
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
	for e := head; e != nil; e = e.next {
		e.end(err)
	}
}
