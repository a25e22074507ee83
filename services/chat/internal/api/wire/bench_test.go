package wire_test

import (
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// BenchmarkEncode compares, for one message to a room of 100 members,
// encoding once and sharing the bytes against marshalling a ChatResponse
// per member (what stream.Send would do).
func BenchmarkEncode(b *testing.B) {
	const members = 100
	body := strings.Repeat("lorem ipsum ", 10) // a 120-byte chat line
	msg := rooms.Message{Room: "ABCDEF", Seq: 42, Epoch: "0123456789abcdef", SentAt: time.Now(),
		SenderID: "u1", Sender: "sender", Body: body, ClientID: "cid"}
	b.Run("once", func(b *testing.B) {
		codec := wire.NewCodec()
		b.ReportAllocs()
		for b.Loop() {
			// A fresh event per op: an event keeps its encoding, so each op
			// encodes once, as each new message does.
			batch := []*rooms.Event{rooms.NewMessageEvent(msg)}
			for range members {
				if _, err := codec.Marshal(wire.NewFrame(batch)); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("per-member", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ev := &chatv1.Event{Kind: &chatv1.Event_Message{Message: &chatv1.Message{
				Sequence: msg.Seq, Epoch: msg.Epoch, SentAt: timestamppb.New(msg.SentAt),
				Sender: msg.Sender, Body: msg.Body, ClientMessageId: msg.ClientID,
			}}}
			for range members {
				if _, err := proto.Marshal(&chatv1.ChatResponse{Events: []*chatv1.Event{ev}}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
