package api

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func openWith(tok string) *chatv1.Open { return &chatv1.Open{Token: tok} }

// Browsers and gRPC clients share one room: every member sees the same
// events in the same order, whatever its transport, and a WebSocket
// stream is a member like any other (presence, listing, own messages).
func TestWebSocketSharesRoomsWithGRPC(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web()
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "mixed", "pw")

	annWS := w.open(t, openWith(h.join(owner, code, "pw")))
	assert.Equal(t, code, annWS.opened.GetShortCode())
	assert.Equal(t, "mixed", annWS.opened.GetName())
	assert.Equal(t, uint32(4096), annWS.opened.GetMaxMessageBytes())
	bobTok := h.member(code, "u2", "bob")
	bob := h.open(h.client, bobTok, nil)
	assert.Equal(t, "bob", annWS.next().GetPresence().GetUserName(), "the WebSocket member sees bob join")
	cyWS := w.open(t, openWith(h.member(code, "u3", "cy")))
	assert.Len(t, cyWS.opened.GetUsers(), 3)

	annWS.send("a1", "from a browser")
	bob.send("b1", "from grpc")
	cyWS.send("c1", "ünïcode ✓ \"quoted\" <b>")
	var orders [3][]string
	for i := range 3 {
		orders[0] = append(orders[0], annWS.nextMessage().GetBody())
		orders[1] = append(orders[1], bob.nextMessage().GetBody())
		m := cyWS.nextMessage()
		orders[2] = append(orders[2], m.GetBody())
		assert.Equal(t, uint64(i+1), m.GetSequence())
	}
	assert.ElementsMatch(t, []string{"from a browser", "from grpc", "ünïcode ✓ \"quoted\" <b>"}, orders[0])
	assert.Equal(t, orders[0], orders[1], "gRPC and WebSocket members see one order")
	assert.Equal(t, orders[0], orders[2])

	users, err := h.client.ListChatRoomUsers(h.ctx(bobTok, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
	require.NoError(t, err)
	assert.Len(t, users.GetUsers(), 3, "WebSocket members are listed")

	// A resumed WebSocket gets what it missed, once.
	last := cyWS.opened
	require.NoError(t, cyWS.c.Close(websocket.StatusNormalClosure, ""))
	bob.send("b2", "while cy was away")
	resumed := w.open(t, &chatv1.Open{Token: h.member(code, "u3", "cy"),
		Resume: &chatv1.Resume{Epoch: last.GetEpoch(), AfterSequence: 3}})
	assert.Equal(t, chatv1.Recovery_RECOVERY_COMPLETE, resumed.opened.GetRecovery())
	m := resumed.nextMessage()
	assert.Equal(t, "while cy was away", m.GetBody())
	assert.Equal(t, uint64(4), m.GetSequence())
}

// Every refusal is answered as documented: before the upgrade with an
// HTTP status, after it with a close code of 4000 + the gRPC code.
func TestWebSocketRefusals(t *testing.T) {
	h := newHarness(t, opts{tcp: true, openTimeout: 300 * time.Millisecond})
	w := h.web("https://allowed.example")
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "r", "pw")

	t.Run("token in the query string", func(t *testing.T) {
		resp, err := http.Get(w.url + "/v1/chat?token=" + h.member(code, "u2", "bob"))
		require.NoError(t, err)
		defer resp.Body.Close()
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
		assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	})
	origins := []struct {
		origin string
		ok     bool
	}{
		{"https://evil.example", false},
		{"http://allowed.example", false}, // the scheme is part of the origin
		{"https://allowed.example", true},
		{w.url, true}, // the page's own origin
		{"", true},    // not a browser
	}
	for _, o := range origins {
		t.Run("origin "+o.origin, func(t *testing.T) {
			hdr := http.Header{}
			if o.origin != "" {
				hdr.Set("Origin", o.origin)
			}
			c, resp, err := w.dial(t, hdr)
			if !o.ok {
				require.Error(t, err)
				require.NotNil(t, resp)
				assert.Equal(t, http.StatusForbidden, resp.StatusCode)
				return
			}
			require.NoError(t, err)
			require.NoError(t, c.c.Close(websocket.StatusNormalClosure, ""))
		})
	}

	closes := []struct {
		name  string
		frame func(c *wsClient)
		code  websocket.StatusCode
	}{
		{"no token", func(c *wsClient) {
			c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}})
		},
			4000 + websocket.StatusCode(codes.Unauthenticated)},
		{"a user token", func(c *wsClient) {
			c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: openWith(owner)}})
		},
			4000 + websocket.StatusCode(codes.Unauthenticated)},
		{"a forged token", func(c *wsClient) {
			c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: openWith(h.member(code, "u2", "bob") + "x")}})
		}, 4000 + websocket.StatusCode(codes.Unauthenticated)},
		{"invalid JSON", func(c *wsClient) { c.sendText(`{"open":`) }, 4000 + websocket.StatusCode(codes.InvalidArgument)},
		{"an unknown field", func(c *wsClient) { c.sendText(`{"open":{"tokn":"x"}}`) }, 4000 + websocket.StatusCode(codes.InvalidArgument)},
		{"Send before Open", func(c *wsClient) { c.sendText(`{"send":{"body":"hi"}}`) }, 4000 + websocket.StatusCode(codes.InvalidArgument)},
		{"a binary frame", func(c *wsClient) { require.NoError(t, c.c.Write(c.ctx, websocket.MessageBinary, []byte("{}"))) },
			4000 + websocket.StatusCode(codes.InvalidArgument)},
		{"an over-size frame", func(c *wsClient) {
			c.sendText(`{"send":{"body":"` + strings.Repeat("x", int(MaxWSFrameSize(4096))) + `"}}`)
		}, websocket.StatusMessageTooBig},
		{"no Open in time", func(*wsClient) {}, 4000 + websocket.StatusCode(codes.InvalidArgument)},
	}
	for _, tt := range closes {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := w.dial(t, nil)
			require.NoError(t, err)
			tt.frame(c)
			code, reason := c.closed()
			assert.Equal(t, tt.code, code, "reason %q", reason)
		})
	}

	t.Run("a body over the limit after Open", func(t *testing.T) {
		c := w.open(t, openWith(h.member(code, "u2", "bob")))
		c.send("x1", strings.Repeat("é", 4096))
		code, reason := c.closed()
		assert.Equal(t, 4000+websocket.StatusCode(codes.InvalidArgument), code)
		assert.Contains(t, reason, "body")
	})
}

