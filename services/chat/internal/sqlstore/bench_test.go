package sqlstore_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// BenchmarkAppend measures the hot path: one room's messages appended in
// calls of 1 (a quiet room) and 64 (a busy one, batched by the engine),
// trimming included. ns/msg is the figure to compare.
func BenchmarkAppend(b *testing.B) {
	for _, be := range backends() {
		for _, batch := range []int{1, 64} {
			b.Run(fmt.Sprintf("%s/batch=%d", be.name, batch), func(b *testing.B) {
				cfg := be.config(b)
				cfg.Retain = 512 // the engine's default: max(HISTORY_SIZE 100, 2 × queue 256)
				s := open(b, cfg)
				body := strings.Repeat("x", 100)
				msgs := make([]rooms.Message, batch)
				var seq uint64
				at := time.Now()
				for b.Loop() {
					for i := range msgs {
						seq++
						msgs[i] = rooms.Message{Room: "BENCH2", Seq: seq, SentAt: at, SenderID: "42",
							Sender: "bench", Body: body, ClientID: fmt.Sprint(seq)}
					}
					require.NoError(b, s.Append(b.Context(), msgs))
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(seq), "ns/msg")
			})
		}
	}
}
