package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// Chat runs one stream. The handler goroutine subscribes, then writes every
// frame itself; one extra goroutine reads client frames and publishes.
func (s *Server) Chat(stream chatv1.ChatService_ChatServer) error {
	ctx := stream.Context()
	adm, err := s.roomFrom(ctx)
	if err != nil {
		return err
	}
	member := rooms.Member{ID: adm.UserID, Name: adm.UserName}

	first := make(chan *chatv1.ChatRequest, 1)
	started := make(chan struct{})
	recvDone := make(chan error, 1)
	// Owner: this handler. Exit: Recv fails at the latest when the handler
	// returns and gRPC finishes the stream; recvDone is buffered so the
	// goroutine's last send never blocks.
	go func() { recvDone <- s.receive(ctx, stream, adm.Room, member, first, started) }()

	var open *chatv1.Open
	timer := time.NewTimer(s.cfg.OpenTimeout)
	select {
	case req := <-first:
		timer.Stop()
		if open = req.GetOpen(); open == nil {
			return fmt.Errorf("%w, got %T", errNoOpen, req.GetKind())
		}
	case err := <-recvDone:
		timer.Stop()
		if err == nil { // closed before opening
			return fmt.Errorf("%w, got end of stream", errNoOpen)
		}
		return err
	case <-timer.C:
		return fmt.Errorf("%w within %s", errNoOpen, s.cfg.OpenTimeout)
	case <-ctx.Done():
		timer.Stop()
		return ctx.Err()
	case <-s.draining:
		timer.Stop()
		return rooms.ErrShuttingDown
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

	if err := stream.Send(&chatv1.ChatResponse{Events: []*chatv1.Event{openedEvent(sub.Opened, s.cfg.MaxMessageBytes)}}); err != nil {
		return err
	}
	close(started)
	return s.deliver(ctx, stream, sub, recvDone)
}

// deliver writes the subscription's events until the stream ends.
func (s *Server) deliver(ctx context.Context, stream chatv1.ChatService_ChatServer, sub *rooms.Subscription, recvDone <-chan error) error {
	var batch []wire.Event
	for {
		select {
		case <-sub.Ready():
		case err := <-recvDone:
			if err != nil {
				return err
			}
			// Half-closed: flush what is already queued, then end with OK.
			return s.flush(stream, sub, &batch)
		case <-ctx.Done():
			return ctx.Err()
		case <-s.draining:
			return rooms.ErrShuttingDown
		}
		var err error
		batch, err = sub.Drain(batch[:0], s.cfg.MaxFrameEvents, s.cfg.MaxFrameBytes)
		if len(batch) > 0 {
			// SendMsg, not Send: the frame is already encoded and the
			// server's codec passes it through.
			if serr := stream.SendMsg(wire.NewFrame(batch)); serr != nil {
				return serr
			}
			s.cfg.Metrics.MessagesOut.Add(float64(len(batch)))
			clear(batch) // drop references to shared events promptly
		}
		if err != nil {
			if errors.Is(err, rooms.ErrSlowConsumer) {
				s.cfg.Metrics.SlowConsumers.Inc()
			}
			return err
		}
	}
}

// flush sends every event already queued, without waiting for more.
func (s *Server) flush(stream chatv1.ChatService_ChatServer, sub *rooms.Subscription, batch *[]wire.Event) error {
	for {
		var err error
		*batch, err = sub.Drain((*batch)[:0], s.cfg.MaxFrameEvents, s.cfg.MaxFrameBytes)
		if len(*batch) == 0 {
			return err
		}
		if serr := stream.SendMsg(wire.NewFrame(*batch)); serr != nil {
			return serr
		}
		s.cfg.Metrics.MessagesOut.Add(float64(len(*batch)))
		clear(*batch)
		if err != nil {
			return err
		}
	}
}

// receive reads client frames. The first goes to first; after started is
// closed (the subscription exists, so the sender sees its own messages),
// every Send is validated and published. It returns nil when the client
// half-closes, which ends the stream with OK.
func (s *Server) receive(ctx context.Context, stream chatv1.ChatService_ChatServer, code string, member rooms.Member,
	first chan<- *chatv1.ChatRequest, started <-chan struct{}) error {
	req, err := stream.Recv()
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
		req, err := stream.Recv()
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
