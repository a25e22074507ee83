package api

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The WebSocket transport speaks the Chat stream's protocol to browsers:
// text frames holding the protojson form of ChatRequest (client) and
// ChatResponse (server), the room token in Open.token, and the stream's
// status as the close frame (see closeCode). Everything else (admission,
// limits, queues, slow-consumer cuts, Drain) is the shared stream core's.

// wsMethod names WebSocket streams in the access log and metrics.
const wsMethod = "WS /v1/chat"

// errClientGone ends a WebSocket stream whose client closed the
// connection, vanished (no pong) or broke it: the equivalent of a gRPC
// client cancelling its stream.
var errClientGone = errors.New("client went away")

// errBinaryFrame means a client sent a binary frame; the protocol is JSON.
var errBinaryFrame = errors.New("frames must be text (JSON)")

// DefaultWSPingInterval is how often a WebSocket is pinged; a client that
// answers none within as long again is dropped, so a vanished browser
// leaves its rooms within twice this.
const DefaultWSPingInterval = 15 * time.Second

// wsCloseGrace bounds the close handshake of a stream that has ended:
// past it, a send still blocked on a client that does not read is failed
// and the connection dropped, so a stalled browser cannot hold a handler
// (or a shutdown).
const wsCloseGrace = time.Second

// MaxWSFrameSize is the WebSocket transport's limit on a client frame for
// a service whose bodies are at most maxBody bytes: JSON may escape a
// byte as six (\u0001), so 6×maxBody + 64 KiB, well above the largest
// valid request, which reaches validation and gets its named error.
func MaxWSFrameSize(maxBody int) int64 { return 6*int64(maxBody) + 64<<10 }

