package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Chat runs one stream with up to three goroutines. The handler goroutine
// subscribes and then only waits: for the subscription to overflow or end,
// for the reader to finish, or for the stream to be cancelled, and it
// returns the status itself. One goroutine reads client frames and
// publishes. Frames are written by a writer goroutine that exists only
// while events are pending (see writer), so a client that stops reading
// blocks the writer, never the handler: its stream ends, and its user
// leaves the room, as soon as its queue overflows.
func (s *Server) Chat(stream chatv1.ChatService_ChatServer) error {
	ctx := stream.Context()
	adm, err := s.roomFrom(ctx)
	if err != nil {
		return err
	}
	member := rooms.Member{ID: adm.UserID, Name: adm.UserName}
	// The room token is the stream's credential: the stream ends when it
	// expires, and the client joins again for a new one.
	expired, stopTimer := s.cfg.TokenTimer(adm.ExpiresAt)
	defer stopTimer()

	first := make(chan *chatv1.ChatRequest, 1)
	started := make(chan struct{})
	recvDone := make(chan error, 1)
	// Owner: this handler. Exit: Recv fails at the latest when the handler
	// returns and gRPC finishes the stream; recvDone is buffered so the
	// goroutine's last send never blocks.
	go func() { recvDone <- s.receive(ctx, stream, adm.Room, member, first, started) }()

	open, err := s.awaitOpen(ctx, first, recvDone)
	if err != nil {
		return err
	}
	var resume *rooms.Resume
	if r := open.GetResume(); r != nil {
		resume = &rooms.Resume{Epoch: r.GetEpoch(), After: r.GetAfterSequence()}
	}
	sub, err := s.engine.Subscribe(ctx, adm.Room, member, resume)
	if err != nil {
		return err
	}
	defer sub.Close()
	s.cfg.Metrics.OpenStreams.Inc()
	defer s.cfg.Metrics.OpenStreams.Dec()

	// The writer sends Opened before any event; the reader may publish
	// now, since the subscription exists and the sender sees its own.
	w := newWriter(s, stream, sub, &chatv1.ChatResponse{Events: []*chatv1.Event{openedEvent(sub.Opened, s.cfg.MaxMessageBytes)}})
	w.kick()
	close(started)
	err = s.wait(ctx, sub, w, recvDone, expired)
	if errors.Is(err, rooms.ErrSlowConsumer) {
		s.cfg.Metrics.SlowConsumers.Inc()
	}
	return err
}

// awaitOpen returns the stream's first frame, which must be Open.
func (s *Server) awaitOpen(ctx context.Context, first <-chan *chatv1.ChatRequest, recvDone <-chan error) (*chatv1.Open, error) {
	timer := time.NewTimer(s.cfg.OpenTimeout)
	defer timer.Stop()
	select {
	case req := <-first:
		if open := req.GetOpen(); open != nil {
			return open, nil
		}
		return nil, fmt.Errorf("%w, got %s", errNoOpen, kindName(req))
	case err := <-recvDone:
		if err == nil { // closed before opening
			return nil, fmt.Errorf("%w, got end of stream", errNoOpen)
		}
		return nil, err
	case <-timer.C:
		return nil, fmt.Errorf("%w within %s", errNoOpen, s.cfg.OpenTimeout)
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-s.draining:
		return nil, rooms.ErrShuttingDown
	}
}

// wait runs the open stream until it ends and returns why. After the
// client half-closes, what is already queued is still written, then the
// stream ends with OK.
func (s *Server) wait(ctx context.Context, sub *rooms.Subscription, w *writer, recvDone <-chan error, expired <-chan time.Time) error {
	halfClosed := false
	for {
		if err := sub.Overflowed(); err != nil {
			return err
		}
		if err := w.Err(); err != nil {
			return err
		}
		if halfClosed && w.Idle() {
			return nil
		}
		select {
		case <-sub.Ready():
			w.kick()
		case <-w.Stopped():
		case err := <-recvDone:
			if err != nil {
				return err
			}
			halfClosed, recvDone = true, nil
			w.finish()
		case <-expired:
			return rooms.ErrRoomTokenExpired
		case <-ctx.Done():
			return ctx.Err()
		case <-s.draining:
			return rooms.ErrShuttingDown
		}
	}
}

// receive reads client frames. The first goes to first; after started is
// closed (the subscription exists, so the sender sees its own messages),
// every Send is validated and published. It returns nil when the client
// half-closes, which ends the stream with OK.
func (s *Server) receive(ctx context.Context, stream chatv1.ChatService_ChatServer, code string, member rooms.Member,
	first chan<- *chatv1.ChatRequest, started <-chan struct{}) error {
	req, err := recvRequest(stream)
	if err != nil {
		return recvErr(err)
	}
	first <- req // buffered, read at most once
	select {
	case <-started:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		req, err := recvRequest(stream)
		if err != nil {
			return recvErr(err)
		}
		send := req.GetSend()
		if send == nil {
			return rooms.Invalid("kind", "only the first message may be Open; later ones must be Send")
		}
		if err := rooms.ValidateSend(send.GetClientMessageId(), send.GetBody(), s.cfg.MaxMessageBytes); err != nil {
			return err
		}
		start := time.Now()
		if _, err := s.engine.Publish(ctx, code, member, send.GetClientMessageId(), send.GetBody()); err != nil {
			if errors.Is(err, rooms.ErrNotFound) {
				// The room was deleted: the subscription ends with
				// RoomDeleted and NotFound, which the handler delivers.
				// Returning now could race it and lose that event.
				<-ctx.Done()
				return ctx.Err()
			}
			return err
		}
		s.cfg.Metrics.FanoutSeconds.Observe(time.Since(start).Seconds())
		s.cfg.Metrics.MessagesIn.Inc()
	}
}

func recvErr(err error) error {
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// kindName names what a client sent instead of Open, for the error it gets.
func kindName(req *chatv1.ChatRequest) string {
	switch req.GetKind().(type) {
	case *chatv1.ChatRequest_Send:
		return "send"
	case nil:
		return "an empty message"
	default:
		return "an unknown message kind"
	}
}
