package chatload

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"

	"github.com/grpcchatter/grpcchatter/bench/internal/baseline"
	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// TestIdleHold holds idle streams on the baseline server over loopback and
// checks what the hold counts: nothing when the server leaves the streams
// alone, every held stream when it drops all connections during the hold.
func TestIdleHold(t *testing.T) {
	tests := []struct {
		name string
		// stopInHold stops the server at the hold's first CPU reading,
		// which comes after streams that end count as resets.
		stopInHold bool
		wantReset  int
	}{
		{"nothing reset", false, 0},
		{"server gone during the hold", true, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			lis, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			srv := grpc.NewServer()
			chatv1.RegisterChatServiceServer(srv, baseline.New())
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			var stop sync.Once
			defer func() { stop.Do(srv.Stop); <-served }()

			signer, err := token.NewSigner("idle-test-secret-of-at-least-32-bytes", "")
			require.NoError(t, err)
			cpuReads := 0
			target := Target{Name: "baseline", Addr: lis.Addr().String(), Signer: signer,
				CPU: func() (time.Duration, error) {
					cpuReads++
					if tt.stopInHold {
						stop.Do(srv.Stop)
					}
					return time.Duration(cpuReads) * time.Millisecond, nil
				}}
			hold := 200 * time.Millisecond
			if tt.stopInHold {
				hold = time.Minute // ends once every stream has
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			res, err := Idle(ctx, target, IdleConfig{
				Streams: 6, RoomSize: 3, Parallel: 2, Hold: hold,
				Memory: func() (int64, map[string]float64) { return 1, nil },
			})
			require.NoError(t, err)
			require.NoError(t, ctx.Err(), "the hold ended before the test's deadline")
			assert.Equal(t, 6, res.Opened, res.FirstError)
			assert.Zero(t, res.DroppedWhileIdle)
			assert.Equal(t, 6, res.Held)
			assert.Equal(t, tt.wantReset, res.ResetDuringHold)
			assert.Equal(t, tt.wantReset > 0, res.ResetError != "", res.ResetError)
			assert.Equal(t, 2, cpuReads, "the CPU is read at the start and end of the hold")
			assert.InDelta(t, 0.001, res.HoldCPUSeconds, 1e-9)
			assert.Equal(t, client.KeepaliveParams().Time.Seconds(), res.KeepaliveTime, "the SDK's keepalive")
		})
	}
}
