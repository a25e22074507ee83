package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	early   map[string]struct{} // echoed before Send returned
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

func (e *echoes) outstanding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.pending)
}

func (a *app) join(ctx context.Context, code string) error {
	c, err := a.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	pw, err := a.secret("CHATTER_ROOM_PASSWORD", "password for room "+code+": ")
	if err != nil {
		return err
	}
	creds, _ := c.Credentials()
	room, err := c.JoinChatRoom(ctx, code, pw)
	if err != nil {
		return fmt.Errorf("join room %s: %w", code, err)
	}
	p := printer{out: a.io.out, err: a.io.err, json: a.json}
	p.joined(room, creds.UserName)

	track := newEchoes()
	recvErr := make(chan error, 1)
	// The receiver prints the room until the session ends: Disconnect below,
	// or an error that ends it (room deleted, token expired).
	go func() {
		for {
			ev, err := c.Receive(context.Background())
			if err != nil {
				recvErr <- err
				return
			}
			if m, ok := ev.(*client.Message); ok && m.Sender == creds.UserName {
				track.echoed(m.ClientMessageID)
			}
			p.event(ev)
		}
	}()

	inputDone := make(chan error, 1)
	// The reader sends standard input's lines. It returns at end of input
	// or on a send error; a read blocked on a terminal is abandoned when
	// chatter exits.
	go func() {
		sc := bufio.NewScanner(a.io.in)
		sc.Buffer(make([]byte, 0, 64<<10), maxLine)
		for sc.Scan() {
			line := sc.Text()
			if line == "" {
				continue
			}
			id, err := c.Send(ctx, line)
			if err != nil {
				inputDone <- fmt.Errorf("send: %w", err)
				return
			}
			track.sent(id)
		}
		inputDone <- sc.Err()
	}()

	leave := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Disconnect(dctx)
	}
	select {
	case err := <-recvErr:
		return sessionEnded(err)
	case <-ctx.Done():
		leave()
		return nil // interrupted: not an error
	case err := <-inputDone:
		if err != nil && !errors.Is(err, io.EOF) {
			leave()
			return err
		}
	}
	// End of input: wait for the echo of what was sent, then leave.
	deadline := time.NewTimer(a.wait)
	defer deadline.Stop()
	for track.outstanding() > 0 {
		select {
		case <-track.changed:
		case err := <-recvErr:
			return sessionEnded(err)
		case <-deadline.C:
			leave()
			return fmt.Errorf("%d sent message(s) not echoed by the room within %s", track.outstanding(), a.wait)
		case <-ctx.Done():
			leave()
			return nil
		}
	}
	leave()
	<-recvErr
	return nil
}

func sessionEnded(err error) error {
	if errors.Is(err, client.ErrDisconnected) {
		return nil
	}
	return fmt.Errorf("session ended: %w", err)
}

// printer writes events as lines: messages on out, the rest on err as
// "* ..." lines; or everything on out as JSON objects.
type printer struct {
	out, err io.Writer
	json     bool
}

func (p printer) emit(v map[string]any) {
	b, _ := json.Marshal(v)
	fmt.Fprintf(p.out, "%s\n", b)
}

func (p printer) joined(r *client.Room, user string) {
	if p.json {
		names := make([]string, 0, len(r.Users))
		for _, u := range r.Users {
			names = append(names, u.Name)
		}
		p.emit(map[string]any{"type": "joined", "short_code": r.ShortCode, "name": r.Name, "user_name": user, "users": names})
		return
	}
	fmt.Fprintf(p.err, "* joined %s (%s) as %s; %d online\n", r.Name, r.ShortCode, user, len(r.Users))
}

func (p printer) event(ev client.Event) {
	if p.json {
		p.emit(eventJSON(ev))
		return
	}
	switch ev := ev.(type) {
	case *client.Message:
		fmt.Fprintf(p.out, "%s: %s\n", ev.Sender, ev.Body)
	default:
		fmt.Fprintf(p.err, "* %s\n", describeEvent(ev))
	}
}

func eventJSON(ev client.Event) map[string]any {
	switch ev := ev.(type) {
	case *client.Message:
		return map[string]any{"type": "message", "sequence": ev.Sequence, "epoch": ev.Epoch, "sender": ev.Sender,
			"body": ev.Body, "sent_at": ev.SentAt, "client_message_id": ev.ClientMessageID}
	case *client.Presence:
		return map[string]any{"type": "presence", "kind": ev.Kind.String(), "user_name": ev.User, "at": ev.At}
	case *client.Gap:
		return map[string]any{"type": "gap", "previous_epoch": ev.PreviousEpoch, "after_sequence": ev.AfterSequence,
			"epoch": ev.Epoch, "head_sequence": ev.HeadSequence}
	case *client.Connection:
		v := map[string]any{"type": "connection", "state": ev.State.String()}
		if ev.Err != nil {
			v["error"] = ev.Err.Error()
			v["attempt"] = ev.Attempt
		}
		return v
	case *client.RoomDeleted:
		return map[string]any{"type": "room_deleted", "at": ev.At}
	}
	return map[string]any{"type": "unknown"}
}

// describeEvent is an event other than a message in words.
func describeEvent(ev client.Event) string {
	switch ev := ev.(type) {
	case *client.Presence:
		return fmt.Sprintf("%s %s", ev.User, ev.Kind)
	case *client.Gap:
		if ev.PreviousEpoch != ev.Epoch {
			return "the chat service restarted: messages sent while reconnecting may be missing"
		}
		return "some messages may have been missed while reconnecting"
	case *client.Connection:
		if ev.State == client.Reconnecting {
			return fmt.Sprintf("connection lost (%v); reconnecting in %s", ev.Err, ev.Retry.Round(time.Millisecond))
		}
		return "reconnected"
	case *client.RoomDeleted:
		return "the room was deleted"
	case *client.Message:
		return fmt.Sprintf("%s: %s", ev.Sender, ev.Body)
	}
	return "unknown event"
}
