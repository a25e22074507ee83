package api

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

func TestChatFanOutAndPresence(t *testing.T) {
	for _, tcp := range []bool{false, true} {
		t.Run(map[bool]string{false: "bufconn", true: "tcp"}[tcp], func(t *testing.T) {
			h := newHarness(t, opts{tcp: tcp})
			ann := h.userToken("u1", "ann")
			code := h.room(ann, "room", "pw")
			annRoom := h.join(ann, code, "pw")
			bobRoom := h.member(code, "u2", "bob")

			a := h.open(h.client, annRoom, nil)
			assert.Equal(t, code, a.opened.ShortCode)
			assert.Equal(t, "room", a.opened.Name)
			assert.Len(t, a.opened.Epoch, 16)
			assert.Zero(t, a.opened.HeadSequence)
			assert.Equal(t, chatv1.Recovery_RECOVERY_NOT_REQUESTED, a.opened.Recovery)
			assert.Equal(t, []string{"ann"}, names(a.opened.Users))

			b := h.open(h.client, bobRoom, nil)
			assert.Equal(t, []string{"ann", "bob"}, names(b.opened.Users))
			p := a.nextPresence()
			assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, p.Kind)
			assert.Equal(t, "bob", p.UserName)

			// A second device of bob's: no presence event, two streams listed.
			b2 := h.open(chatv1.NewChatServiceClient(h.dial()), bobRoom, nil)
			l, err := h.client.ListChatRoomUsers(h.ctx(annRoom, 5*time.Second), &chatv1.ListChatRoomUsersRequest{ShortCode: code})
			require.NoError(t, err)
			require.Len(t, l.Users, 2)
			assert.Equal(t, &chatv1.RoomUser{UserName: "bob", Streams: 2}, stripUser(l.Users[1]))

			a.send("m1", "hello")
			require.Equal(t, uint64(1), b.nextMessage().Sequence)
			b.send("m2", "hi ann")
			b.pending = nil
			for i, s := range []*stream{a, b, b2} {
				if i == 1 {
					assert.Equal(t, uint64(2), s.nextMessage().Sequence)
					continue
				}
				m := s.nextMessage()
				assert.Equal(t, uint64(1), m.Sequence)
				assert.Equal(t, "ann", m.Sender)
				assert.Equal(t, "hello", m.Body)
				assert.Equal(t, "m1", m.ClientMessageId)
				assert.Equal(t, a.opened.Epoch, m.Epoch)
				assert.WithinDuration(t, time.Now(), m.SentAt.AsTime(), 10*time.Second)
				m = s.nextMessage()
				assert.Equal(t, uint64(2), m.Sequence)
				assert.Equal(t, "bob", m.Sender)
			}

			// bob leaves only when his last stream closes.
			require.NoError(t, b.c.CloseSend())
			assert.Equal(t, codes.OK, b.end())
			a.send("m3", "still there?")
			assert.Equal(t, uint64(3), a.nextMessage().Sequence, "no LEFT before the message: bob still has a stream")
			b2.cancel()
			p = a.nextPresence()
			assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, p.Kind)
			assert.Equal(t, "bob", p.UserName)
		})
	}
}

func names(us []*chatv1.RoomUser) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.UserName
	}
	return out
}

func stripUser(u *chatv1.RoomUser) *chatv1.RoomUser {
	return &chatv1.RoomUser{UserName: u.UserName, Streams: u.Streams}
}

func TestChatStatusCodes(t *testing.T) {
	h := newHarness(t, opts{maxBody: 16, openTimeout: 300 * time.Millisecond})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	other := h.room(ann, "other", "pw")
	annRoom := h.join(ann, code, "pw")
	require.NotEmpty(t, other)

	t.Run("no token", func(t *testing.T) {
		assert.Equal(t, codes.Unauthenticated, h.start(h.client, "", 5*time.Second).end())
	})
	t.Run("user token", func(t *testing.T) {
		assert.Equal(t, codes.Unauthenticated, h.start(h.client, ann, 5*time.Second).end())
	})
	t.Run("first frame not Open", func(t *testing.T) {
		s := h.start(h.client, annRoom, 5*time.Second)
		s.send("x", "hello")
		assert.Equal(t, codes.InvalidArgument, s.end())
	})
	t.Run("no Open in time", func(t *testing.T) {
		s := h.start(h.client, annRoom, 5*time.Second)
		assert.Equal(t, codes.InvalidArgument, s.end())
	})
	t.Run("second Open", func(t *testing.T) {
		s := h.open(h.client, annRoom, nil)
		require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
		assert.Equal(t, codes.InvalidArgument, s.end())
	})
	bad := []struct{ name, id, body, field string }{
		{"empty body", "", "", "body"},
		{"long body", "", strings.Repeat("x", 17), "body"},
		{"long client id", strings.Repeat("i", 65), "x", "client_message_id"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			s := h.open(h.client, annRoom, nil)
			s.send(tc.id, tc.body)
			_, err := s.recv()
			for err == nil {
				_, err = s.recv()
			}
			st := status.Convert(err)
			assert.Equal(t, codes.InvalidArgument, st.Code())
			assert.True(t, strings.HasPrefix(st.Message(), tc.field+":"), st.Message())
		})
	}
	t.Run("deleted room", func(t *testing.T) {
		otherRoom := h.join(ann, other, "pw")
		_, err := h.client.DeleteChatRoom(h.ctx(ann, 5*time.Second), &chatv1.DeleteChatRoomRequest{ShortCode: other})
		require.NoError(t, err)
		s := h.start(h.client, otherRoom, 5*time.Second)
		require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
		assert.Equal(t, codes.NotFound, s.end())
	})
}

