package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// maxLine bounds one line of input; the service has its own, smaller limit.
const maxLine = 1 << 20

// echoes tracks sent messages until the room echoes them back, so that join
// can leave only once everything it read was delivered.
type echoes struct {
	mu      sync.Mutex
	pending map[string]struct{}
	early   map[string]struct{} // echoed (or settled) before Send returned
	failed  error               // the first message the service refused
	changed chan struct{}
}

func newEchoes() *echoes {
	return &echoes{pending: map[string]struct{}{}, early: map[string]struct{}{}, changed: make(chan struct{}, 1)}
}

func (e *echoes) sent(id string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.early[id]; ok {
		delete(e.early, id)
		return
	}
	e.pending[id] = struct{}{}
}

// echoed settles a message: it came back, or it never will (refused, or
// its fate hidden by a gap).
func (e *echoes) echoed(id string) {
	e.mu.Lock()
	if _, ok := e.pending[id]; ok {
		delete(e.pending, id)
	} else {
		e.early[id] = struct{}{}
	}
	e.mu.Unlock()
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

// refused settles a message the service refused and remembers why.
func (e *echoes) refused(id string, err error) {
	e.mu.Lock()
	if e.failed == nil {
		e.failed = err
	}
	e.mu.Unlock()
	e.echoed(id)
}

// settleAll stops waiting for the echoes still pending.
func (e *echoes) settleAll() {
	e.mu.Lock()
	clear(e.pending)
	e.mu.Unlock()
	select {
	case e.changed <- struct{}{}:
	default:
	}
}

func (e *echoes) outstanding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending)
}

func (e *echoes) failure() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.failed
}

func (a *app) join(ctx context.Context, code string) error {
	c, err := a.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	pw, err := a.secret(ctx, "CHATTER_ROOM_PASSWORD", "password for room "+code+": ")
	if err != nil {
		return err
	}
	creds, _ := c.Credentials()
	room, err := c.JoinChatRoom(ctx, code, pw)
	if err != nil {
		return fmt.Errorf("join room %s: %w", code, err)
	}
	p := printer{out: a.io.out, err: a.io.err, json: a.json, dim: a.colorful(a.io.out)}
	p.joined(room, creds.UserName)

	track := newEchoes()
	recvErr := make(chan error, 1)
	// The receiver prints the room until the session ends: Disconnect or
	// Close below, or an error that ends it (room deleted, token expired).
	go func() {
		for {
			ev, err := c.Receive(context.Background())
			if err != nil {
				recvErr <- err
				return
			}
			switch ev := ev.(type) {
			case *client.Message:
				if ev.Sender == creds.UserName {
					track.echoed(ev.ClientMessageID)
				}
			case *client.SendFailed:
				track.refused(ev.ClientMessageID, fmt.Errorf("message not sent: %w", ev.Err))
			case *client.Gap:
				for _, id := range ev.Unconfirmed {
					track.echoed(id) // sent again; the room may not echo it
				}
				for _, f := range ev.Failed {
					track.refused(f.ClientMessageID, fmt.Errorf("message not sent: %w", f.Err))
				}
				if ev.DroppedMessages > 0 {
					// Echoes of ours may be among the messages dropped
					// unread: none of those still awaited can be
					// confirmed any more.
					track.settleAll()
				}
			}
			p.event(ev)
		}
	}()

	inputDone := make(chan error, 1)
	// The reader sends standard input's lines. It returns at end of input,
	// on a line the room cannot take, or on a send error. A read blocked on
	// standard input cannot be cancelled, so when chatter leaves for another
	// reason (interrupt, session ended) the reader is left behind and ends
	// with the process.
	go func() {
		sc := bufio.NewScanner(a.io.in)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		n := 0
		for sc.Scan() {
			n++
			line := sc.Text()
			if line == "" {
				continue
			}
			id, err := c.Send(ctx, line)
			if err != nil {
				inputDone <- fmt.Errorf("line %d not sent: %w", n, err)
				return
			}
			track.sent(id)
		}
		if errors.Is(sc.Err(), bufio.ErrTooLong) {
			inputDone <- usageError{fmt.Sprintf("line %d not sent: longer than %d bytes", n+1, maxLine)}
			return
		}
		inputDone <- sc.Err()
	}()

	leave := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(dctx)
	}
	var inputErr error
	select {
	case err := <-recvErr:
		return sessionEnded(err)
	case <-ctx.Done():
		leave()
		return nil // interrupted: not an error
	case inputErr = <-inputDone:
		if errors.Is(inputErr, io.EOF) {
			inputErr = nil
		}
	}
	// End of input, or a line that could not be sent: wait for the echo of
	// what was sent before, then leave. The wait ends only when echoes stop
	// coming for a.wait: the service reads a fast sender no faster than
	// its rate limit, so a long paste is echoed over a long time, and
	// leaving before would drop what it had not read yet.
	deadline := time.NewTimer(a.wait)
	defer deadline.Stop()
	for track.outstanding() > 0 {
		select {
		case <-track.changed:
			deadline.Reset(a.wait)
		case err := <-recvErr:
			return sessionEnded(err)
		case <-deadline.C:
			leave()
			return errors.Join(inputErr, fmt.Errorf("%d sent message(s) not echoed by the room: no echo for %s", track.outstanding(), a.wait))
		case <-ctx.Done():
			leave()
			return nil
		}
	}
	leave()
	<-recvErr
	if inputErr != nil {
		return inputErr
	}
	return track.failure()
}

func sessionEnded(err error) error {
	if errors.Is(err, client.ErrDisconnected) {
		return nil
	}
	return fmt.Errorf("session ended: %w", err)
}
