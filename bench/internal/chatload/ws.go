package chatload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Transport is how members' Chat streams reach the service.
type Transport string

// The transports of the Chat stream.
const (
	// GRPC streams over gRPC, StreamsPerConn members sharing each client
	// connection (the default).
	GRPC Transport = "grpc"
	// WebSocket streams over the chat service's web listener
	// (Target.WebAddr), one connection per member as browsers have:
	// protojson text frames, the room token in Open.token.
	WebSocket Transport = "websocket"
)

// memberStream is one member's Chat stream, whatever its transport.
type memberStream interface {
	send(req *chatv1.ChatRequest) error
	// recv returns the next ChatResponse frame in the transport's
	// encoding, valid until the next recv. A stream that ended returns a
	// status error: codes.Canceled when this side ended it.
	recv() ([]byte, error)
	// walk calls onMessage with the client ID and body of every message
	// event in frame, and reports whether it held an Opened event.
	walk(frame []byte, onMessage func(id, body []byte)) (opened bool, err error)
}

// wsPath is where the chat service serves the Chat stream over WebSocket.
const wsPath = "/v1/chat"

// wsReadLimit bounds a server frame: a burst member's frame carries up to
// a queue of events, well above the library's 32 KiB default.
const wsReadLimit = 16 << 20

// wsDialer opens members' WebSockets to one web listener.
type wsDialer struct {
	url    string
	client *http.Client
}

// newWSDialer returns a dialer for the web listener at addr (host:port).
// Its own transport keeps proxies from the environment out of the way.
func newWSDialer(addr string) *wsDialer {
	d := &net.Dialer{Timeout: 10 * time.Second}
	return &wsDialer{url: "ws://" + addr + wsPath, client: &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}}
}

func (d *wsDialer) close() { d.client.CloseIdleConnections() }

// wsStream is a Chat stream over WebSocket.
type wsStream struct {
	c   *websocket.Conn
	ctx context.Context // the stream's life: when it ends, the connection is dropped
	buf []byte          // the last frame received, reused
	out []byte          // the last frame sent, reused
}

// openWS dials a WebSocket, opens the Chat stream with the room token tok
// and waits for Opened. The connection lives until ctx ends.
func openWS(ctx context.Context, d *wsDialer, tok string) (*wsStream, error) {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(dctx, d.url, &websocket.DialOptions{HTTPClient: d.client})
	if err != nil {
		return nil, fmt.Errorf("dial %s (-skip ws leaves the WebSocket section out): %w", d.url, err)
	}
	c.SetReadLimit(wsReadLimit)
	// Reads and writes run without a context of their own: the library
	// would register and cancel a context callback on every frame, which
	// the generator would pay for each delivery. Dropping the connection
	// once ctx ends unblocks them instead.
	context.AfterFunc(ctx, func() { _ = c.CloseNow() })
	s := &wsStream{c: c, ctx: ctx}
	if err := s.send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{Token: tok}}}); err != nil {
		_ = c.CloseNow()
		return nil, fmt.Errorf("send open: %w", err)
	}
	frame, err := s.recv()
	if err != nil {
		_ = c.CloseNow()
		return nil, fmt.Errorf("await opened: %w", err)
	}
	opened, err := s.walk(frame, func(_, _ []byte) {})
	if err == nil && !opened {
		err = errors.New("first event was not Opened")
	}
	if err != nil {
		_ = c.CloseNow()
		return nil, err
	}
	return s, nil
}

func (s *wsStream) send(req *chatv1.ChatRequest) error {
	b, err := protojson.MarshalOptions{}.MarshalAppend(s.out[:0], req)
	if err != nil {
		return err
	}
	s.out = b
	if err := s.c.Write(context.Background(), websocket.MessageText, b); err != nil {
		return s.ended(err)
	}
	return nil
}

func (s *wsStream) recv() ([]byte, error) {
	typ, r, err := s.c.Reader(context.Background())
	if err != nil {
		return nil, s.ended(err)
	}
	s.buf = s.buf[:0]
	for {
		if len(s.buf) == cap(s.buf) {
			s.buf = append(s.buf, 0)[:len(s.buf)]
		}
		n, err := r.Read(s.buf[len(s.buf):cap(s.buf)])
		s.buf = s.buf[:len(s.buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, s.ended(err)
		}
	}
	if typ != websocket.MessageText {
		return nil, status.Error(codes.Internal, "binary frame from the server")
	}
	return s.buf, nil
}

func (s *wsStream) walk(frame []byte, onMessage func(id, body []byte)) (bool, error) {
	return walkJSONFrame(frame, onMessage)
}

// ended turns the error that ended a WebSocket into the stream's status:
// Canceled when this side dropped it, the gRPC code of a close code 4000
// + code, Unknown otherwise (as a gRPC stream's io.EOF).
func (s *wsStream) ended(err error) error {
	if s.ctx.Err() != nil {
		return status.Error(codes.Canceled, "stream ended by the generator")
	}
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Code >= 4000 && ce.Code <= 4016 {
			return status.Error(codes.Code(ce.Code-4000), ce.Reason)
		}
		return status.Errorf(codes.Unknown, "closed with %d %s", ce.Code, ce.Reason)
	}
	return status.Errorf(codes.Unavailable, "websocket: %v", err)
}
