package api

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
)

// BenchmarkPacedFanOut sends one message per op through the real gRPC
// transport over loopback to a room of n streams and waits until every
// stream has received it before sending the next, so each message finds
// every stream's queue empty: the paced path, where each delivery is a
// frame of its own. Streams share connections, 100 to a connection; the
// clients run in this process and take frames undecoded, so that the
// server's work dominates, but allocations and CPU time include theirs.
// With few members an op is bound by the round trip's latency, not CPU:
// compare cpu-ns/delivery there. The gap cases wait that long between
// messages: 30 ms is within the writer's linger (DefaultWriterLinger), so
// writers wait between messages; 120 ms is beyond it, the light load of a
// quiet room, where each message finds every stream without a writer.
func BenchmarkPacedFanOut(b *testing.B) {
	body := strings.Repeat("lorem ipsum ", 10) // a 120-byte chat line
	for _, c := range []struct {
		n   int
		gap time.Duration
	}{{10, 0}, {100, 0}, {1000, 0}, {100, 30 * time.Millisecond}, {1000, 30 * time.Millisecond}, {100, 120 * time.Millisecond}} {
		n, name := c.n, fmt.Sprintf("members=%d", c.n)
		if c.gap > 0 {
			name += fmt.Sprintf(",gap=%s", c.gap)
		}
		b.Run(name, func(b *testing.B) {
			h := newHarnessB(b)
			code := h.room(h.userToken("owner", "owner"), "bench", "pw")
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()

			var got atomic.Int64
			done := make(chan struct{}, 1)
			var want atomic.Int64
			var wg sync.WaitGroup
			var client chatv1.ChatServiceClient
			var sender chatv1.ChatService_ChatClient
			for i := range n {
				if i%100 == 0 {
					client = chatv1.NewChatServiceClient(h.dialRaw())
				}
				// One user for every stream: a user's first stream alone is
				// announced, so opening n streams sends no n² presence
				// events that could overflow the first streams' queues.
				tok, _, err := h.signer.IssueRoom("member", "member", code, time.Hour)
				require.NoError(b, err)
				c, err := client.Chat(metadata.AppendToOutgoingContext(ctx, "token", tok))
				require.NoError(b, err)
				require.NoError(b, c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}))
				if i == 0 {
					sender = c
				}
				wg.Add(1)
				// Owner: the benchmark. Exit: Recv fails once ctx is cancelled.
				go func() {
					defer wg.Done()
					var raw wire.Raw
					for {
						if err := c.RecvMsg(&raw); err != nil {
							return
						}
						if m := countMessages(raw); m > 0 && got.Add(m) == want.Load() {
							done <- struct{}{}
						}
					}
				}()
			}
			// Let every Opened event go out before measuring.
			time.Sleep(200*time.Millisecond + time.Duration(n)*time.Millisecond)

			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			cpu0, writes0 := cpuTime(b), writeCalls()
			b.ResetTimer()
			var sent int64
			for b.Loop() {
				if c.gap > 0 && sent > 0 {
					time.Sleep(c.gap)
				}
				sent++
				want.Store(sent * int64(n))
				err := sender.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{
					ClientMessageId: strconv.FormatInt(sent, 36), Body: body,
				}}})
				if err != nil {
					b.Fatal(err)
				}
				select {
				case <-done:
				case <-time.After(10 * time.Second):
					b.Fatalf("message %d: %d of %d deliveries after 10 s", sent, got.Load(), want.Load())
				}
			}
			b.StopTimer()
			cpu, writes := cpuTime(b)-cpu0, writeCalls()-writes0
			runtime.ReadMemStats(&after)
			deliveries := float64(b.N) * float64(n)
			b.ReportMetric(deliveries/b.Elapsed().Seconds(), "deliveries/s")
			b.ReportMetric(float64(after.Mallocs-before.Mallocs)/deliveries, "allocs/delivery")
			b.ReportMetric(float64(cpu.Nanoseconds())/deliveries, "cpu-ns/delivery")
			if writes0 >= 0 {
				b.ReportMetric(float64(writes)/deliveries, "writes/delivery")
			}
			cancel()
			wg.Wait()
		})
	}
}

// cpuTime is the CPU time, user and system, the process has used.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeCalls is the number of write system calls the process has made
// (Linux's /proc/self/io), or -1 where that is not available.
func writeCalls() int64 {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "syscw: "); ok {
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// countMessages counts the Message events in an encoded ChatResponse.
func countMessages(frame []byte) int64 {
	var n int64
	for len(frame) > 0 {
		_, _, l := protowire.ConsumeTag(frame)
		if l < 0 {
			return n
		}
		ev, m := protowire.ConsumeBytes(frame[l:])
		if m < 0 {
			return n
		}
		if num, _, k := protowire.ConsumeTag(ev); k > 0 && num == 2 { // Event.message
			n++
		}
		frame = frame[l+m:]
	}
	return n
}

// dialRaw is a TCP client connection whose streams can receive a
// wire.Raw, the response's bytes undecoded.
func (h *harness) dialRaw() *grpc.ClientConn {
	c, err := grpc.NewClient(h.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(wire.NewCodec())))
	require.NoError(h.t, err)
	h.t.Cleanup(func() { _ = c.Close() })
	return c
}
