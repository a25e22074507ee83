package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Chat runs one gRPC stream (see serveChat).
func (s *Server) Chat(stream chatv1.ChatService_ChatServer) error {
	adm, err := s.roomFrom(stream.Context())
	if err != nil {
		return err
	}
	return s.serveChat(grpcStream{stream}, &adm)
}

// serveChat runs one Chat stream over t, whatever its transport. adm is
// the stream's admission when the transport authenticated the call before
// it started (gRPC metadata); nil makes the token in the Open frame the
// stream's credential (WebSocket). At the user's stream limit in the
// room, the stream takes the place of the user's oldest one there (see
// replaceOldest).
//
// Three goroutines serve a stream, each with one job:
//   - the handler (this one) opens the subscription and then waits for the
//     stream's end reason (see ender), which it returns as the status;
//   - a reader receives the client's frames and publishes them, at the
//     pace the send limits allow (see pace), so that nothing the client
//     does or fails to do can delay the end;
//   - a writer, which exists only while events are pending (see writer),
//     sends frames, so a client that stops reading blocks only the writer.
//
// Whatever ends the stream (the queue overflowing, the room token
// expiring, Drain, the subscription's end once its last event is written,
// a failed send or receive, a bad frame, a newer stream of the user taking
// its place) hands its reason to the ender;
// the first reason wins. The handler returning ends the stream for the
// transport (gRPC cancels its context, the WebSocket handler drops the
// connection): that releases a writer blocked in a send and the reader
// blocked in Recv.
func (s *Server) serveChat(t transport, adm *token.Room) error {
	c := &conn{s: s, t: t, e: newEnder()}
	return c.run(t.Context(), adm)
}

// conn is one Chat stream.
type conn struct {
	s *Server
	t transport
	e *ender

	// The stream's room and user, from its admission; set before the
	// reader reads past Open.
	code   string
	member rooms.Member

	sub atomic.Pointer[rooms.Subscription] // set once subscribed
	w   *writer                            // set before the reader is started on the stream's frames

	mu         sync.Mutex
	expires    time.Time // of the current room token
	stopExpiry func()    // releases the expiry timer of the current token
	ended      bool      // the handler has returned: no more timers

	prev, next *conn // in the server's open streams, guarded by its lock

	// Set once subscribed, before the reader reads past Open.
	user *userEntry // the stream's user on this instance (userStreams)
	send bucket     // the stream's own send bucket (pace), the reader's alone

	// Guarded by the server's userStreams lock.
	uprev, unext *conn         // in the user's streams, oldest first
	released     chan struct{} // made by a stream waiting to replace this one
}

func (c *conn) run(ctx context.Context, adm *token.Room) error {
	s := c.s
	if adm != nil {
		c.admit(*adm)
	}
	defer c.clearExpiry()
	if !s.streams.add(c) {
		return rooms.ErrShuttingDown
	}
	defer s.streams.remove(c)

	openc := make(chan *chatv1.Open, 1)
	subscribed := make(chan struct{})
	// Owner: run. Exit: when Recv fails, which it does once the client
	// half-closes or the stream has ended for the transport (run
	// returning ends it).
	go func() {
		if err := s.guard(ctx, func() { c.read(ctx, openc, subscribed) }); err != nil {
			c.e.end(err)
		}
	}()
	var open *chatv1.Open
	timer := time.NewTimer(s.cfg.OpenTimeout)
	select {
	case open = <-openc:
		timer.Stop()
	case <-timer.C:
		c.e.end(fmt.Errorf("%w within %s", errNoOpen, s.cfg.OpenTimeout))
		return c.e.result()
	case <-c.e.done:
		timer.Stop()
		return c.e.result()
	}
	if adm == nil {
		a, err := c.openToken(ctx, open.GetToken())
		if err != nil {
			c.e.end(err)
			return c.e.result()
		}
		c.admit(a)
	}
	req := rooms.Open{Backlog: int(min(open.GetBacklog(), uint32(s.cfg.MaxBacklog)))}
	if r := open.GetResume(); r != nil {
		req.Resume = &rooms.Resume{Epoch: r.GetEpoch(), After: r.GetAfterSequence()}
	}
	sub, err := s.engine.Subscribe(ctx, c.code, c.member, req)
	if errors.Is(err, rooms.ErrTooManyStreams) {
		sub, err = c.replaceOldest(ctx, req, err)
	}
	if err != nil {
		c.e.end(err)
		return c.e.result()
	}
	c.user = s.users.add(c)
	defer func() {
		// The subscription gives the user's slot back before a stream
		// waiting to replace this one is woken (see replaceOldest).
		sub.Close()
		s.users.remove(c, s.flow.clock())
	}()
	s.cfg.Metrics.OpenStreams.Inc()
	defer s.cfg.Metrics.OpenStreams.Dec()

	// The writer sends Opened before any event. From Watch on, the
	// subscription starts it whenever events are pending; the reader may
	// publish now, since the subscription exists and the sender sees its
	// own messages.
	c.mu.Lock()
	expires := c.expires
	c.mu.Unlock()
	head := openedEvent(sub.TakeOpened(), s.cfg.MaxMessageBytes, expires)
	c.w = newWriter(s, c.t, sub, c.e.end, head)
	c.sub.Store(sub)
	sub.Watch(c.w)
	c.w.kick()
	// Only now may the reader see a half-close: a writer holds the claim
	// until Opened is sent, so finish cannot find the queue idle before.
	close(subscribed)
	err = c.e.result()
	if errors.Is(err, rooms.ErrSlowConsumer) {
		s.cfg.Metrics.SlowConsumers.Inc()
	}
	return err
}

