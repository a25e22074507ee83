package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	_ "github.com/jackc/pgx/v5/stdlib" // the pgx driver for database/sql, to play another client

	"github.com/grpcchatter/grpcchatter/internal/natstest"
	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

// TestMain runs the service itself, as its binary does, when the test
// binary is started with asServiceEnv set (see startService).
func TestMain(m *testing.M) {
	if os.Getenv(asServiceEnv) != "" {
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

const secret = "main-test-secret-0123456789abcdef-xyz"

func testConfig(dir string) config.Config {
	return config.Config{
		GRPCAddress: "127.0.0.1", GRPCPort: 0, Secret: secret,
		ShortCodeLength: 6, MaxQueueSize: 64, MaxRoomsPerUser: 100, MaxStreamsPerUser: 16, RoomTokenDuration: time.Hour, HistorySize: 10,
		MaxMessageBytes: 1024, RoomIdleTTL: time.Hour, MetricsAddress: "127.0.0.1:0",
		DataDir: dir, HistoryStore: "database", DBTimeout: 5 * time.Second, LogLevel: "error", ShutdownTimeout: 2 * time.Second,
		Argon2MemoryKiB: config.MinArgon2MemoryKiB, Argon2Time: config.MinArgon2Time, Argon2Threads: 1,
	}
}

// instance is one running service process (in-process, over loopback TCP).
type instance struct {
	addr   string
	client chatv1.ChatServiceClient
	conn   *grpc.ClientConn
	stop   context.CancelFunc
	force  chan struct{} // close for a second signal
	done   chan error
	log    *logBuffer
}

// logBuffer collects the service's log.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *logBuffer) Sync() error    { return nil }
func (l *logBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func start(t *testing.T, cfg config.Config) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	force := make(chan struct{})
	logs := &logBuffer{}
	// Owner: the test. Exit: serve returns after stop (ctx cancel).
	go func() { done <- serve(ctx, cfg, options{ready: ready, force: force, logOut: logs}) }()
	var addr net.Addr
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	inst := &instance{addr: addr.String(), client: chatv1.NewChatServiceClient(conn), conn: conn, stop: cancel, force: force, done: done, log: logs}
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
// deadline. A restart over the same DATA_DIR keeps the room and, with
// history in the database, the epoch and the messages: a stream resumes
// completely and sequences go on. With history in memory the epoch
// changes: resuming reports RECOVERY_FAILED, then every message of the new
// epoch already sent, then live ones.
func TestShutdownAndRestart(t *testing.T) {
	for _, tc := range []struct {
		history  string
		sameEpch bool
	}{{"database", true}, {"memory", false}} {
		t.Run(tc.history, func(t *testing.T) {
			testShutdownAndRestart(t, tc.history, tc.sameEpch)
		})
	}
}

func testShutdownAndRestart(t *testing.T, history string, sameEpoch bool) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	cfg.HistoryStore = history
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	userTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)

	cfg.LogLevel = "warn"
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
	require.NoError(t, s.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: "c1", Body: "before restart"}}}))
	res, err := s.Recv()
	require.NoError(t, err)
	last := res.Events[0].GetMessage().GetSequence()
	require.Equal(t, uint64(1), last)

	first.stop()
	assert.Equal(t, codes.Unavailable, endCode(s))
	require.NoError(t, <-first.done)
	first.done <- nil // for Cleanup
	// Every handler returned within the grace period, and every
	// connection finished: no forced stop.
	assert.NotContains(t, first.log.String(), "closing connections")
	assert.NotContains(t, first.log.String(), "closing the connections still open")

	second := start(t, cfg)
	// A new stream asking for a backlog gets the earlier message when
	// history survived.
	other, err := second.client.Chat(authed(t, join.Token))
	require.NoError(t, err)
	require.NoError(t, other.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{Backlog: 50}}}))
	res, err = other.Recv()
	require.NoError(t, err)
	otherOpened := res.Events[0].GetOpened()
	require.NotNil(t, otherOpened)
	if sameEpoch {
		require.Equal(t, uint32(1), otherOpened.Backlog)
		if len(res.Events) == 1 {
			res, err = other.Recv()
			require.NoError(t, err)
			res.Events = append([]*chatv1.Event{nil}, res.Events...)
		}
		assert.Equal(t, "before restart", res.Events[1].GetMessage().GetBody())
	} else {
		assert.Zero(t, otherOpened.Backlog)
	}
	s2, opened2 := openChat(t, second.client, join.Token, &chatv1.Resume{Epoch: opened.Epoch, AfterSequence: last})
	assert.Equal(t, room.ShortCode, opened2.ShortCode)
	assert.Equal(t, "persist", opened2.Name)
	next := uint64(1)
	if sameEpoch {
		assert.Equal(t, opened.Epoch, opened2.Epoch)
		assert.Equal(t, chatv1.Recovery_RECOVERY_COMPLETE, opened2.Recovery)
		assert.Equal(t, uint64(1), otherOpened.HeadSequence)
		next = 2
	} else {
		assert.NotEqual(t, opened.Epoch, opened2.Epoch)
		assert.Equal(t, chatv1.Recovery_RECOVERY_FAILED, opened2.Recovery)
		assert.Zero(t, otherOpened.HeadSequence)
	}
	// A resend of the message sent before the restart is recognised when
	// history survived; with ephemeral history it is new again.
	require.NoError(t, s2.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: "c1", Body: "before restart"}}}))
	require.NoError(t, s2.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: "c2", Body: "after restart"}}}))
	var got []string
	want := 3 - int(next) // both messages are new in a new epoch; only the second in the same one
	for len(got) < want {
		res, err = s2.Recv()
		require.NoError(t, err)
		for _, ev := range res.Events {
			if m := ev.GetMessage(); m != nil {
				assert.Equal(t, next, m.GetSequence(), "sequences go on within the epoch")
				assert.Equal(t, opened2.Epoch, m.GetEpoch())
				got = append(got, m.GetBody())
				next++
			}
		}
	}
	if sameEpoch {
		assert.Equal(t, []string{"after restart"}, got)
	} else {
		assert.Equal(t, []string{"before restart", "after restart"}, got)
	}
	_, err = os.Stat(filepath.Join(dir, "rooms.json"))
	assert.True(t, os.IsNotExist(err), "no rooms.json is written")

	// The room password survived too.
	_, err = second.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
	assert.NoError(t, err)
	_, err = second.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "nope"})
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
}