// Every stream of a room sees the same messages in the same order.
func TestOrderingUnderConcurrency(t *testing.T) {
	const senders, receivers, perSender = 4, 6, 50
	const total = senders * perSender
	h := newHarness(t, opts{queue: 4 * total})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")

	recv := make([]*stream, receivers)
	for i := range recv {
		recv[i] = h.open(h.client, h.member(code, fmt.Sprintf("r%d", i), fmt.Sprintf("reader%d", i)), nil)
	}
	send := make([]*stream, senders)
	for i := range send {
		send[i] = h.open(h.client, h.member(code, fmt.Sprintf("s%d", i), fmt.Sprintf("writer%d", i)), nil)
	}
	var wg sync.WaitGroup
	for i, s := range send {
		wg.Go(func() {
			for j := range perSender {
				require.NoError(t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{
					ClientMessageId: fmt.Sprintf("%d-%d", i, j), Body: fmt.Sprintf("message %d from %d", j, i)}}}))
			}
		})
	}
	wg.Wait()

	var reference []string
	for i, r := range append(recv, send...) {
		var got []string
		perSenderNext := map[string]int{}
		for seq := uint64(1); seq <= total; seq++ {
			m := r.nextMessage()
			require.Equal(t, seq, m.Sequence, "stream %d", i)
			got = append(got, m.ClientMessageId)
			// Each sender's own messages keep their order too.
			var from, n int
			_, err := fmt.Sscanf(m.ClientMessageId, "%d-%d", &from, &n)
			require.NoError(t, err)
			key := fmt.Sprint(from)
			assert.Equal(t, perSenderNext[key], n)
			perSenderNext[key] = n + 1
		}
		if reference == nil {
			reference = got
		} else {
			assert.Equal(t, reference, got, "stream %d", i)
		}
	}
}

// A client that resends after a reconnect what it could not confirm does
// not duplicate it: the repeat is ignored without an error, and the stream
// carries on. Opened advertises the body limit the client must respect.
func TestResendAfterReconnectIsIgnored(t *testing.T) {
	h := newHarness(t, opts{maxBody: 100})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	annRoom := h.join(ann, code, "pw")
	watcher := h.open(h.client, h.member(code, "u2", "bob"), nil)
	assert.Equal(t, uint32(100), watcher.opened.MaxMessageBytes)

	first := h.open(h.client, annRoom, nil)
	first.send("m1", "hello")
	require.Equal(t, "m1", first.nextMessage().ClientMessageId)
	first.cancel() // the confirmation might have been lost

	again := h.open(chatv1.NewChatServiceClient(h.dial()), annRoom,
		&chatv1.Resume{Epoch: first.opened.Epoch, AfterSequence: first.opened.HeadSequence})
	again.send("m1", "hello")      // the resend
	again.send("m2", "and more")   // a new message
	again.send("", "no ID, twice") // empty IDs are never repeats
	again.send("", "no ID, twice")
	for _, want := range []string{"m1", "m2", "", ""} {
		assert.Equal(t, want, again.nextMessage().ClientMessageId)
	}
	for seq, want := range []string{"m1", "m2", "", ""} {
		m := watcher.nextMessage()
		assert.Equal(t, uint64(seq+1), m.Sequence, "no duplicate of m1 reached the room")
		assert.Equal(t, want, m.ClientMessageId)
	}
}

// A stream ends when its room token expires, with Unauthenticated telling
// the client to join again (the SDK rejoins on it).
func TestStreamEndsAtTokenExpiry(t *testing.T) {
	expire := make(chan time.Time, 1)
	h := newHarness(t, opts{expire: expire})
	ann := h.userToken("u1", "ann")
	code := h.room(ann, "room", "pw")
	s := h.open(h.client, h.join(ann, code, "pw"), nil)
	s.send("", "before")
	require.Equal(t, uint64(1), s.nextMessage().Sequence)
	expire <- time.Now()
	_, err := s.recv()
	for err == nil {
		_, err = s.recv()
	}
	assert.Equal(t, codes.Unauthenticated, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "room token expired; join again")
}
