package memstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	_ engine.Registry = (*memstore.Registry)(nil)
	_ engine.Log      = (*memstore.Log)(nil)
)

func TestRegistryContract(t *testing.T) {
	contract.Registry(t, func(*testing.T) engine.Registry { return memstore.NewRegistry() })
}

func TestLogContract(t *testing.T) {
	contract.Log(t, func(_ *testing.T, retain int) (engine.Log, func() engine.Log) {
		return memstore.NewLog(retain), nil // nothing survives: no reopen
	})
}

func TestEpochIsSixteenHex(t *testing.T) {
	assert.Regexp(t, `^[0-9a-f]{16}$`, memstore.NewLog(1).Epoch())
}

// The memory log promises more than the contract: exactly the latest
// Retain messages, so that a room's memory is bounded.
func TestLogKeepsExactlyRetain(t *testing.T) {
	at := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, retain := range []int{1, 3, 64} {
		t.Run(fmt.Sprint(retain), func(t *testing.T) {
			l := memstore.NewLog(retain)
			for seq := uint64(1); seq <= 200; seq++ {
				require.NoError(t, l.Append(t.Context(), []rooms.Message{{Room: "R", Seq: seq, SentAt: at, Body: fmt.Sprint(seq)}}))
				got, err := l.Since(t.Context(), "R", 0, 0)
				require.NoError(t, err)
				keep := min(seq, uint64(retain))
				require.Len(t, got, int(keep), "after seq %d", seq)
				assert.Equal(t, seq-keep+1, got[0].Seq, "after seq %d", seq)
				assert.Equal(t, fmt.Sprint(seq), got[len(got)-1].Body)
			}
		})
	}
}

func TestRetainBelowOneKeepsOne(t *testing.T) {
	l := memstore.NewLog(0)
	require.NoError(t, l.Append(t.Context(), []rooms.Message{{Room: "R", Seq: 1}, {Room: "R", Seq: 2}}))
	got, err := l.Since(t.Context(), "R", 0, 0)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, uint64(2), got[0].Seq)
}