func TestRunRejectsBadConfig(t *testing.T) {
	t.Setenv("SECRET", "too-short")
	err := run(nil, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SECRET")
}

// A client that stops reading keeps its stream's status from going out,
// and so its connection from finishing GracefulStop; shutdown closes it
// once every handler has returned (SHUTDOWN_TIMEOUT is far away), or at
// once on a second signal.
func TestShutdownWithStalledClient(t *testing.T) {
	cases := []struct {
		name    string
		timeout time.Duration
		force   bool
		log     string
	}{
		{"handlers ended", 30 * time.Second, false, "every call has ended; closing the connections still open"},
		{"second signal", time.Hour, true, "second signal; closing connections"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t.TempDir())
			cfg.ShutdownTimeout = tc.timeout
			cfg.LogLevel = "warn"
			inst := stalled(t, cfg)
			start := time.Now()
			inst.stop()
			if tc.force {
				close(inst.force)
			}
			require.NoError(t, <-inst.done)
			inst.done <- nil // for Cleanup
			assert.Contains(t, inst.log.String(), tc.log)
			assert.Less(t, time.Since(start), 10*time.Second, "well before SHUTDOWN_TIMEOUT")
		})
	}
}

// stalled starts an instance with a stream whose client has stopped
// reading while the server has more to send it.
func stalled(t *testing.T, cfg config.Config) *instance {
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
	t.Cleanup(func() { _ = stalledConn.Close() })
	_, _ = openChat(t, chatv1.NewChatServiceClient(stalledConn), join.Token, nil) // never read again

	sender, _ := openChat(t, inst.client, join.Token, nil)
	body := string(make([]byte, 1000))
	for range 300 {
		require.NoError(t, sender.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{Body: body}}}))
		_, err := sender.Recv()
		require.NoError(t, err)
	}
	return inst
}

