package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// MAX_SEND_RATE and MAX_SEND_BURST pace each stream, MAX_USER_SEND_RATE
// and MAX_USER_SEND_BURST a user's streams: three messages sent back to
// back with a burst of 1 at 4 a second are published half a second apart
// from first to last, whichever of the two limits is the low one.
func TestSendLimitsWired(t *testing.T) {
	for _, tc := range []struct {
		name             string
		rate, userRate   float64
		burst, userBurst int
	}{
		{"stream", 4, 1e6, 1, 1000},
		{"user", 1e6, 4, 1000, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.MaxSendRate, cfg.MaxSendBurst = tc.rate, tc.burst
			cfg.MaxUserSendRate, cfg.MaxUserSendBurst = tc.userRate, tc.userBurst
			inst := start(t, cfg)
			signer, err := token.NewSigner(secret, "")
			require.NoError(t, err)
			userTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
			require.NoError(t, err)
			room, err := inst.client.CreateChatRoom(authed(t, userTok), &chatv1.CreateChatRoomRequest{Name: "paced", Password: "pw"})
			require.NoError(t, err)
			join, err := inst.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
			require.NoError(t, err)
			s, _ := openChat(t, inst.client, join.Token, nil)
			for i := range 3 {
				require.NoError(t, s.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: fmt.Sprint(i), Body: "paced"}}}))
			}
			var at []time.Time
			for len(at) < 3 {
				res, err := s.Recv()
				require.NoError(t, err)
				for _, ev := range res.Events {
					if m := ev.GetMessage(); m != nil {
						at = append(at, m.SentAt.AsTime())
					}
				}
			}
			assert.GreaterOrEqual(t, at[2].Sub(at[0]), 450*time.Millisecond, "two tokens at 4 a second")
			require.NoError(t, s.CloseSend())
		})
	}
}
