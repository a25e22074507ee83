package api

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// web serves the harness's browser transports over real HTTP: the
// WebSocket stream at /v1/chat and the unary calls under HTTPPrefix.
type web struct {
	url string // http://127.0.0.1:port
	ws  *WebSocket
}

func (h *harness) web(origins ...string) *web {
	h.t.Helper()
	ws := h.srv.WebSocket(origins)
	mux := http.NewServeMux()
	mux.Handle("/v1/chat", ws)
	mux.Handle(HTTPPrefix, h.srv.HTTP(origins))
	ts := httptest.NewServer(mux)
	h.t.Cleanup(func() {
		// Hijacked connections are the handlers' to close: end them first.
		h.srv.Drain(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		require.NoError(h.t, ws.Wait(ctx), "WebSocket handlers still running")
		ts.Close()
	})
	return &web{url: ts.URL, ws: ws}
}

// wsClient is a browser-like client of the WebSocket stream.
type wsClient struct {
	t       testing.TB
	c       *websocket.Conn
	ctx     context.Context
	pending []*chatv1.Event
	opened  *chatv1.Opened
}

// dial opens a WebSocket without sending anything.
func (w *web) dial(t testing.TB, header http.Header) (*wsClient, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	c, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(w.url, "http")+"/v1/chat", &websocket.DialOptions{HTTPHeader: header})
	if err != nil {
		return nil, resp, err
	}
	c.SetReadLimit(1 << 22)
	t.Cleanup(func() { _ = c.CloseNow() })
	return &wsClient{t: t, c: c, ctx: ctx}, resp, nil
}

// open dials and opens a stream with open, and reads its Opened event.
func (w *web) open(t testing.TB, open *chatv1.Open) *wsClient {
	t.Helper()
	c, _, err := w.dial(t, nil)
	require.NoError(t, err)
	c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: open}})
	ev := c.next()
	require.NotNil(t, ev.GetOpened(), "first event must be Opened, got %v", ev)
	c.opened = ev.GetOpened()
	return c
}

func (c *wsClient) sendReq(req *chatv1.ChatRequest) {
	c.t.Helper()
	b, err := protojson.Marshal(req)
	require.NoError(c.t, err)
	c.sendText(string(b))
}

func (c *wsClient) sendText(s string) {
	c.t.Helper()
	require.NoError(c.t, c.c.Write(c.ctx, websocket.MessageText, []byte(s)))
}

func (c *wsClient) send(clientID, body string) {
	c.t.Helper()
	c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: clientID, Body: body}}})
}

// recv returns the next event; every frame must be a protojson ChatResponse.
func (c *wsClient) recv() (*chatv1.Event, error) {
	for len(c.pending) == 0 {
		typ, b, err := c.c.Read(c.ctx)
		if err != nil {
			return nil, err
		}
		require.Equal(c.t, websocket.MessageText, typ)
		var res chatv1.ChatResponse
		require.NoError(c.t, protojson.Unmarshal(b, &res), "frame %s", b)
		c.pending = res.Events
	}
	ev := c.pending[0]
	c.pending = c.pending[1:]
	return ev, nil
}

func (c *wsClient) next() *chatv1.Event {
	c.t.Helper()
	ev, err := c.recv()
	require.NoError(c.t, err)
	return ev
}

func (c *wsClient) nextMessage() *chatv1.Message {
	c.t.Helper()
	for {
		if m := c.next().GetMessage(); m != nil {
			return m
		}
	}
}

// closed reads until the server closes the connection and returns the
// close code and reason.
func (c *wsClient) closed() (websocket.StatusCode, string) {
	c.t.Helper()
	for {
		if _, err := c.recv(); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			c.t.Fatalf("connection ended without a close frame: %v", err)
		}
	}
}
