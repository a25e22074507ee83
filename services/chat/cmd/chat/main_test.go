package main

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/pkg/token"
	chatv1 "github.com/grpcchatter/grpcchatter/proto/grpcchatter/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "main-test-secret-0123456789abcdef-xyz"

func testConfig(dir string) config.Config {
	return config.Config{
		GRPCAddress: "127.0.0.1", GRPCPort: 0, Secret: secret,
		ShortCodeLength: 6, MaxQueueSize: 64, MaxRoomsPerUser: 100, MaxStreamsPerUser: 16, RoomTokenDuration: time.Hour, HistorySize: 10,
		MaxMessageBytes: 1024, RoomIdleTTL: time.Hour, MetricsAddress: "127.0.0.1:0",
		DataDir: dir, LogLevel: "error", ShutdownTimeout: 2 * time.Second,
		Argon2MemoryKiB: config.MinArgon2MemoryKiB, Argon2Time: config.MinArgon2Time, Argon2Threads: 1,
	}
}

// instance is one running service process (in-process, over loopback TCP).
type instance struct {
	addr   string
	client chatv1.ChatServiceClient
	conn   *grpc.ClientConn
	stop   context.CancelFunc
	done   chan error
}

func start(t *testing.T, cfg config.Config) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	// Owner: the test. Exit: serve returns after stop (ctx cancel).
	go func() { done <- serve(ctx, cfg, ready) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	inst := &instance{addr: addr.String(), client: chatv1.NewChatServiceClient(conn), conn: conn, stop: cancel, done: done}
	t.Cleanup(func() {
		cancel()
		<-done
		_ = conn.Close()
	})
	return inst
}

func authed(t *testing.T, tok string) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

func openChat(t *testing.T, c chatv1.ChatServiceClient, roomTok string, resume *chatv1.Resume) (chatv1.ChatService_ChatClient, *chatv1.Opened) {
	t.Helper()
	s, err := c.Chat(authed(t, roomTok))
	require.NoError(t, err)
	require.NoError(t, s.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{Resume: resume}}}))
	res, err := s.Recv()
	require.NoError(t, err)
	require.NotNil(t, res.Events[0].GetOpened())
	return s, res.Events[0].GetOpened()
}

func endCode(s chatv1.ChatService_ChatClient) codes.Code {
	for {
		if _, err := s.Recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return codes.OK
			}
			return status.Code(err)
		}
	}
}

// Shutdown sends streams away with Unavailable and returns within its
// deadline; a restart over the same DATA_DIR keeps the room but starts a
// new epoch, so resuming reports RECOVERY_FAILED and carries on live.
func TestShutdownAndRestart(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	userTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)

	first := start(t, cfg)
	hc := healthpb.NewHealthClient(first.conn)
	hres, err := hc.Check(authed(t, ""), &healthpb.HealthCheckRequest{})
	require.NoError(t, err)
	assert.Equal(t, healthpb.HealthCheckResponse_SERVING, hres.Status)

	room, err := first.client.CreateChatRoom(authed(t, userTok), &chatv1.CreateChatRoomRequest{Name: "persist", Password: "pw"})
	require.NoError(t, err)
	join, err := first.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
	require.NoError(t, err)
	s, opened := openChat(t, first.client, join.Token, nil)
	require.NoError(t, s.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{Body: "before restart"}}}))
	res, err := s.Recv()
	require.NoError(t, err)
	last := res.Events[0].GetMessage().GetSequence()
	require.Equal(t, uint64(1), last)

	began := time.Now()
	first.stop()
	assert.Equal(t, codes.Unavailable, endCode(s))
	select {
	case err := <-first.done:
		require.NoError(t, err)
		first.done <- nil // for Cleanup
	case <-time.After(cfg.ShutdownTimeout + 3*time.Second):
		t.Fatal("serve did not return within the shutdown deadline")
	}
	assert.Less(t, time.Since(began), cfg.ShutdownTimeout+time.Second)

	second := start(t, cfg)
	s2, opened2 := openChat(t, second.client, join.Token, &chatv1.Resume{Epoch: opened.Epoch, AfterSequence: last})
	assert.Equal(t, room.ShortCode, opened2.ShortCode)
	assert.Equal(t, "persist", opened2.Name)
	assert.NotEqual(t, opened.Epoch, opened2.Epoch)
	assert.Equal(t, chatv1.Recovery_RECOVERY_FAILED, opened2.Recovery)
	require.NoError(t, s2.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{Body: "after restart"}}}))
	res, err = s2.Recv()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Events[0].GetMessage().GetSequence(), "sequences restart with the epoch")
	assert.Equal(t, opened2.Epoch, res.Events[0].GetMessage().GetEpoch())

	// The room password survived too.
	_, err = second.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
	assert.NoError(t, err)
	_, err = second.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "nope"})
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Setenv("SECRET", "too-short")
	err := run(context.Background(), nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SECRET")
}

// A client that stops reading leaves its handler blocked in a send that
// Drain cannot interrupt; shutdown still returns, via Stop after
// SHUTDOWN_TIMEOUT.
func TestShutdownWithStalledClient(t *testing.T) {
	cfg := testConfig(t.TempDir())
	cfg.ShutdownTimeout = time.Second
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	userTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)
	inst := start(t, cfg)
	room, err := inst.client.CreateChatRoom(authed(t, userTok), &chatv1.CreateChatRoomRequest{Name: "r", Password: "pw"})
	require.NoError(t, err)
	join, err := inst.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
	require.NoError(t, err)

	stalledConn, err := grpc.NewClient(inst.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
	require.NoError(t, err)
	defer stalledConn.Close()
	_, _ = openChat(t, chatv1.NewChatServiceClient(stalledConn), join.Token, nil) // never read again

	sender, _ := openChat(t, inst.client, join.Token, nil)
	body := string(make([]byte, 1000))
	for range 300 {
		require.NoError(t, sender.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{Body: body}}}))
		_, err := sender.Recv()
		require.NoError(t, err)
	}

	began := time.Now()
	inst.stop()
	select {
	case err := <-inst.done:
		require.NoError(t, err)
		inst.done <- nil // for Cleanup
	case <-time.After(cfg.ShutdownTimeout + 5*time.Second):
		t.Fatal("serve did not return after Stop")
	}
	assert.Less(t, time.Since(began), cfg.ShutdownTimeout+2*time.Second)
}