func TestRunRejectsPositionalArgs(t *testing.T) {
	t.Setenv("SECRET", secret)
	err := run(nil, []string{"serve"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "usage: chat [--config FILE]")
}

// A busy metrics address stops the start before gRPC serves anything.
func TestMetricsListenerFirst(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer busy.Close()
	cfg := testConfig(t.TempDir())
	cfg.MetricsAddress = busy.Addr().String()
	ready := make(chan net.Addr, 1)
	err = serve(context.Background(), cfg, options{ready: ready, logOut: &logBuffer{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "METRICS_ADDRESS")
	assert.Empty(t, ready, "gRPC never served")
}

// The log looks like the auth service's: ISO 8601 "ts", string durations.
func TestLogFormat(t *testing.T) {
	buf := &logBuffer{}
	log, err := newLogger("info", buf)
	require.NoError(t, err)
	log.Info("x", zap.Duration("duration", 1500*time.Millisecond))
	var line map[string]any
	require.NoError(t, json.Unmarshal(buf.b.Bytes(), &line))
	ts, ok := line["ts"].(string)
	require.True(t, ok, "ts is a string: %v", line["ts"])
	_, err = time.Parse("2006-01-02T15:04:05.000Z0700", ts)
	assert.NoError(t, err)
	assert.Equal(t, "1.5s", line["duration"])
}

// A rooms.json left by a version before the room database is imported at
// start, once, and renamed: its rooms and their passwords work, and a
// deleted room's code stays reserved.
func TestImportsRegistryFile(t *testing.T) {
	dir := t.TempDir()
	cfg := testConfig(dir)
	hasher, err := password.New(cfg.Argon2())
	require.NoError(t, err)
	hash, err := hasher.Hash(context.Background(), "pw")
	require.NoError(t, err)
	doc := fmt.Sprintf(`{"version":2,"rooms":[{"short_code":"ABC234","name":"old room","password_hash":%q,"owner_id":"u1",
		"created_at":"2026-01-01T00:00:00Z","idle_since":"2099-01-01T00:00:00Z"}],
		"tombstones":[{"short_code":"XYZ789","deleted_at":"2099-01-01T00:00:00Z"}]}`, hash)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "rooms.json"), []byte(doc), 0o600))

	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	userTok, _, err := signer.IssueUser("u2", "bob", time.Hour)
	require.NoError(t, err)
	inst := start(t, cfg)
	join, err := inst.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: "abc234", Password: "pw"})
	require.NoError(t, err)
	assert.Equal(t, "old room", join.Name)
	_, err = inst.client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: "XYZ789", Password: "pw"})
	assert.Equal(t, codes.NotFound, status.Code(err))
	assert.NoFileExists(t, filepath.Join(dir, "rooms.json"))
	assert.FileExists(t, filepath.Join(dir, "rooms.json.imported"))

	// The owner may delete it: ownership came along.
	ownerTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)
	_, err = inst.client.DeleteChatRoom(authed(t, userTok), &chatv1.DeleteChatRoomRequest{ShortCode: "ABC234"})
	assert.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = inst.client.DeleteChatRoom(authed(t, ownerTok), &chatv1.DeleteChatRoomRequest{ShortCode: "ABC234"})
	assert.NoError(t, err)
}

// Without NATS, one instance writes a database's history: a second one on
// the same DATABASE_URL refuses to start, naming the key, and starts once
// the first has stopped.
func TestOneInstancePerDatabase(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	cfg := testConfig(t.TempDir())
	cfg.DatabaseURL = url
	first := start(t, cfg)

	second := testConfig(t.TempDir())
	second.DatabaseURL = url
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := serve(ctx, second, options{logOut: &logBuffer{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "DATABASE_URL")
	assert.ErrorIs(t, err, sqlstore.ErrClaimed)

	first.stop()
	require.NoError(t, <-first.done)
	first.done <- nil // for Cleanup
	start(t, second)
}

// In the shared mode, instances share the database, and one that cannot
// reach NATS refuses to start, naming the key.
func TestSharedMode(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	nats := natstest.Server(t)
	var instances []*instance
	for range 2 {
		cfg := testConfig(t.TempDir())
		cfg.DatabaseURL, cfg.NATSURL = url, nats
		instances = append(instances, start(t, cfg))
	}
	// A room made on one instance is joined on the other, where its first
	// message is sequence 1 of the same epoch.
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	userTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)
	room, err := instances[0].client.CreateChatRoom(authed(t, userTok), &chatv1.CreateChatRoomRequest{Name: "shared", Password: "pw"})
	require.NoError(t, err)
	join, err := instances[1].client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
	require.NoError(t, err)
	s, _ := openChat(t, instances[1].client, join.Token, nil)
	require.NoError(t, s.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: "c1", Body: "hello"}}}))
	res, err := s.Recv()
	require.NoError(t, err)
	assert.Equal(t, uint64(1), res.Events[0].GetMessage().GetSequence())

	cfg := testConfig(t.TempDir())
	cfg.NATSURL = "nats://127.0.0.1:1"
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err = serve(ctx, cfg, options{logOut: &logBuffer{}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "NATS_URL nats://127.0.0.1:1")
}

// An instance whose claim on the database is lost (its session ended: a
// failover, a cut connection) stops instead of writing beside another.
func TestStopsWhenClaimLost(t *testing.T) {
	url := sqldbtest.PostgresURL(t)
	cfg := testConfig(t.TempDir())
	cfg.DatabaseURL = url
	inst := start(t, cfg)

	other, err := sql.Open("pgx", url)
	require.NoError(t, err)
	defer other.Close()
	var pid int
	require.NoError(t, other.QueryRow(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND objsubid = 1`).Scan(&pid),
		"the instance holds its claim")
	_, err = other.Exec("SELECT pg_terminate_backend($1)", pid)
	require.NoError(t, err)

	select {
	case err := <-inst.done:
		require.ErrorIs(t, err, sqlstore.ErrClaimLost)
		assert.Contains(t, err.Error(), "DATABASE_URL")
		inst.done <- nil // for Cleanup
	case <-time.After(3 * claimCheckEvery):
		t.Fatal("the instance kept running without its claim")
	}
}
