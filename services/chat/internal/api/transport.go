package api

import (
	"context"

	"google.golang.org/grpc"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// transport carries one Chat stream: a gRPC stream or a WebSocket. The
// stream's core (conn, writer) speaks to the client through it alone, so
// that both transports share authentication, limits, flow, slow-consumer
// cuts and shutdown. Recv is called from one goroutine, the sends from
// one other (the writer holding the subscription's claim).
type transport interface {
	// Context ends when the stream has ended for the transport. A send or
	// Recv blocked on a stalled client fails once the stream has ended:
	// gRPC cancels the context, the WebSocket handler drops the
	// connection.
	Context() context.Context
	// Recv returns the client's next request: io.EOF once the client has
	// half-closed, an error wrapping rooms.ErrMalformed for one that does
	// not decode.
	Recv() (*chatv1.ChatRequest, error)
	// SendOpened sends the stream's first frame, which holds ev alone.
	SendOpened(ev *chatv1.Event) error
	// SendEvents sends one frame of events, each in the transport's
	// encoding, made once per event and shared by every stream.
	SendEvents(evs []*rooms.Event) error
}

// grpcStream is the gRPC transport: frames are pre-encoded protobuf
// (wire.Frame), which the server's codec passes through.
type grpcStream struct{ grpc.ServerStream }

func (g grpcStream) Recv() (*chatv1.ChatRequest, error) { return recvRequest(g.ServerStream) }

func (g grpcStream) SendOpened(ev *chatv1.Event) error {
	return g.SendMsg(&chatv1.ChatResponse{Events: []*chatv1.Event{ev}})
}

// SendEvents uses SendMsg, not Send: the frame is already encoded.
func (g grpcStream) SendEvents(evs []*rooms.Event) error { return g.SendMsg(wire.NewFrame(evs)) }
