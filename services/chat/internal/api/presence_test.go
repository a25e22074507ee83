package api

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/enginetest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A join storm over real gRPC streams, one of them a WebSocket: with
// presence windows, each member gets at most one frame of presence per
// window it was open for, however many arrived meanwhile, and still
// learns of every later arrival exactly once, as plain Presence events
// that clients already understand. Without windows a member gets an event
// per later arrival, 200×199/2 = 19,900 in all, in up to as many frames.
func TestJoinStormOverTheWire(t *testing.T) {
	const members, perWindow = 200, 20
	w := &enginetest.Windows{}
	h := newHarness(t, opts{tcp: true, presenceWindow: time.Second, afterFunc: w.After})
	web := h.web()
	code := h.room(h.userToken("u0", "owner"), "storm", "pw")

	type member struct {
		name   string
		grpc   *stream
		ws     *wsClient
		opened []*chatv1.RoomUser
	}
	ms := make([]member, members)
	ended := 0
	var client chatv1.ChatServiceClient
	for i := range ms {
		if i%50 == 0 { // the server's limit of streams per connection is 128
			client = chatv1.NewChatServiceClient(h.dial())
		}
		name := fmt.Sprintf("user%03d", i)
		tok, _, err := h.signer.IssueRoom("id-"+name, name, code, time.Hour)
		require.NoError(t, err)
		ms[i].name = name
		if i == members/2 {
			ms[i].ws = web.open(t, openWith(tok))
			ms[i].opened = ms[i].ws.opened.GetUsers()
		} else {
			ms[i].grpc = h.open(client, tok, nil)
			ms[i].opened = ms[i].grpc.opened.GetUsers()
		}
		if (i+1)%perWindow == 0 {
			ended += w.End()
		}
	}
	ended += w.End()
	require.Equal(t, members/perWindow, ended)

	// Each member reads until it knows everyone; the WebSocket's frames
	// are not counted (its client reads events, not frames).
	type outcome struct {
		frames int
		err    error
	}
	out := make([]outcome, members)
	var wg sync.WaitGroup
	for i := range ms {
		wg.Add(1)
		// Owned by the test; ends once the member knows everyone or its
		// stream fails (at the latest at the stream's deadline).
		go func() {
			defer wg.Done()
			m := &ms[i]
			online := make(map[string]bool)
			for _, u := range m.opened {
				online[u.GetUserName()] = true
			}
			add := func(ev *chatv1.Event) error {
				p := ev.GetPresence()
				if p == nil || p.GetKind() != chatv1.PresenceKind_PRESENCE_KIND_JOINED || online[p.GetUserName()] {
					return fmt.Errorf("%s: unexpected %v", m.name, ev)
				}
				online[p.GetUserName()] = true
				return nil
			}
			for len(online) < members {
				if m.ws != nil {
					ev, err := m.ws.recv()
					if err == nil {
						err = add(ev)
					}
					if err != nil {
						out[i].err = err
						return
					}
					continue
				}
				res, err := m.grpc.c.Recv()
				if err != nil {
					out[i].err = fmt.Errorf("%s (knows %d, %d frames): %w", m.name, len(online), out[i].frames, err)
					return
				}
				out[i].frames++
				for _, ev := range res.GetEvents() {
					if err := add(ev); err != nil {
						out[i].err = err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	frames := 0
	for _, o := range out {
		require.NoError(t, o.err)
		frames += o.frames
	}
	assert.LessOrEqual(t, frames, ended*members, "at most one frame of presence per member per window")
	t.Logf("%d members, %d windows: %d presence frames in all", members, ended, frames)
}

// MAX_ROOM_MEMBERS: a further user's stream ends with ResourceExhausted;
// another stream of a user already online opens.
func TestRoomFullOverTheWire(t *testing.T) {
	h := newHarness(t, opts{maxMembers: 1})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	annTok := h.join(ann, code, "pw")
	h.open(h.client, annTok, nil)

	s := h.start(h.client, h.member(code, "u2", "bob"), 5*time.Second)
	require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
	_, err := s.recv()
	for err == nil {
		_, err = s.recv()
	}
	assert.Equal(t, codes.ResourceExhausted, statusCode(err))
	assert.Contains(t, err.Error(), rooms.ErrRoomFull.Error())
	reason, retry := detailsOf(t, status.Convert(err))
	assert.Equal(t, "ROOM_FULL", reason)
	assert.Equal(t, roomFullRetry, retry)

	second := h.open(h.client, annTok, nil)
	assert.Len(t, second.opened.GetUsers(), 1)

	st, internal := toStatus(fmt.Errorf("%w (5000)", rooms.ErrRoomFull))
	assert.Equal(t, codes.ResourceExhausted, st.Code())
	assert.False(t, internal)
}