// WebSocket serves the Chat stream over WebSocket at one path. Wait, once
// Drain has ended every stream, returns when their handlers have; Close
// ends those that do not.
type WebSocket struct {
	s       *Server
	opts    websocket.AcceptOptions
	origins []string
	ping    time.Duration
	wg      sync.WaitGroup // running handlers

	// base is every stream's context; Close cancels it, which releases a
	// handler waiting on the engine, and drops every connection in conns.
	base   context.Context
	cancel context.CancelFunc
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

// WebSocket returns the WebSocket transport's handler. origins are the
// origins, as scheme://host[:port], whose pages may open a stream besides
// the handler's own (the request's host); a request without an Origin
// header comes from a program, not a page, and is let through.
func (s *Server) WebSocket(origins []string) *WebSocket {
	ping := s.cfg.WSPingInterval
	if ping <= 0 {
		ping = DefaultWSPingInterval
	}
	base, cancel := context.WithCancel(context.Background())
	return &WebSocket{s: s, ping: ping, origins: origins, base: base, cancel: cancel, conns: map[net.Conn]struct{}{},
		// The origin is checked before Accept (allowedOrigin), as the HTTP
		// calls check it: the library's patterns are path.Match globs, in
		// which an IPv6 origin's brackets would be a character class.
		opts: websocket.AcceptOptions{InsecureSkipVerify: true, CompressionMode: websocket.CompressionDisabled}}
}

// allowedOrigin reports whether a page of origin may open a stream: one
// served by this listener (the origin's host is the request's), one of
// the configured origins, or no page at all (no Origin header: a
// program, which needs a room token like anyone).
func (h *WebSocket) allowedOrigin(origin string, r *http.Request) bool {
	if origin == "" || slices.Contains(h.origins, origin) {
		return true
	}
	u, err := url.Parse(origin)
	return err == nil && strings.EqualFold(u.Host, r.Host)
}

// Close ends every stream that is still open at once, without its close
// handshake: the shutdown's last resort once Wait has given up.
func (h *WebSocket) Close() {
	h.cancel()
	h.mu.Lock()
	defer h.mu.Unlock()
	for c := range h.conns {
		c.Close()
	}
}

func (h *WebSocket) track(c net.Conn, live bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !live {
		delete(h.conns, c)
		return
	}
	if h.base.Err() != nil {
		c.Close() // closed already: no new stream
		return
	}
	h.conns[c] = struct{}{}
}

// Wait blocks until every handler has returned or ctx ends.
func (h *WebSocket) Wait(ctx context.Context) error {
	done := make(chan struct{})
	// Owner: Wait. Exit: when the handlers are done, which Drain and
	// wsCloseGrace bound; if ctx ends first it exits with them.
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ServeHTTP upgrades a request to a WebSocket and runs a Chat stream on
// it until the stream ends, then closes it with the stream's status.
func (h *WebSocket) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s := h.s
	if r.URL.RawQuery != "" {
		// A token in a URL ends up in proxies' and servers' access logs.
		writeHTTPError(w, status.New(codes.InvalidArgument,
			"the chat endpoint takes no query string: send the room token in Open.token"))
		return
	}
	if origin := r.Header.Get("Origin"); !h.allowedOrigin(origin, r) {
		writeHTTPError(w, status.Newf(codes.PermissionDenied, "origin %q may not open a chat stream (WS_ALLOWED_ORIGINS)", origin))
		return
	}
	h.wg.Add(1)
	defer h.wg.Done()
	ci := callWithID(r.Header.Get(requestIDKey))
	start := time.Now()
	w.Header().Set(requestIDKey, ci.requestID)
	hj := &hijacker{ResponseWriter: w}
	c, err := websocket.Accept(hj, r, &h.opts)
	if err != nil {
		// Accept has answered (426 without an upgrade, 400 for a bad
		// handshake); it is the client's mistake, logged at debug only.
		s.cfg.Logger.Debug("websocket refused", zap.Error(err))
		return
	}
	c.SetReadLimit(MaxWSFrameSize(s.cfg.MaxMessageBytes))
	// The stream's context, for its reads, pings and engine calls:
	// cancelled once the handler returns, or by Close.
	ctx, cancel := context.WithCancel(context.WithValue(h.base, callInfoKey{}, ci))
	defer cancel()
	t := &wsStream{c: c, ctx: ctx}
	// From here on the connection is the handler's to close: the close
	// grace below, or Close, drops it.
	h.track(hj.conn, true)
	defer func() {
		h.track(hj.conn, false)
		hj.conn.Close()
	}()
	gone := make(chan error, 1)
	t.gone = gone
	// Owner: this handler. Exit: when ctx is cancelled below, or after
	// dropping the connection when a ping goes unanswered.
	go h.pingLoop(ctx, c, gone)
	if perr := s.guard(ctx, func() { err = s.serveChat(t, nil) }); perr != nil {
		err = perr
	}
	st := status.Convert(s.finish(wsMethod, ci, start, err))
	code, reason := closeCode(st)
	closed := make(chan struct{})
	// Owner: this handler, which waits for it. Exit: once the close
	// handshake is done or the connection is dropped below; the library
	// bounds both.
	go func() { _ = c.Close(code, reason); close(closed) }()
	timer := time.NewTimer(wsCloseGrace)
	defer timer.Stop()
	select {
	case <-closed:
	case <-timer.C:
		hj.conn.Close() // fails a blocked send, and the handshake with it
		<-closed
	}
}

// wsWriteBuffer is a WebSocket's write buffer. net/http hands a hijacked
// connection over with a 4 KiB one, which split a catching-up stream's
// frames (up to 64 events, ~7 KiB at a chat line's size) into two write
// system calls; 8 KiB writes most in one.
const wsWriteBuffer = 8 << 10

// hijacker hands websocket.Accept the connection with a write buffer of
// wsWriteBuffer and keeps it, so that the handler can drop it at once.
type hijacker struct {
	http.ResponseWriter
	conn net.Conn
}

func (h *hijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := h.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, errors.New("the connection cannot be taken over (HTTP/2?)")
	}
	conn, brw, err := hj.Hijack()
	if err != nil {
		return nil, nil, err
	}
	// net/http has sent the handshake's 101 by now; anything it still
	// buffers goes out before the new writer takes over.
	if err := brw.Writer.Flush(); err != nil {
		conn.Close()
		return nil, nil, err
	}
	h.conn = conn
	return conn, bufio.NewReadWriter(brw.Reader, bufio.NewWriterSize(conn, wsWriteBuffer)), nil
}