// Drain sends every WebSocket away with UNAVAILABLE (4014) once what was
// queued for it is written, and a client that stopped reading holds
// neither its handler nor the shutdown beyond the grace periods.
func TestWebSocketDrain(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web()
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "r", "pw")
	reader := w.open(t, openWith(h.join(owner, code, "pw")))
	staller := w.open(t, openWith(h.member(code, "u2", "bob"))) // never reads again
	sender := h.open(h.client, h.member(code, "u3", "cy"), nil)
	body := strings.Repeat("x", 4000)
	for i := range 200 { // more than the staller's socket buffers hold
		sender.send(fmt.Sprint(i), body)
	}
	for range 200 {
		reader.nextMessage()
	}

	start := time.Now()
	h.srv.Drain(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	require.NoError(t, w.ws.Wait(ctx))
	t.Logf("handlers returned %s after Drain", time.Since(start))
	code2, _ := reader.closed()
	assert.Equal(t, 4000+websocket.StatusCode(codes.Unavailable), code2)
	_ = staller
}

// A client that answers no ping is dropped and leaves the room.
func TestWebSocketDropsSilentClient(t *testing.T) {
	h := newHarness(t, opts{tcp: true, wsPing: 50 * time.Millisecond})
	w := h.web()
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "r", "pw")
	watcher := h.open(h.client, h.join(owner, code, "pw"), nil)
	silent := w.open(t, openWith(h.member(code, "u2", "bob")))
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, watcher.nextPresence().GetKind())
	// The client reads nothing from now on, so it answers no ping (a
	// client's pongs are sent by its reader).
	_ = silent
	p := watcher.nextPresence()
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, p.GetKind())
	assert.Equal(t, "bob", p.GetUserName())
}

// Refresh works over WebSocket as over gRPC: the stream confirms the new
// token's expiry.
func TestWebSocketRefresh(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web()
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "r", "pw")
	c := w.open(t, openWith(h.join(owner, code, "pw")))
	c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Refresh{Refresh: &chatv1.Refresh{Token: h.join(owner, code, "pw")}}})
	var ev *chatv1.Event
	for ev = c.next(); ev.GetRefreshed() == nil; ev = c.next() {
	}
	assert.True(t, ev.GetRefreshed().GetExpiresAt().AsTime().After(time.Now().Add(50*time.Minute)))

	other := h.userToken("u9", "eve")
	otherCode := h.room(other, "other", "pw")
	c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Refresh{Refresh: &chatv1.Refresh{Token: h.join(other, otherCode, "pw")}}})
	code2, _ := c.closed()
	assert.Equal(t, 4000+websocket.StatusCode(codes.PermissionDenied), code2, "a token for another room")
}

// stuckSubscribe is an engine whose Subscribe waits for its context, as
// one would on a store that does not answer.
type stuckSubscribe struct {
	Engine
	entered chan struct{}
}

func (e stuckSubscribe) Subscribe(ctx context.Context, _ string, _ rooms.Member, _ rooms.Open) (*rooms.Subscription, error) {
	e.entered <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// A handler that Drain cannot end (it waits on the engine) holds Wait;
// Close releases it at once.
func TestWebSocketCloseReleasesStuckHandlers(t *testing.T) {
	entered := make(chan struct{}, 1)
	h := newHarness(t, opts{tcp: true, wrap: func(e Engine) Engine { return stuckSubscribe{e, entered} }})
	w := h.web()
	owner := h.userToken("u1", "ann")
	code := h.room(owner, "r", "pw")
	c, _, err := w.dial(t, nil)
	require.NoError(t, err)
	c.sendReq(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: openWith(h.join(owner, code, "pw"))}})
	<-entered

	h.srv.Drain(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, w.ws.Wait(ctx), context.DeadlineExceeded, "the handler waits on the engine")
	w.ws.Close()
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	require.NoError(t, w.ws.Wait(ctx2), "Close ended it")
	_, err = c.recv()
	assert.Error(t, err, "the connection is gone")
}

// An IPv6 page origin, brackets and all, is compared as it is written.
func TestWebSocketIPv6Origin(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	w := h.web("http://[::1]:3000")
	c, resp, err := w.dial(t, http.Header{"Origin": []string{"http://[::1]:3000"}})
	require.NoError(t, err, "%v", resp)
	require.NoError(t, c.c.Close(websocket.StatusNormalClosure, ""))
	_, resp, err = w.dial(t, http.Header{"Origin": []string{"http://[::1]:3001"}})
	require.Error(t, err)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}
