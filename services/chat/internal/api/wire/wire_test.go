package wire

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func msg(seq uint64, epoch string, at time.Time, sender, body, clientID string) *rooms.Event {
	return rooms.NewMessageEvent(rooms.Message{Seq: seq, Epoch: epoch, SentAt: at, Sender: sender, Body: body, ClientID: clientID})
}

// A frame of pre-encoded events must decode as the ChatResponse a per-member
// proto.Marshal would have produced, in the same order.
func TestFrameDecodesAsChatResponse(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	evs := []*rooms.Event{
		msg(1, "ep", at, "ann", "hello", "c1"),
		{Kind: rooms.EventJoined, User: "bob", At: at},
		msg(2, "ep", at, "bob", "héllo", ""),
		{Kind: rooms.EventLeft, User: "cy", At: at},
		{Kind: rooms.EventRefreshed, At: at.Add(time.Hour)},
		{Kind: rooms.EventRoomDeleted, At: at},
	}

	out, err := NewCodec().Marshal(NewFrame(evs))
	require.NoError(t, err)
	var got chatv1.ChatResponse
	require.NoError(t, proto.Unmarshal(out.Materialize(), &got))

	require.Len(t, got.Events, len(evs))
	assert.Equal(t, uint64(1), got.Events[0].GetMessage().GetSequence())
	assert.Equal(t, "hello", got.Events[0].GetMessage().GetBody())
	assert.Equal(t, "bob", got.Events[1].GetPresence().GetUserName())
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_JOINED, got.Events[1].GetPresence().GetKind())
	assert.Equal(t, "héllo", got.Events[2].GetMessage().GetBody())
	assert.Equal(t, chatv1.PresenceKind_PRESENCE_KIND_LEFT, got.Events[3].GetPresence().GetKind())
	assert.True(t, got.Events[4].GetRefreshed().GetExpiresAt().AsTime().Equal(at.Add(time.Hour)))
	assert.True(t, got.Events[5].GetRoomDeleted().GetAt().AsTime().Equal(at))
}

// An event is encoded once per format, however many streams send it: the
// frames share the first encoding's bytes.
func TestEventEncodedOnce(t *testing.T) {
	ev := msg(7, "ep", time.Unix(1700000000, 0), "ann", "shared", "")
	first := Of(ev).Bytes()
	for range 100 {
		f := NewFrame([]*rooms.Event{ev})
		out, err := NewCodec().Marshal(f)
		require.NoError(t, err)
		require.Len(t, out, 1)
		assert.Same(t, &first[0], &out[0].ReadOnlyData()[0], "the same bytes, not a copy or a new encoding")
	}
}

// Message is encoded by hand: its bytes must be those of proto.Marshal,
// field order, omitted zero values and all.
func TestMessageEncodesAsProto(t *testing.T) {
	for _, tc := range []struct {
		name                        string
		seq                         uint64
		epoch, sender, body, client string
		at                          time.Time
	}{
		{"typical", 42, "0123456789abcdef", "ann", "hello", "c1", time.Unix(1700000000, 5)},
		{"no client id", 1, "ep", "bob", "héllo", "", time.Unix(1700000000, 0)},
		{"zero values", 0, "", "", "", "", time.Unix(0, 0)},
		{"nanos only", 1 << 40, "e", "s", "b", "c", time.Unix(0, 999999999)},
		{"before 1970", 7, "e", "s", "b", "c", time.Unix(-62135596800, 1)},
		{"long body", 300, "e", "s", string(make([]byte, 70000)), "c", time.Unix(1<<33, 123)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Message(&msg(tc.seq, tc.epoch, tc.at, tc.sender, tc.body, tc.client).Message)
			want, err := Encode(&chatv1.Event{Kind: &chatv1.Event_Message{Message: &chatv1.Message{
				Sequence: tc.seq, Epoch: tc.epoch, SentAt: timestamppb.New(tc.at),
				Sender: tc.sender, Body: tc.body, ClientMessageId: tc.client,
			}}})
			require.NoError(t, err)
			assert.Equal(t, want.Bytes(), got.Bytes())
		})
	}
}

// Other messages go through the proto codec unchanged.
func TestCodecDelegates(t *testing.T) {
	c := NewCodec()
	out, err := c.Marshal(&chatv1.CreateChatRoomRequest{Name: "x"})
	require.NoError(t, err)
	var req chatv1.CreateChatRoomRequest
	require.NoError(t, c.Unmarshal(out, &req))
	assert.Equal(t, "x", req.Name)
	assert.Equal(t, "proto", c.Name())
}

// Invalid UTF-8 reaches the handler (which rejects it as InvalidArgument)
// instead of failing in the codec, which gRPC would report as Internal.
func TestUnmarshalKeepsInvalidUTF8(t *testing.T) {
	// Hand-encode ChatRequest{send: {client_message_id: "id", body: "a\xffb"}}.
	var send []byte
	send = protowire.AppendTag(send, 1, protowire.BytesType)
	send = protowire.AppendString(send, "id")
	send = protowire.AppendTag(send, 2, protowire.BytesType)
	send = protowire.AppendString(send, "a\xffb")
	var req []byte
	req = protowire.AppendTag(req, 2, protowire.BytesType)
	req = protowire.AppendBytes(req, send)

	var strict chatv1.ChatRequest
	require.Error(t, proto.Unmarshal(req, &strict), "precondition: proto rejects it")

	var got chatv1.ChatRequest
	require.NoError(t, NewCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(req)}, &got))
	assert.Equal(t, "a\xffb", got.GetSend().GetBody())
	assert.Equal(t, "id", got.GetSend().GetClientMessageId())

	// Truncated input is still an error.
	assert.Error(t, NewCodec().Unmarshal(mem.BufferSlice{mem.SliceBuffer(req[:len(req)-2])}, &got))
}

// FuzzDecode checks the lenient decoder against proto: it never panics, it
// agrees with proto wherever proto succeeds, and it fails only where proto
// fails too.
func FuzzDecode(f *testing.F) {
	f.Add([]byte{0x0a, 0xff})
	f.Add([]byte{0x12, 0x05, 0x12, 0x03, 'a', 0xff, 'b'})
	f.Add([]byte{0x12, 0x04, 0x0a, 0x02, 'i', 'd'})
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var lenient, strict chatv1.ChatRequest
		err := Decode(b, &lenient)
		serr := proto.Unmarshal(b, &strict)
		if serr == nil {
			if err != nil {
				t.Fatalf("proto decodes %x, Decode fails: %v", b, err)
			}
			if !proto.Equal(&lenient, &strict) {
				t.Fatalf("Decode and proto differ on %x", b)
			}
		}
		if err != nil && serr == nil {
			t.Fatalf("Decode fails where proto does not: %x", b)
		}
	})
}

// BenchmarkMessage compares Message's hand encoding with proto.Marshal
// of the same event (Encode), which it replaced.
func BenchmarkMessage(b *testing.B) {
	at := time.Now()
	body := string(make([]byte, 120))
	m := msg(42, "0123456789abcdef", at, "sender", body, "cid").Message
	b.Run("hand", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if Message(&m).Len() == 0 {
				b.Fatal("empty")
			}
		}
	})
	b.Run("proto", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, err := Encode(&chatv1.Event{Kind: &chatv1.Event_Message{Message: &chatv1.Message{
				Sequence: 42, Epoch: "0123456789abcdef", SentAt: timestamppb.New(at),
				Sender: "sender", Body: body, ClientMessageId: "cid",
			}}})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
