package engine_test

import (
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
)

func TestMemoryPresenceContract(t *testing.T) {
	contract.Presence(t, func(_ *testing.T, ttl time.Duration, now func() time.Time) func(string) engine.Presence {
		return engine.NewMemoryPresence(ttl, now).Holder
	})
}
