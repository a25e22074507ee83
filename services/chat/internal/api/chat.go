package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"

	"github.com/grpcchatter/grpcchatter/pkg/token"
	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Chat runs one stream on its handler goroutine, which reads: it receives
// Open, subscribes, then receives and publishes client frames until the
// stream ends. Frames are written by a writer goroutine that exists only
// while events are pending (see writer), so a client that stops reading
// blocks the writer, never the handler. Everything else that ends the
// stream (the queue overflowing, the room token expiring, Drain, the
// subscription's end once its last event is written, a failed send) ends
// it from where it happens, with its status (see ender): RecvMsg returns
// at once, and the handler returns that reason. So an idle stream holds
// one goroutine, parked in RecvMsg, and its user leaves the room as soon
// as its queue overflows even if the client neither reads nor sends.
func (s *Server) Chat(stream chatv1.ChatService_ChatServer) error {
	ctx := stream.Context()
	e, err := newEnder(ctx)
	if err != nil {
		return err
	}
	return e.result(s.chat(ctx, stream, e))
}

// chat runs the stream for Chat, which makes sure that the status the
// client gets is the reason chat returns.
func (s *Server) chat(ctx context.Context, stream grpc.ServerStream, e *ender) error {
	adm, err := s.streamRoom(ctx)
	if err != nil {
		return err
	}
	member := rooms.Member{ID: adm.UserID, Name: adm.UserName}
	// The room token is the stream's credential: the stream ends when it
	// expires, and the client joins again for a new one.
	stopExpiry := s.cfg.TokenTimer(adm.ExpiresAt, func() { e.end(rooms.ErrRoomTokenExpired) })
	defer stopExpiry()
	if !s.streams.add(e) {
		return rooms.ErrShuttingDown
	}
	defer s.streams.remove(e)

	open, err := s.awaitOpen(ctx, stream, e)
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

	// The writer sends Opened before any event. From Watch on, the
	// subscription starts it whenever events are pending; the handler may
	// publish now, since the subscription exists and the sender sees its
	// own messages.
	head := &chatv1.ChatResponse{Events: []*chatv1.Event{openedEvent(sub.TakeOpened(), s.cfg.MaxMessageBytes)}}
	w := newWriter(s, stream, sub, e.end, head)
	sub.Watch(w)
	w.kick()
	// The reason is settled here, so that it is counted before the
	// deferred Close tells the room that the user left.
	err = e.result(s.receive(ctx, stream, adm.Room, member, w))
	if errors.Is(err, rooms.ErrSlowConsumer) {
		s.cfg.Metrics.SlowConsumers.Inc()
	}
	return err
}

// streamRoom verifies the stream's room token like roomFrom, but on a
// goroutine of its own. Decoding a token takes some 5 KB of stack, which
// on the handler's, already 1.6 KB deep in gRPC, would double it from 8
// to 16 KB for the stream's whole life: Go shrinks a stack only while it
// uses less than a quarter of it, and the handler spends its life 4.5 KB
// down, in RecvMsg.
func (s *Server) streamRoom(ctx context.Context) (token.Room, error) {
	type result struct {
		adm token.Room
		err error
	}
	c := make(chan result, 1)
	// Owner: streamRoom, which waits for it. Exit: once verified.
	go func() {
		adm, err := s.roomFrom(ctx)
		c <- result{adm, err}
	}()
	r := <-c
	return r.adm, r.err
}

// awaitOpen returns the stream's first frame, which must be Open and come
// within the Open timeout.
func (s *Server) awaitOpen(ctx context.Context, stream grpc.ServerStream, e *ender) (*chatv1.Open, error) {
	timeout := s.cfg.OpenTimeout
	timer := time.AfterFunc(timeout, func() { e.end(fmt.Errorf("%w within %s", errNoOpen, timeout)) })
	req, err := recvRequest(stream)
	if !timer.Stop() {
		// The timeout came first, even if a frame came too: the stream
		// ends, with the timeout's status unless another reason came
		// before it, once the timer's function has run.
		<-ctx.Done()
		return nil, ctx.Err()
	}
	if err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w, got end of stream", errNoOpen)
		}
		return nil, err
	}
	if open := req.GetOpen(); open != nil {
		return open, nil
	}
	return nil, fmt.Errorf("%w, got %s", errNoOpen, kindName(req))
}

// receive reads the client's frames after Open until the stream ends, and
// returns why, unless the stream was ended elsewhere: then Chat returns
// that reason instead. Every frame must be a Send, which is validated and
// published. When the client half-closes, what is already queued is still
// written, then the stream ends with OK.
func (s *Server) receive(ctx context.Context, stream grpc.ServerStream, code string, member rooms.Member, w *writer) error {
	// fail ends the stream with err at once, before anything else can: gRPC
	// may already have written a status of its own for a receive error
	// (an over-size frame), and a queue overflowing before the handler
	// returns must not then be counted as the reason. Ending it now also
	// cancels the stream's context, which releases a writer blocked in
	// SendMsg before the handler returns.
	fail := func(err error) error {
		w.end(err)
		return err
	}
	for {
		req, err := recvRequest(stream)
		if errors.Is(err, io.EOF) {
			w.finish() // ends the stream with errFlushed once the queue is written
			<-ctx.Done()
			return ctx.Err()
		}
		if err != nil {
			return fail(err)
		}
		if err := ctx.Err(); err != nil {
			// RecvMsg may return frames that were already buffered when
			// the stream ended; an ended stream publishes nothing more.
			return err
		}
		send := req.GetSend()
		if send == nil {
			return fail(rooms.Invalid("kind", "only the first message may be Open; later ones must be Send"))
		}
		if err := rooms.ValidateSend(send.GetClientMessageId(), send.GetBody(), s.cfg.MaxMessageBytes); err != nil {
			return fail(err)
		}
		start := time.Now()
		if _, err := s.engine.Publish(ctx, code, member, send.GetClientMessageId(), send.GetBody()); err != nil {
			if errors.Is(err, rooms.ErrNotFound) {
				// The room was deleted: the subscription ends with
				// RoomDeleted, and the writer ends the stream with
				// rooms.ErrDeleted once that event is written.
				<-ctx.Done()
				return ctx.Err()
			}
			return fail(err)
		}
		s.cfg.Metrics.FanoutSeconds.Observe(time.Since(start).Seconds())
		s.cfg.Metrics.MessagesIn.Inc()
	}
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
