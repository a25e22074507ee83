package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// asServiceEnv makes the test binary run main (see TestMain).
const asServiceEnv = "CHAT_TEST_AS_SERVICE"

// service is the chat service running as a process of its own.
type service struct {
	cmd    *exec.Cmd
	addr   string // gRPC
	mu     sync.Mutex
	lines  []string // the log
	exited chan struct{}
	err    error // Wait's, once exited is closed
}

func (s *service) log() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// freePort returns a port that was free a moment ago.
func freePort(t *testing.T) int {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	return lis.Addr().(*net.TCPAddr).Port
}

// startService runs the service as its binary would run, with its
// configuration in the environment, and waits until it serves.
func startService(t *testing.T, env map[string]string) *service {
	grpcPort, webPort := freePort(t), freePort(t)
	cmd := exec.Command(os.Args[0]) // main reads no test flags: it would refuse them
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), asServiceEnv + "=1",
		"SECRET=" + secret, "DATA_DIR=" + t.TempDir(), "METRICS_ADDRESS=",
		"GRPC_SERVER_ADDRESS=127.0.0.1", "GRPC_SERVER_PORT=" + strconv.Itoa(grpcPort),
		"WEB_SERVER_ADDRESS=127.0.0.1", "WEB_SERVER_PORT=" + strconv.Itoa(webPort)}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	s := &service{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(grpcPort)), exited: make(chan struct{})}
	serving := make(chan struct{})
	// Owner: the service. Exit: its stderr closes when it exits.
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
			var line struct{ Msg string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "serving" {
				once.Do(func() { close(serving) })
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		s.err = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			t.Logf("service log:\n%s", s.log())
		}
	})
	select {
	case <-serving:
	case <-s.exited:
		t.Fatalf("the service exited: %v\n%s", s.err, s.log())
	case <-time.After(30 * time.Second):
		t.Fatalf("the service did not start\n%s", s.log())
	}
	return s
}

// SIGTERM with a client that has stopped reading, its flow-control window
// full and more queued for it: the process exits well before
// SHUTDOWN_TIMEOUT (30 s here; 5 s is the bound, a fault bound with a
// wide margin over the 1 s drain grace and the 0.5 s connection grace),
// and the clients that read get the service's UNAVAILABLE. The stalled
// client's connection is closed: gRPC holds a stream's status behind the
// data its client has not read, so that client sees the transport's error.
func TestSIGTERMWithStalledClient(t *testing.T) {
	svc := startService(t, map[string]string{"SHUTDOWN_TIMEOUT": "30s", "LOG_LEVEL": "info"})
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	userTok, _, err := signer.IssueUser("u1", "ann", time.Hour)
	require.NoError(t, err)
	dial := func(opts ...grpc.DialOption) chatv1.ChatServiceClient {
		conn, err := grpc.NewClient(svc.addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
		require.NoError(t, err)
		t.Cleanup(func() { _ = conn.Close() })
		return chatv1.NewChatServiceClient(conn)
	}
	client := dial()
	room, err := client.CreateChatRoom(authed(t, userTok), &chatv1.CreateChatRoomRequest{Name: "r", Password: "pw"})
	require.NoError(t, err)
	join, err := client.JoinChatRoom(authed(t, userTok), &chatv1.JoinChatRoomRequest{ShortCode: room.ShortCode, Password: "pw"})
	require.NoError(t, err)

	// Two members that read everything, each on its own connection.
	const messages = 200
	type result struct {
		got int
		err error
	}
	results := make(chan result, 2)
	for range 2 {
		s, _ := openChat(t, dial(), join.Token, nil)
		// Owner: the test. Exit: the stream ends at shutdown.
		go func() {
			got := 0
			for {
				res, err := s.Recv()
				if err != nil {
					results <- result{got, err}
					return
				}
				for _, ev := range res.Events {
					if ev.GetMessage() != nil {
						got++
					}
				}
			}
		}()
	}
	// One that reads nothing after Opened, with 64 KiB windows: 200
	// messages of 1,000 bytes fill them, and gRPC's write quota, and keep
	// its writer waiting with more queued (within the queue's 256).
	stalled, _ := openChat(t, dial(grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10)), join.Token, nil)
	sender, _ := openChat(t, client, join.Token, nil)
	body := strings.Repeat("x", 1000)
	for i := range messages {
		require.NoError(t, sender.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: strconv.Itoa(i), Body: body}}}))
		for {
			res, err := sender.Recv()
			require.NoError(t, err)
			if len(res.Events) > 0 && res.Events[len(res.Events)-1].GetMessage().GetClientMessageId() == strconv.Itoa(i) {
				break
			}
		}
	}

	start := time.Now()
	require.NoError(t, svc.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-svc.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("the service did not exit within 20 s of SIGTERM")
	}
	took := time.Since(start)
	t.Logf("exited %s after SIGTERM", took)
	require.NoError(t, svc.err, "exit status")
	assert.Less(t, took, 5*time.Second, "well before SHUTDOWN_TIMEOUT")
	assert.Contains(t, svc.log(), "every call has ended; closing the connections still open")

	for range 2 {
		r := <-results
		assert.Equal(t, messages, r.got, "every message before the end")
		st := status.Convert(r.err)
		assert.Equal(t, codes.Unavailable, st.Code())
		assert.Equal(t, rooms.ErrShuttingDown.Error(), st.Message(), "the service's status, not the transport's")
	}
	stalledEnd := endCode(stalled)
	t.Logf("the stalled client's stream ended with %v", stalledEnd)
	assert.NotEqual(t, codes.OK, stalledEnd)
}
