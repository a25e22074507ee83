package api

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpcchatter/grpcchatter/internal/tcpproxy"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// At MAX_STREAMS_PER_USER, a new stream of the user in the room replaces
// the user's oldest stream there: the oldest ends with Aborted (over
// WebSocket, close code 4010), the others are left alone, and the new one
// is admitted and receives the room.
func TestOwnStreamReplacedAtLimit(t *testing.T) {
	for _, ws := range []bool{false, true} {
		t.Run(map[bool]string{false: "grpc", true: "websocket"}[ws], func(t *testing.T) {
			h := newHarness(t, opts{maxStreams: 2})
			ann := h.userToken("u1", "ann")
			code := h.room(ann, "room", "pw")
			tok := h.join(ann, code, "pw")
			other := h.open(h.client, h.join(ann, h.room(ann, "other", "pw"), "pw"), nil)
			bob := h.open(h.client, h.member(code, "u2", "bob"), nil)

			var oldest *stream
			var oldestWS *wsClient
			if ws {
				oldestWS = h.web().open(t, &chatv1.Open{Token: tok})
			} else {
				oldest = h.open(h.client, tok, nil)
			}
			second := h.open(h.client, tok, nil)
			newest := h.open(chatv1.NewChatServiceClient(h.dial()), tok, nil)

			if ws {
				code, reason := oldestWS.closed()
				assert.Equal(t, websocket.StatusCode(4000+int(codes.Aborted)), code)
				assert.Contains(t, reason, "replaced")
			} else {
				assert.Equal(t, codes.Aborted, oldest.end())
			}
			bob.send("1", "still here?")
			for _, s := range []*stream{second, newest, bob} {
				assert.Equal(t, "still here?", s.nextMessage().Body)
			}
			l, err := h.client.ListChatRoomUsers(h.ctx(tok, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
			require.NoError(t, err)
			assert.Equal(t, []string{"ann", "bob"}, names(l.Users))
			assert.Equal(t, uint32(2), l.Users[0].Streams)
			assert.Equal(t, 1.0, testutil.ToFloat64(h.srv.cfg.Metrics.StreamsReplaced))

			// The stream in another room was not the one replaced.
			other.send("2", "elsewhere")
			assert.Equal(t, "elsewhere", other.nextMessage().Body)
		})
	}
}

// refuseStreams is an engine whose Subscribe refuses every stream of one
// room with ErrTooManyStreams, as when the user's other streams there are
// on other instances.
type refuseStreams struct {
	Engine
	room atomic.Pointer[string]
}

func (r *refuseStreams) Subscribe(ctx context.Context, code string, m rooms.Member, open rooms.Open) (*rooms.Subscription, error) {
	if p := r.room.Load(); p != nil && *p == code {
		return nil, fmt.Errorf("%w (1)", rooms.ErrTooManyStreams)
	}
	return r.Engine.Subscribe(ctx, code, m, open)
}

// Without a stream of the user in the room on this instance, the limit's
// refusal stands (ResourceExhausted), and no stream of the user in
// another room is touched.
func TestStreamLimitWithoutOwnStreamHere(t *testing.T) {
	refuse := &refuseStreams{}
	h := newHarness(t, opts{maxStreams: 1, wrap: func(e Engine) Engine { refuse.Engine = e; return refuse }})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	full := h.room(ann, "full elsewhere", "pw")
	refuse.room.Store(&full)
	here := h.open(h.client, h.join(ann, code, "pw"), nil)

	s := h.start(h.client, h.join(ann, full, "pw"), 5*time.Second)
	require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
	assert.Equal(t, codes.ResourceExhausted, s.end())
	assert.Zero(t, testutil.ToFloat64(h.srv.cfg.Metrics.StreamsReplaced))
	here.send("1", "untouched")
	assert.Equal(t, "untouched", here.nextMessage().Body)
}

// A client that vanishes (its connection stops carrying anything, with no
// FIN or RST) does not keep its user out at MAX_STREAMS_PER_USER=1: the
// user's reconnect, at once, replaces the ghost, is admitted and
// receives the room; once the network comes back, the ghost's stream is
// seen to have ended with Aborted.
func TestGhostReplaced(t *testing.T) {
	h := newHarness(t, opts{tcp: true, maxStreams: 1})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")
	bob := h.open(h.client, h.member(code, "u2", "bob"), nil)

	p, conn := h.viaProxy()
	ghost := h.open(chatv1.NewChatServiceClient(conn), tok, nil)
	bob.send("1", "before")
	require.Equal(t, "before", ghost.nextMessage().Body)
	p.Freeze()

	back := h.open(chatv1.NewChatServiceClient(h.dial()), tok, nil)
	bob.send("2", "after")
	assert.Equal(t, "after", back.nextMessage().Body)
	assert.Equal(t, []string{"ann", "bob"}, names(back.opened.Users))
	assert.Equal(t, 1.0, testutil.ToFloat64(h.srv.cfg.Metrics.StreamsReplaced))

	p.Thaw()
	assert.Equal(t, codes.Aborted, ghost.end(), "the ghost's end, once it can be seen")
}

// A client that vanishes and does not come back is gone from
// ListChatRoomUsers within 30 s: the server's keepalive (KeepaliveTime +
// KeepaliveTimeout, 20 s) finds the connection dead. It waits for the
// real keepalive, so it runs in parallel with the other tests.
func TestVanishedClientLeavesList(t *testing.T) {
	t.Parallel()
	h := newHarness(t, opts{tcp: true, maxStreams: 1})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	watcher := h.join(ann, code, "pw")
	p, conn := h.viaProxy()
	h.open(chatv1.NewChatServiceClient(conn), h.member(code, "u2", "bob"), nil)
	listed := func() []string {
		l, err := h.client.ListChatRoomUsers(h.ctx(watcher, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
		require.NoError(t, err)
		return names(l.Users)
	}
	require.Equal(t, []string{"bob"}, listed())

	p.Freeze()
	vanished := time.Now()
	for len(listed()) > 0 && time.Since(vanished) < time.Minute {
		time.Sleep(250 * time.Millisecond)
	}
	gone := time.Since(vanished)
	t.Logf("the vanished client left the list after %s", gone.Round(100*time.Millisecond))
	assert.Empty(t, listed())
	assert.LessOrEqual(t, gone, 30*time.Second, "gone within the documented bound")
}

// viaProxy is a client connection to the server through a proxy of its
// own, which the test freezes to make the client vanish as a closed laptop
// lid or a lost mobile network does: no FIN, no RST, nothing answered.
func (h *harness) viaProxy() (*tcpproxy.Proxy, *grpc.ClientConn) {
	p, err := tcpproxy.Listen(h.addr)
	require.NoError(h.t, err)
	h.t.Cleanup(p.Close)
	c, err := grpc.NewClient(p.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(h.t, err)
	h.t.Cleanup(func() { _ = c.Close() })
	return p, c
}
