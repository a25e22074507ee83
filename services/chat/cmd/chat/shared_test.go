package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The start waits for JetStream while it is unavailable (a cluster
// electing leaders), and not for anything else.
func TestSettle(t *testing.T) {
	calls := 0
	err := settle(context.Background(), zap.NewNop(), "stream", func() error {
		if calls++; calls < 3 {
			return fmt.Errorf("no leader: %w", rooms.ErrUnavailable)
		}
		return nil
	})
	assert.NoError(t, err)
	assert.Equal(t, 3, calls)

	calls = 0
	bad := errors.New("insufficient resources")
	err = settle(context.Background(), zap.NewNop(), "stream", func() error { calls++; return bad })
	assert.ErrorIs(t, err, bad)
	assert.Equal(t, 1, calls, "not retried")

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	err = settle(ctx, zap.NewNop(), "stream", func() error { calls++; return rooms.ErrUnavailable })
	assert.ErrorIs(t, err, rooms.ErrUnavailable)
	assert.Equal(t, 1, calls, "a cancelled start stops waiting")
}
