package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// Idle members stay connected on a network that loses packets, and a
// member that vanishes (its packets no longer arrive, no FIN, no RST) is
// dropped within the documented bound. 2,000 streams (20 rooms of 100,
// one connection each, with the SDK's keepalive settings) are held open
// in a network namespace whose loopback drops 3% of TCP packets at
// random; then every packet of one member's connection is dropped.
//
// It holds the streams for 5 minutes (GRPCCHATTER_IDLE_HOLD shortens it
// for a quick look) and needs root, ip and nft (see newNetns).
func TestIdleStreamsSurvivePacketLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("holds 2,000 streams for 5 minutes")
	}
	needBinaries(t)
	hold := 5 * time.Minute
	if v := os.Getenv("GRPCCHATTER_IDLE_HOLD"); v != "" {
		d, err := time.ParseDuration(v)
		require.NoError(t, err, "GRPCCHATTER_IDLE_HOLD")
		hold = d
	}
	ns := newNetns(t)
	const rooms, members = 20, 100
	secret := randomHex(32)
	// The namespace is the test's alone: fixed ports are free in it.
	const addr = "127.0.0.1:5050"
	chat := startArgv(t, "chat", []string{"ip", "netns", "exec", ns.name, bins.chat}, map[string]string{
		"SECRET": secret, "GRPC_SERVER_ADDRESS": "127.0.0.1", "GRPC_SERVER_PORT": "5050",
		"WEB_SERVER_ADDRESS": "127.0.0.1", "WEB_SERVER_PORT": "8081", "METRICS_ADDRESS": "",
		"DATA_DIR": t.TempDir(), "SHUTDOWN_TIMEOUT": "3s", "LOG_LEVEL": "warn",
		"ROOM_CREATE_BURST": fmt.Sprint(rooms), // one owner creates every room at once
	})
	conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithKeepaliveParams(client.KeepaliveParams()), grpc.WithContextDialer(ns.dial))
	require.NoError(t, err)
	defer conn.Close()
	waitFor(t, chat, "chat health", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
		return err
	})

	// Rooms and room tokens, signed here with the service's secret.
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	owner, _, err := signer.IssueUser("owner", "owner", time.Hour)
	require.NoError(t, err)
	api := chatv1.NewChatServiceClient(conn)
	ctx := testCtx(t, hold+5*time.Minute)
	codes := make([]string, rooms)
	for r := range codes {
		res, err := api.CreateChatRoom(metadata.AppendToOutgoingContext(ctx, "token", owner),
			&chatv1.CreateChatRoomRequest{Name: fmt.Sprint("room ", r), Password: "pw"})
		require.NoError(t, err)
		codes[r] = res.GetShortCode()
	}
	var tokens strings.Builder
	for i := range rooms * members {
		tok, _, err := signer.IssueRoom(fmt.Sprint("u", i), fmt.Sprint("m", i), codes[i/members], 2*hold+time.Hour)
		require.NoError(t, err)
		tokens.WriteString(tok + "\n")
	}
	file := filepath.Join(t.TempDir(), "tokens")
	require.NoError(t, os.WriteFile(file, []byte(tokens.String()), 0o600))
	watcher, _, err := signer.IssueRoom("watcher", "watcher", codes[0], 2*hold+time.Hour)
	require.NoError(t, err)

	idle := startArgv(t, "idleclient", []string{"ip", "netns", "exec", ns.name, bins.idleclient,
		"-addr", addr, "-tokens", file}, nil)
	opened := time.Now()
	var local string
	waitUntil(t, idle, 3*time.Minute, "2,000 streams open", func() bool {
		m := regexp.MustCompile(`local 0 (\S+)`).FindStringSubmatch(idle.output.String())
		if m != nil {
			local = m[1]
		}
		return m != nil
	})
	t.Logf("%d streams open in %s", rooms*members, time.Since(opened).Round(time.Second))
	online := func() map[string]bool {
		ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		res, err := api.ListChatRoomUsers(metadata.AppendToOutgoingContext(ctx, "token", watcher),
			&chatv1.ListChatRoomUsersRequest{ShortCode: codes[0]})
		require.NoError(t, err)
		names := map[string]bool{}
		for _, u := range res.GetUsers() {
			names[u.GetUserName()] = true
		}
		return names
	}
	require.Len(t, online(), members, "the first room's members are online")

	ns.drop(t, "meta l4proto tcp numgen random mod 100 < 3")
	ends := func() []string { return regexp.MustCompile(`(?m)^end .*$`).FindAllString(idle.output.String(), -1) }
	deadline := time.Now().Add(hold)
	for time.Now().Before(deadline) && len(ends()) == 0 && idle.running() && chat.running() {
		time.Sleep(5 * time.Second)
	}
	dropped := ns.dropped(t)
	t.Logf("held %d idle streams for %s; %d packets dropped", rooms*members, hold, dropped)
	require.True(t, chat.running(), "chat exited: %s", chat.output.String())
	require.True(t, idle.running(), "the client exited")
	assert.Empty(t, ends(), "streams ended while idle")
	assert.Positive(t, dropped, "the network lost packets")

	// The first member's connection vanishes: nothing of it arrives any
	// more, either way.
	port := local[strings.LastIndex(local, ":")+1:]
	ns.drop(t, "tcp sport "+port)
	ns.drop(t, "tcp dport "+port)
	vanished := time.Now()
	for online()["m0"] {
		require.Less(t, time.Since(vanished), time.Minute, "the vanished member is still listed")
		time.Sleep(500 * time.Millisecond)
	}
	gone := time.Since(vanished)
	t.Logf("the vanished member was dropped after %s", gone.Round(100*time.Millisecond))
	// The bound is api.KeepaliveTime + api.KeepaliveTimeout (20 s) plus
	// the presence update; 30 s leaves room for a loaded machine.
	assert.LessOrEqual(t, gone, 30*time.Second, "a vanished member is dropped within the keepalive bound")
	assert.Len(t, online(), members-1, "only the vanished member left")
	for _, e := range ends() {
		assert.True(t, strings.HasPrefix(e, "end 0 "), "only the vanished member's stream ended: %s", e)
	}
	idle.stop(t)
}

// waitUntil polls cond until it holds, failing when p exits or after d.
func waitUntil(t *testing.T, p *proc, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if !p.running() {
			t.Fatalf("%s exited before %s (%v):\n%s", p.name, what, p.err, p.output.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s:\n%s", what, d, p.output.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