// read receives the client's frames: Open, handed to run, then, once run
// has subscribed, Send and Refresh frames until the stream ends. Every
// error ends the stream with its reason. When the client half-closes,
// what is already queued is still written, then the stream ends with OK.
func (c *conn) read(ctx context.Context, openc chan<- *chatv1.Open, subscribed <-chan struct{}) {
	req, err := c.t.Recv()
	switch {
	case errors.Is(err, io.EOF):
		c.e.end(fmt.Errorf("%w, got end of stream", errNoOpen))
		return
	case err != nil:
		c.e.end(err)
		return
	case req.GetOpen() == nil:
		c.e.end(fmt.Errorf("%w, got %s", errNoOpen, kindName(req)))
		return
	}
	openc <- req.GetOpen()
	select {
	case <-subscribed:
	case <-c.e.done:
		return
	}
	for {
		req, err := c.t.Recv()
		if errors.Is(err, io.EOF) {
			// What the client sent must reach its queue before the queue
			// is found empty.
			if err := c.s.engine.Flush(ctx); err != nil {
				c.e.end(err)
				return
			}
			c.w.finish() // ends the stream with errFlushed once the queue is written
			return
		}
		if err != nil {
			c.e.end(err)
			return
		}
		if c.e.ended() {
			// RecvMsg may return frames that were already buffered when
			// the stream ended; an ended stream publishes nothing more.
			return
		}
		// Flow control: the frame waits for its token, and nothing more
		// is read meanwhile, so a fast sender is slowed down by its
		// transport's back-pressure rather than cut, and cannot flood the
		// room. An idle stream takes no token.
		if !c.pace(ctx) {
			return
		}
		switch k := req.GetKind().(type) {
		case *chatv1.ChatRequest_Send:
			err = c.publish(ctx, k.Send)
		case *chatv1.ChatRequest_Refresh:
			err = c.refresh(k.Refresh.GetToken())
		default:
			err = rooms.Invalid("kind", "only the first message may be Open; later ones must be Send or Refresh")
		}
		if err != nil {
			c.e.end(err)
			return
		}
	}
}

// publish validates and publishes one Send.
func (c *conn) publish(ctx context.Context, send *chatv1.Send) error {
	s := c.s
	if err := rooms.ValidateSend(send.GetClientMessageId(), send.GetBody(), s.cfg.MaxMessageBytes); err != nil {
		return err
	}
	start := time.Now()
	if _, err := s.engine.Publish(ctx, c.code, c.member, send.GetClientMessageId(), send.GetBody()); err != nil {
		if errors.Is(err, rooms.ErrNotFound) {
			// The room was deleted: the subscription ends with
			// RoomDeleted, and the writer ends the stream with
			// rooms.ErrDeleted once that event is written.
			return nil
		}
		return err
	}
	s.cfg.Metrics.FanoutSeconds.Observe(time.Since(start).Seconds())
	s.cfg.Metrics.MessagesIn.Inc()
	return nil
}

// refresh replaces the stream's room token with raw, which must be a valid
// room token for the same room and user, and confirms it with a Refreshed
// event.
func (c *conn) refresh(raw string) error {
	adm, err := c.s.cfg.Signer.VerifyRoom(raw)
	if err != nil {
		return err
	}
	if adm.Room != c.code {
		return rooms.ErrWrongRoom
	}
	if adm.UserID != c.member.ID {
		return errWrongUser
	}
	c.setExpiry(adm.ExpiresAt)
	if sub := c.sub.Load(); sub != nil {
		sub.Push(&rooms.Event{Kind: rooms.EventRefreshed, At: adm.ExpiresAt})
	}
	return nil
}

// admit makes adm the stream's admission: its room, its user and, since
// the room token is the stream's credential, its end when the token
// expires, unless the client refreshes it first.
func (c *conn) admit(adm token.Room) {
	c.code = adm.Room
	c.member = rooms.Member{ID: adm.UserID, Name: adm.UserName}
	c.setExpiry(adm.ExpiresAt)
}

// openToken verifies the room token that a transport without call
// metadata carries in Open.
func (c *conn) openToken(ctx context.Context, raw string) (token.Room, error) {
	if raw == "" {
		return token.Room{}, errNoOpenToken
	}
	adm, err := c.s.cfg.Signer.VerifyRoom(raw)
	if err != nil {
		return token.Room{}, err
	}
	noteUser(ctx, adm.UserName)
	return adm, nil
}

// setExpiry ends the stream with rooms.ErrRoomTokenExpired at at, instead
// of when the previous token expires.
func (c *conn) setExpiry(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return // a Refresh read after the end: no timer to outlive the stream
	}
	if c.stopExpiry != nil {
		c.stopExpiry()
	}
	c.expires = at
	c.stopExpiry = c.s.cfg.TokenTimer(at, func() { c.e.end(rooms.ErrRoomTokenExpired) })
}

func (c *conn) clearExpiry() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ended = true
	if c.stopExpiry != nil { // nil when the stream ended before its admission
		c.stopExpiry()
	}
}

// kindName names what a client sent instead of Open, for the error it gets.
func kindName(req *chatv1.ChatRequest) string {
	switch req.GetKind().(type) {
	case *chatv1.ChatRequest_Send:
		return "send"
	case *chatv1.ChatRequest_Refresh:
		return "refresh"
	case nil:
		return "an empty message"
	default:
		return "an unknown message kind"
	}
}
