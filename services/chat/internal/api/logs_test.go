package api

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// logLines collects a logger's JSON lines.
type logLines struct {
	mu    sync.Mutex
	lines []map[string]any
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range bytes.Split(bytes.TrimSpace(p), []byte("\n")) {
		var m map[string]any
		if json.Unmarshal(line, &m) == nil {
			l.lines = append(l.lines, m)
		}
	}
	return len(p), nil
}

func (l *logLines) Sync() error { return nil }

// byMessage counts the lines by message.
func (l *logLines) byMessage() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]int{}
	for _, m := range l.lines {
		out[m["msg"].(string)]++
	}
	return out
}

// An attacker without a token writes almost nothing to the log at the
// default level: rapid-reset connections, whose Chat handlers end
// Unauthenticated or Canceled, cost one warning each (at most five a
// second), and 2,000 refused unary calls none; chat_rpcs_total counts
// them instead. (Chat streams refused without a token are reset by the
// server, and so count against their connection's reset budget: the
// rapid-reset part covers them.)
func TestAttacksWriteBoundedLogs(t *testing.T) {
	const calls = 2000
	logs := &logLines{}
	logger := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(zap.NewProductionEncoderConfig()), logs, zapcore.InfoLevel))
	h := newHarness(t, opts{tcp: true, logger: logger})
	code := h.room(h.userToken("u1", "ann"), "room", "pw")

	// Rapid resets from one attacker, reconnecting after each GOAWAY,
	// until three connections have been refused.
	start := time.Now()
	stop := make(chan struct{})
	goAways := attack(h.addr, 1, stop)
	floods := h.srv.cfg.Metrics.ResetFloods
	require.Eventually(t, func() bool { return testutil.ToFloat64(floods) >= 3 }, 20*time.Second, time.Millisecond)
	close(stop)
	<-goAways

	// Refused calls: no token, a forged token.
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		// Owner: the test. Exit: after its share of the calls.
		go func() {
			defer wg.Done()
			for i := range calls / 8 {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				var err error
				if (w+i)%2 == 0 {
					_, err = h.client.ListChatRoomUsers(ctx, &chatv1.ListChatRoomUsersRequest{})
				} else {
					_, err = h.client.JoinChatRoom(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer forged"),
						&chatv1.JoinChatRoomRequest{ShortCode: code, Password: "pw"})
				}
				cancel()
				assert.Equal(t, codes.Unauthenticated, statusCode(err))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)

	m := h.srv.cfg.Metrics
	refused := 0.0
	for _, method := range []string{"ListChatRoomUsers", "JoinChatRoom"} {
		refused += testutil.ToFloat64(m.RPCs.WithLabelValues("/grpcchatter.chat.v1.ChatService/"+method, "Unauthenticated"))
	}
	assert.Equal(t, float64(calls), refused, "the calls reached the interceptors")
	streams := testutil.ToFloat64(m.RPCs.WithLabelValues(chatPath, "Unauthenticated")) + testutil.ToFloat64(m.RPCs.WithLabelValues(chatPath, "Canceled"))
	assert.Positive(t, streams, "the attack's streams reached the interceptors")

	got := logs.byMessage()
	t.Logf("log lines at info and above after %s, %v refused connections (%v Chat handlers), %v refused calls: %v",
		elapsed, testutil.ToFloat64(floods), streams, refused, got)
	warns := got["connection reset too many streams: sent GOAWAY and closed it"]
	assert.Positive(t, warns)
	assert.LessOrEqual(t, float64(warns), testutil.ToFloat64(floods), "at most one line per refused connection")
	assert.LessOrEqual(t, warns, resetLogsPerSecond*(int(elapsed.Seconds())+1), "at most %d a second", resetLogsPerSecond)
	for msg, n := range got {
		if msg == "call" && n == 1 {
			continue // the room's creation, OK
		}
		if !strings.HasPrefix(msg, "connection reset too many streams") {
			t.Errorf("%d lines %q", n, msg)
		}
	}
}
