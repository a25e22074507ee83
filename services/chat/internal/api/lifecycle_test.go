package api

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// A stream that stops reading fills its buffers and then its small queue;
// it ends with ResourceExhausted while the others keep receiving, and it
// resumes from its last sequence without loss.
func TestStalledStreamResumes(t *testing.T) {
	const total = 400
	h := newHarness(t, opts{queue: 4, history: 1000, maxBody: 2048})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	sender := h.open(h.client, h.join(ann, code, "pw"), nil)
	// The stalled client has a connection of its own, like a real device.
	stalledTok := h.member(code, "u2", "stalled")
	stalled := h.open(chatv1.NewChatServiceClient(h.dial()), stalledTok, nil)
	healthy := h.open(h.client, h.member(code, "u3", "healthy"), nil)
	for range 2 {
		require.NotNil(t, sender.nextPresence())
	}
	require.NotNil(t, stalled.nextPresence())

	body := strings.Repeat("x", 1024)
	for i := range total {
		sender.send(fmt.Sprint(i), body)
		require.Equal(t, uint64(i+1), sender.nextMessage().Sequence)
		// The healthy stream keeps up while the stalled one reads nothing.
		require.Equal(t, uint64(i+1), healthy.nextMessage().Sequence)
	}

	var last uint64
	code2 := codes.OK
	for {
		ev, err := stalled.recv()
		if err != nil {
			code2 = statusCode(err)
			break
		}
		if m := ev.GetMessage(); m != nil {
			require.Equal(t, last+1, m.Sequence, "no gap before the cut")
			last = m.Sequence
		}
	}
	require.Equal(t, codes.ResourceExhausted, code2)
	require.Less(t, last, uint64(total), "the stream must have been cut before the end")
	assert.Equal(t, 1.0, testutil.ToFloat64(h.srv.cfg.Metrics.SlowConsumers))

	resumed := h.open(chatv1.NewChatServiceClient(h.dial()), stalledTok, &chatv1.Resume{Epoch: stalled.opened.Epoch, AfterSequence: last})
	assert.Equal(t, chatv1.Recovery_RECOVERY_COMPLETE, resumed.opened.Recovery)
	assert.Equal(t, uint64(total), resumed.opened.HeadSequence)
	for seq := last + 1; seq <= total; seq++ {
		require.Equal(t, seq, resumed.nextMessage().Sequence)
	}
	sender.send("after", "live again")
	assert.Equal(t, uint64(total+1), resumed.nextMessage().Sequence)

	// The counter moves just after Publish returns, which may be after the
	// echo reached the sender; the sender's reader counts each message
	// before it reads the next frame, so once its stream has ended after
	// a half-close every message is counted.
	require.NoError(t, sender.c.CloseSend())
	require.Equal(t, codes.OK, sender.end())
	assert.Equal(t, float64(total+1), testutil.ToFloat64(h.srv.cfg.Metrics.MessagesIn))
}

// Each way a stream can end leaves the room clean: the user's LEFT reaches
// the others, List no longer shows it, and no goroutine stays behind
// (goleak checks the last part for the whole package).
func TestStreamsLeaveClean(t *testing.T) {
	h := newHarness(t, opts{maxBody: 64})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	annRoom := h.join(ann, code, "pw")
	watcher := h.open(h.client, annRoom, nil)

	// A user who joins but never streams is invisible and blocks nothing.
	h.member(code, "idle", "idle")
	watcher.send("w", "nobody waits for idle")
	assert.Equal(t, uint64(1), watcher.nextMessage().Sequence)

	endings := []struct {
		name string
		want codes.Code
		end  func(s *stream)
	}{
		{"half-close", codes.OK, func(s *stream) { require.NoError(t, s.c.CloseSend()) }},
		{"client cancel", codes.Canceled, func(s *stream) { s.cancel() }},
		{"deadline", codes.DeadlineExceeded, nil},
		{"over-size message", codes.InvalidArgument, func(s *stream) { s.send("", strings.Repeat("y", 4096)) }},
		{"invalid message", codes.InvalidArgument, func(s *stream) { s.send("", strings.Repeat("y", 65)) }},
	}
	for i, tc := range endings {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("user%d", i)
			tok := h.member(code, name, name)
			var s *stream
			if tc.end == nil {
				s = h.startOpen(h.client, tok, 300*time.Millisecond)
			} else {
				s = h.open(h.client, tok, nil)
				tc.end(s)
			}
			p := watcher.nextPresence()
			require.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, p.Kind)
			p = watcher.nextPresence()
			assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, p.Kind)
			assert.Equal(t, name, p.UserName)
			if tc.want != codes.Canceled { // a cancelled client sees its own Canceled
				assert.Equal(t, tc.want, s.end())
			}
			assertOnline(t, h, annRoom, code, "ann")
		})
	}

	t.Run("transport error", func(t *testing.T) {
		tok := h.member(code, "gone", "gone")
		cc := h.dial()
		h.open(chatv1.NewChatServiceClient(cc), tok, nil)
		require.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, watcher.nextPresence().Kind)
		require.NoError(t, cc.Close())
		p := watcher.nextPresence()
		assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, p.Kind)
		assert.Equal(t, "gone", p.UserName)
		assertOnline(t, h, annRoom, code, "ann")
	})
}

