package engine

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// sink keeps frames escaping to the heap, as they do into SendMsg.
var sink *wire.Frame

var body = strings.Repeat("lorem ipsum ", 10) // a 120-byte chat line

// BenchmarkFanOut publishes one message per op to a room of n streams and
// lets every stream take it as the transport does: Drain into a reused
// batch and build the pre-encoded frame handed to SendMsg.
func BenchmarkFanOut(b *testing.B) {
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			ctx := context.Background()
			m, _ := newEngine(b, Config{QueueSize: 256})
			r, _ := m.CreateRoom(ctx, "bench", "h", "owner")
			subs := make([]*rooms.Subscription, n)
			batch := make([]wire.Event, 0, 64)
			for i := range subs {
				subs[i], _ = m.Subscribe(ctx, r.Code, rooms.Member{ID: fmt.Sprint(i), Name: fmt.Sprint("user", i)}, nil)
				for _, s := range subs[:i] { // discard presence before queues fill
					batch, _ = s.Drain(batch[:0], 1<<20, 1<<30)
				}
			}
			sender := rooms.Member{ID: "0", Name: "user0"}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			var id uint64
			for b.Loop() {
				// A fresh client ID each time: a repeated one is ignored.
				id++
				if _, err := m.Publish(ctx, r.Code, sender, strconv.FormatUint(id, 36), body); err != nil {
					b.Fatal(err)
				}
				for _, s := range subs {
					batch, _ = s.Drain(batch[:0], 64, 1<<20)
					if len(batch) != 1 {
						b.Fatalf("got %d events", len(batch))
					}
					sink = wire.NewFrame(batch)
				}
			}
			b.StopTimer()
			runtime.ReadMemStats(&after)
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
			for _, s := range subs {
				s.Close()
			}
		})
	}
}

// BenchmarkEncode compares, for one message to a room of 100 members,
// encoding once and sharing the bytes against marshalling a ChatResponse
// per member (what stream.Send would do).
func BenchmarkEncode(b *testing.B) {
	const members = 100
	at := time.Now()
	b.Run("once", func(b *testing.B) {
		codec := wire.NewCodec()
		b.ReportAllocs()
		for b.Loop() {
			ev, err := wire.Message(42, "0123456789abcdef", at, "sender", body, "cid")
			if err != nil {
				b.Fatal(err)
			}
			batch := []wire.Event{ev}
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
				Sequence: 42, Epoch: "0123456789abcdef", SentAt: timestamppb.New(at),
				Sender: "sender", Body: body, ClientMessageId: "cid",
			}}}
			for range members {
				if _, err := proto.Marshal(&chatv1.ChatResponse{Events: []*chatv1.Event{ev}}); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
