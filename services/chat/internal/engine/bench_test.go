package engine_test

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// sink keeps frames escaping to the heap, as they do into SendMsg.
var sink *wire.Frame

var body = strings.Repeat("lorem ipsum ", 10) // a 120-byte chat line

// BenchmarkFanOut publishes one message per op to a room of n streams.
// Every flushEvery messages it waits for the log (the memory one) and lets
// every stream take what it got as the gRPC transport does: Drain into a
// reused batch and build the frame of shared encodings handed to SendMsg.
// Flushing per message would measure the committer's round trip instead
// of the fan-out.
func BenchmarkFanOut(b *testing.B) {
	const flushEvery = 64
	for _, n := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			ctx := context.Background()
			m, _, _ := newEngine(b, engine.Config{QueueSize: 4 * flushEvery})
			r := create(b, m, "owner")
			subs := make([]*rooms.Subscription, n)
			batch := make([]*rooms.Event, 0, flushEvery)
			for i := range subs {
				subs[i] = subscribe(b, m, r.Code, rooms.Member{ID: fmt.Sprint(i), Name: fmt.Sprint("user", i)}, rooms.Open{})
				for _, s := range subs[:i] { // discard presence before queues fill
					batch, _ = s.Drain(batch[:0], 1<<20, 1<<30)
				}
			}
			delivered := 0
			fanOut := func() {
				if err := m.Flush(ctx); err != nil {
					b.Fatal(err)
				}
				for _, s := range subs {
					for {
						batch, _ = s.Drain(batch[:0], flushEvery, 1<<20)
						if len(batch) == 0 {
							break
						}
						delivered += len(batch)
						sink = wire.NewFrame(batch)
					}
				}
			}
			sender := rooms.Member{ID: "0", Name: "user0"}
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				// A fresh client ID each time: a repeated one is ignored.
				if _, err := m.Publish(ctx, r.Code, sender, strconv.FormatUint(uint64(i), 36), body); err != nil {
					b.Fatal(err)
				}
				if (i+1)%flushEvery == 0 {
					fanOut()
				}
			}
			fanOut()
			b.StopTimer()
			runtime.ReadMemStats(&after)
			deliveries := b.N * n
			if delivered != deliveries {
				b.Fatalf("%d deliveries, want %d", delivered, deliveries)
			}
			b.ReportMetric(float64(deliveries)/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/float64(deliveries), "allocs/delivery")
		})
	}
}
