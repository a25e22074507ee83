package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

// TestSmoke runs the whole generator with tiny sizes against the real
// binaries, so that it cannot rot between benchmark runs. It checks that
// every part produced sane, non-zero figures and that nothing was lost;
// it sets no performance threshold.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the services; skipped with -short")
	}
	defer goleak.VerifyNone(t)
	out := t.TempDir()
	jsonPath := filepath.Join(out, "latest.json")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	var stdout, log bytes.Buffer
	args := []string{
		"-out", out, "-json", jsonPath,
		"-sizes", "5,10", "-streams", "20", "-duration", "1s", "-window", "8",
		"-idle", "40", "-idle-room-size", "10", "-idle-hold", "3s",
		"-auth-duration", "300ms", "-auth-conc", "1,2",
		"-profile", "1", "-quiet-wait", "0s", "-retries", "0",
		"-hot-room", "9", "-cluster-paced", "0.05",
		"-ws-rounds", "2", "-ws-paced", "0.1",
		"-storm", "60",
	}
	// CHATBENCH_REV builds the services from a commit, for checking the
	// generator while the services' work tree is being edited.
	if rev := os.Getenv("CHATBENCH_REV"); rev != "" {
		args = append(args, "-rev", rev)
	}
	err := run(ctx, args, &stdout, &log)
	require.NoError(t, err, log.String())

	b, err := os.ReadFile(jsonPath)
	require.NoError(t, err)
	var rep report.Report
	require.NoError(t, json.Unmarshal(b, &rep))

	require.Len(t, rep.Burst, 2)
	check := func(name string, f *chatload.FanoutResult) {
		t.Run(name, func(t *testing.T) {
			require.NotNil(t, f)
			assert.Positive(t, f.Sent)
			assert.Equal(t, f.Sent*int64(f.Members), f.Delivered, "every member receives every message")
			if f.Mode == chatload.Paced {
				// Every paced send's lateness against its due time is counted.
				require.NotNil(t, f.SendSlip)
				assert.Equal(t, f.Sent, f.SendSlip.Count)
			} else {
				assert.Nil(t, f.SendSlip)
			}
			assert.Zero(t, f.Lost)
			assert.Zero(t, f.Undelivered)
			assert.Zero(t, f.Duplicates)
			assert.Zero(t, f.SlowConsumerDisconnects)
			assert.Zero(t, f.StreamErrors, f.FirstError)
			assert.Positive(t, f.DeliveriesPerSec)
			assert.Positive(t, f.Latency.P50)
			assert.GreaterOrEqual(t, f.Latency.P99, f.Latency.P50)
			assert.Equal(t, f.Delivered, f.Latency.Count)
		})
	}
	for _, p := range rep.Burst {
		check("chat burst", p.Chat)
		check("baseline burst", p.Baseline)
		require.NotNil(t, p.Ratios)
		assert.Positive(t, p.Ratios.Deliveries)
	}
	require.NotNil(t, rep.Paced)
	check("chat paced", rep.Paced.Chat)
	check("baseline paced", rep.Paced.Baseline)
	require.NotNil(t, rep.Stalled)
	assert.Zero(t, rep.Stalled.Missing())
	assert.Positive(t, rep.StalledP99Ratio)

	// The cross-instance section: shared mode on one and three instances,
	// and a hot room whose senders' appends contend.
	require.NotNil(t, rep.Cluster)
	c := rep.Cluster
	require.NotNil(t, c.Reference)
	assert.Equal(t, *rep.Burst[1].Chat, *c.Reference, "the default mode's run of the same size")
	check("shared, one instance", c.Single)
	check("shared, three instances", c.Spread)
	check("hot room", c.HotRoom)
	check("paced, default mode", c.PacedReference)
	check("paced, shared, one instance", c.PacedSingle)
	check("paced, shared, three instances", c.PacedSpread)
	assert.Equal(t, 3, c.Spread.Instances)
	assert.Equal(t, 3, c.HotRoom.Senders)
	assert.Zero(t, c.HotRoom.OrderMismatches)
	assert.Positive(t, c.Single.BrokerCPUSeconds, "nats-server's CPU is read")
	require.NotNil(t, c.HotRoomAppends)
	assert.Positive(t, c.HotRoomAppends.Stored)
	assert.GreaterOrEqual(t, c.HotRoomAppends.Published, c.HotRoomAppends.Stored)
	assert.LessOrEqual(t, c.HotRoomAppends.Stored, c.HotRoom.Sent, "an append carries one message or more")

	// The WebSocket section: every variant in both modes in each round,
	// the rounds in opposite orders, and each WebSocket member on a
	// connection of its own that carried every delivery.
	require.NotNil(t, rep.WebSocket)
	w := rep.WebSocket
	assert.Equal(t, 10, w.Members)
	require.Len(t, w.Runs, 2*2*3, "two rounds of three variants in burst and paced mode")
	assert.Equal(t, w.Runs[0].Variant, w.Runs[5].Variant, "the second round runs the variants in reverse")
	assert.Equal(t, w.Runs[2].Variant, w.Runs[3].Variant)
	for _, r := range w.Runs {
		f := r.Result
		check(fmt.Sprintf("websocket section, round %d, %s, %s", r.Round, f.Mode, r.Variant), f)
		switch r.Variant {
		case report.VariantWebSocket:
			assert.Equal(t, chatload.WebSocket, f.Transport)
			assert.Equal(t, f.Rooms*f.Members, f.Conns, "one connection per WebSocket member")
		case report.VariantGRPCOwnConn:
			assert.Equal(t, chatload.GRPC, f.Transport)
			assert.Equal(t, f.Rooms*f.Members, f.Conns)
		case report.VariantGRPC:
			assert.Equal(t, chatload.GRPC, f.Transport)
			assert.Less(t, f.Conns, f.Rooms*f.Members, "gRPC members share connections")
		default:
			t.Errorf("unknown variant %q", r.Variant)
		}
	}
	require.Len(t, w.Ratios, 2*2, "WebSocket against both gRPC variants in both modes")
	for _, r := range w.Ratios {
		assert.Positive(t, r.PerCPU, "%s %s", r.Mode, r.Against)
		assert.Positive(t, r.P50)
		assert.Positive(t, r.P99)
		assert.Len(t, r.PerRound, 2)
	}
	assert.Positive(t, w.PacedRate)

	// The join storm: every member opened and learned the whole room.
	require.NotNil(t, rep.JoinStorm)
	js := rep.JoinStorm.After
	require.NotNil(t, js)
	assert.Equal(t, 60, js.Opened, js.FirstError)
	assert.Zero(t, js.Incomplete, js.FirstError)
	assert.Positive(t, js.ServerCPUSeconds)
	assert.GreaterOrEqual(t, js.PresenceEvents, int64(60*59/2), "each member hears of every later arrival")

	require.NotNil(t, rep.Idle)
	assert.Equal(t, 40, rep.Idle.Opened, rep.Idle.FirstError)
	assert.Positive(t, rep.Idle.RSS[2])
	// The hold ran on every stream, and none was reset meanwhile.
	assert.Equal(t, 40, rep.Idle.Held)
	assert.Zero(t, rep.Idle.DroppedWhileIdle)
	assert.Zero(t, rep.Idle.ResetDuringHold, rep.Idle.ResetError)
	assert.True(t, slices.ContainsFunc(rep.Targets, func(tg report.Target) bool {
		return strings.HasPrefix(tg.Name, "Idle streams held (40 ")
	}), "the hold has its target")
	// The floor holds bare connections on a fresh process: the same count,
	// and fewer goroutines each than a connection that carries a stream.
	// It has no streams to hold.
	require.NotNil(t, rep.Idle.Floor)
	assert.True(t, rep.Idle.Floor.ConnectionsOnly)
	assert.Zero(t, rep.Idle.Floor.Held)
	assert.Equal(t, 40, rep.Idle.Floor.Opened, rep.Idle.Floor.FirstError)
	assert.Positive(t, rep.Idle.Floor.GoroutinesPerStream)
	assert.Less(t, rep.Idle.Floor.GoroutinesPerStream, rep.Idle.GoroutinesPerStream)

	require.NotNil(t, rep.Auth)
	assert.Positive(t, rep.Auth.CeilingPerSec)
	// The ceiling is the median batch, never above the fastest.
	assert.GreaterOrEqual(t, rep.Auth.FastestCeilingPerSec, rep.Auth.CeilingPerSec)
	assert.Equal(t, 5+2+2, rep.Auth.HashBatches, "five before the load, one after each of the four steps")
	for _, s := range append(rep.Auth.Register, rep.Auth.Login...) {
		assert.Positive(t, s.PerSec, s.Op)
		assert.Zero(t, s.Errors, s.FirstError)
	}
	assert.Positive(t, rep.Auth.UnknownUserMs)
	assert.Positive(t, rep.Auth.WrongPasswordMs)
	assert.Positive(t, rep.Auth.VerifyUserNs)

	assert.NotEmpty(t, rep.Targets)
	assert.NotEmpty(t, rep.Profiles)
	assert.True(t, slices.ContainsFunc(rep.Profiles, func(p report.Profile) bool { return strings.Contains(p.Name, "over WebSocket") }),
		"the chat service is profiled during a WebSocket fan-out")
	md, err := os.ReadFile(filepath.Join(out, "BENCHMARKS.md"))
	require.NoError(t, err)
	assert.Contains(t, string(md), "## WebSocket vs gRPC, 10 members")
	assert.Contains(t, string(md), "## Join storm")
	for _, f := range []string{"BENCHMARKS.md", "img/latency.png", "img/throughput.png"} {
		st, err := os.Stat(filepath.Join(out, f))
		require.NoError(t, err)
		assert.Positive(t, st.Size(), f)
	}
	assert.Contains(t, stdout.String(), "deliveries/s")
}