// startOpen opens a stream with a deadline d and reads Opened.
func (h *harness) startOpen(client chatv1.ChatServiceClient, tok string, d time.Duration) *stream {
	s := h.start(client, tok, d)
	require.NoError(h.t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
	require.NotNil(h.t, s.next().GetOpened())
	return s
}

func assertOnline(t *testing.T, h *harness, tok, code string, want ...string) {
	t.Helper()
	l, err := h.client.ListChatRoomUsers(h.ctx(tok, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
	require.NoError(t, err)
	assert.Equal(t, want, names(l.Users))
}

func TestResumeWindow(t *testing.T) {
	h := newHarness(t, opts{history: 5, queue: 2}) // keeps max(5, 2×2) messages
	ann := h.userToken("u1", "ann")
	// After 8 messages the history holds 4..8, so resuming after 3..8 is
	// complete. A failed resume still gets what history holds after its
	// point (all of it from another epoch): a gap, then no more loss than
	// history's. Epoch "" stands for the room's current epoch.
	cases := []struct {
		name    string
		r       *chatv1.Resume
		backlog uint32
		want    chatv1.Recovery
		first   uint64 // first replayed sequence, 0 for none
	}{
		{"not requested", nil, 0, chatv1.Recovery_RECOVERY_NOT_REQUESTED, 0},
		{"backlog", nil, 3, chatv1.Recovery_RECOVERY_NOT_REQUESTED, 6},
		{"backlog past history", nil, 50, chatv1.Recovery_RECOVERY_NOT_REQUESTED, 4},
		{"oldest edge", &chatv1.Resume{AfterSequence: 3}, 0, chatv1.Recovery_RECOVERY_COMPLETE, 4},
		{"inside", &chatv1.Resume{AfterSequence: 6}, 0, chatv1.Recovery_RECOVERY_COMPLETE, 7},
		{"resume wins over backlog", &chatv1.Resume{AfterSequence: 6}, 5, chatv1.Recovery_RECOVERY_COMPLETE, 7},
		{"at head", &chatv1.Resume{AfterSequence: 8}, 0, chatv1.Recovery_RECOVERY_COMPLETE, 0},
		{"evicted", &chatv1.Resume{AfterSequence: 2}, 0, chatv1.Recovery_RECOVERY_FAILED, 4},
		{"beyond head", &chatv1.Resume{AfterSequence: 9}, 0, chatv1.Recovery_RECOVERY_FAILED, 0},
		{"other epoch", &chatv1.Resume{Epoch: "0123456789abcdef", AfterSequence: 6}, 0, chatv1.Recovery_RECOVERY_FAILED, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code := h.room(ann, "room", "pw")
			tok := h.join(ann, code, "pw")
			s := h.open(h.client, tok, nil)
			for i := range 8 { // one at a time: the queue holds 2
				s.send("", fmt.Sprint("m", i+1))
				s.nextMessage()
			}
			if tc.r != nil && tc.r.Epoch == "" {
				tc.r.Epoch = s.opened.Epoch
			}
			r := h.openWith(h.client, tok, &chatv1.Open{Resume: tc.r, Backlog: tc.backlog})
			assert.Equal(t, tc.want, r.opened.Recovery)
			assert.Equal(t, uint64(8), r.opened.HeadSequence)
			if tc.first != 0 {
				assert.Equal(t, uint32(9-tc.first), r.opened.Backlog)
				for seq := tc.first; seq <= 8; seq++ {
					assert.Equal(t, seq, r.next().GetMessage().GetSequence())
				}
			} else {
				assert.Zero(t, r.opened.Backlog)
			}
			// Then live, without a gap or a duplicate.
			s.send("", "live")
			assert.Equal(t, uint64(9), s.nextMessage().Sequence)
			assert.Equal(t, uint64(9), r.nextMessage().Sequence)
		})
	}
}

func TestDeleteEndsStreams(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	a := h.open(h.client, h.join(ann, code, "pw"), nil)
	b := h.open(h.client, h.member(code, "u2", "bob"), nil)
	a.nextPresence()
	_, err := h.client.DeleteChatRoom(h.ctx(ann, 5*time.Second), &chatv1.DeleteChatRoomRequest{ShortCode: strings.ToLower(code)})
	require.NoError(t, err)
	for _, s := range []*stream{a, b} {
		assert.NotNil(t, s.next().GetRoomDeleted())
		assert.Equal(t, codes.NotFound, s.end())
	}
	_, err = h.client.JoinChatRoom(h.ctx(ann, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: "pw"})
	assert.Equal(t, codes.NotFound, statusCode(err))
}

// Drain (service shutdown) ends streams with Unavailable.
func TestDrainEndsStreamsUnavailable(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")
	a := h.open(h.client, tok, nil)
	h.srv.Drain(context.Background())
	assert.Equal(t, codes.Unavailable, a.end())
	assert.Equal(t, codes.Unavailable, h.start(h.client, tok, 5*time.Second).end(), "new streams too")
}

// A client that sends and half-closes still receives what was queued for
// it, its own last message included, before the stream ends with OK.
func TestHalfCloseFlushes(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	for i := range 20 {
		s := h.open(h.client, h.join(ann, code, "pw"), nil)
		s.send("", fmt.Sprint("bye ", i))
		require.NoError(t, s.c.CloseSend())
		m := s.nextMessage()
		assert.Equal(t, uint64(i+1), m.Sequence)
		assert.Equal(t, codes.OK, s.end())
	}
}

// With the default sizes (a queue of 256 events, HISTORY_SIZE 100) a
// stream cut off for overflow must still resume without loss: the room
// keeps at least twice the queue.
func TestOverflowResumesWithDefaultSizes(t *testing.T) {
	const total = 500 // more than queue and transport buffers hold, at most 2×queue
	h := newHarness(t, opts{queue: 256, history: 100})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	sender := h.open(h.client, h.join(ann, code, "pw"), nil)
	stalledTok := h.member(code, "u2", "stalled")
	stalled := h.open(chatv1.NewChatServiceClient(h.dial()), stalledTok, nil)
	require.NotNil(t, sender.nextPresence())

	// Large bodies keep few messages in the transport's 64 KiB windows, so
	// the queue overflows well before the last message.
	body := strings.Repeat("x", 4000)
	for i := range total {
		sender.send(fmt.Sprint(i), body)
		require.Equal(t, uint64(i+1), sender.nextMessage().Sequence)
	}
	var last uint64
	var err error
	for {
		var ev *chatv1.Event
		if ev, err = stalled.recv(); err != nil {
			break
		}
		if m := ev.GetMessage(); m != nil {
			require.Equal(t, last+1, m.Sequence)
			last = m.Sequence
		}
	}
	require.Equal(t, codes.ResourceExhausted, statusCode(err))
	require.Less(t, last, uint64(total-100), "cut off more than HISTORY_SIZE behind")

	resumed := h.open(chatv1.NewChatServiceClient(h.dial()), stalledTok, &chatv1.Resume{Epoch: stalled.opened.Epoch, AfterSequence: last})
	require.Equal(t, chatv1.Recovery_RECOVERY_COMPLETE, resumed.opened.Recovery)
	for seq := last + 1; seq <= total; seq++ {
		require.Equal(t, seq, resumed.nextMessage().Sequence)
	}
}

// A client that sends Open and half-closes at once (to read the backlog
// and leave) still gets Opened before the OK status.
func TestHalfCloseRightAfterOpenGetsOpened(t *testing.T) {
	h := newHarness(t, opts{})
	code := h.room(h.userToken("u1", "ann"), "room", "pw")
	tok := h.member(code, "u2", "bob")
	for i := range 100 {
		s := h.start(h.client, tok, 10*time.Second)
		require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
		require.NoError(t, s.c.CloseSend())
		ev, err := s.recv()
		require.NoError(t, err, "attempt %d ended before Opened", i)
		require.NotNil(t, ev.GetOpened(), "attempt %d: first event %v", i, ev)
		assert.Equal(t, codes.OK, s.end())
		s.cancel()
	}
}