// pingLoop pings the client every interval; once a ping goes unanswered
// for as long, it drops the connection, which fails the stream's reader,
// and hands the reader the reason.
func (h *WebSocket) pingLoop(ctx context.Context, c *websocket.Conn, gone chan<- error) {
	tick := time.NewTicker(h.ping)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		pctx, cancel := context.WithTimeout(ctx, h.ping)
		err := c.Ping(pctx)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				gone <- fmt.Errorf("%w: no pong within %s", errClientGone, h.ping)
				_ = c.CloseNow()
			}
			return
		}
	}
}

// closeCode maps a stream's status to its close frame: 1000 for OK,
// otherwise 4000 + the gRPC code, with the status message as the reason
// (cut to the 123 bytes a close frame holds).
func closeCode(st *status.Status) (websocket.StatusCode, string) {
	if st.Code() == codes.OK {
		return websocket.StatusNormalClosure, ""
	}
	return websocket.StatusCode(4000 + int(st.Code())), truncateUTF8(st.Message(), 123)
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// wsStream is the WebSocket transport of one stream.
type wsStream struct {
	c    *websocket.Conn
	ctx  context.Context
	gone <-chan error // the ping loop's verdict

	buf []byte // the writer's frame buffer, reused
}

func (t *wsStream) Context() context.Context { return t.ctx }

func (t *wsStream) Recv() (*chatv1.ChatRequest, error) {
	typ, b, err := t.c.Read(t.ctx)
	if err != nil {
		return nil, t.readError(err)
	}
	if typ != websocket.MessageText {
		return nil, errBinaryFrame
	}
	req := new(chatv1.ChatRequest)
	if err := wire.DecodeJSON(b, req); err != nil {
		return nil, fmt.Errorf("%w: %v", rooms.ErrMalformed, err)
	}
	return req, nil
}

// readError says why a read failed: the ping loop's verdict if it has
// one, otherwise the client left. An over-size frame has been answered
// with 1009 by the library already.
func (t *wsStream) readError(err error) error {
	select {
	case perr := <-t.gone:
		return perr
	default:
	}
	if errors.Is(err, io.EOF) || websocket.CloseStatus(err) != -1 {
		return errClientGone
	}
	return fmt.Errorf("%w: %v", errClientGone, err)
}

func (t *wsStream) SendOpened(ev *chatv1.Event) error {
	b, err := protojson.MarshalOptions{}.MarshalAppend(t.buf[:0], &chatv1.ChatResponse{Events: []*chatv1.Event{ev}})
	if err != nil {
		return fmt.Errorf("encode Opened: %w", err)
	}
	return t.write(b)
}

func (t *wsStream) SendEvents(evs []*rooms.Event) error {
	return t.write(wire.AppendJSONFrame(t.buf[:0], evs))
}

// write sends one text frame from b, kept as the buffer of the next.
// Large buffers are not kept: a stream that once sent a big backlog does
// not hold it while idle. The write takes no cancellable context, which
// would cost the library a watcher per frame: a write blocked on a client
// that does not read is failed by the handler dropping the connection.
func (t *wsStream) write(b []byte) error {
	err := t.c.Write(context.Background(), websocket.MessageText, b)
	if cap(b) <= 64<<10 {
		t.buf = b
	} else {
		t.buf = nil
	}
	if err != nil {
		return fmt.Errorf("%w: %v", errClientGone, err)
	}
	return nil
}
