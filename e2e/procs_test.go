package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// syncBuffer is a bytes.Buffer safe for a process's writer and the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// proc is a service running as a process. It is killed at the end of the
// test; its output goes to the test log if the test failed.
type proc struct {
	name   string
	cmd    *exec.Cmd
	output *syncBuffer
	exited chan struct{}
	err    error // set before exited is closed
}

func startProc(t *testing.T, name, bin string, env map[string]string) *proc {
	t.Helper()
	return startArgv(t, name, []string{bin}, env)
}

// startArgv is startProc for a command line, e.g. one that `ip netns exec`
// runs in a namespace (it replaces itself with the command, so the
// process is the service's).
func startArgv(t *testing.T, name string, argv []string, env map[string]string) *proc {
	t.Helper()
	p := &proc{name: name, output: &syncBuffer{}, exited: make(chan struct{})}
	p.cmd = exec.Command(argv[0], argv[1:]...)
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.output, p.output
	require.NoError(t, p.cmd.Start(), "starting %s", name)
	// The waiter lives until the process exits, which Cleanup forces.
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
		if t.Failed() {
			t.Logf("--- %s output:\n%s", p.name, p.output.String())
		}
	})
	return p
}

// stop sends SIGTERM and waits for the process to exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		t.Fatalf("%s did not exit within 20s of SIGTERM", p.name)
	}
}

// kill sends SIGKILL and waits for the process to exit: a crash, with no
// chance to write anything.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s did not exit within 10s of SIGKILL", p.name)
	}
}

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// waitFor polls ready until it succeeds, failing when p exits or after 20s.
func waitFor(t *testing.T, p *proc, what string, ready func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if !p.running() {
			t.Fatalf("%s exited before it was ready (%v):\n%s", p.name, p.err, p.output.String())
		}
		if err = ready(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not ready after 20s: %v", what, err)
}

// stack is an auth and a chat service. Chat also serves the web page on
// webURL, whose origin auth allows for CORS.
type stack struct {
	authURL  string
	chatAddr string
	webURL   string
	auth     *proc
	chat     *proc
	chatEnv  map[string]string
}

type stackOptions struct {
	databaseURL string            // empty: SQLite in a temp dir
	authEnv     map[string]string // extra auth settings
	chatEnv     map[string]string // extra chat settings
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	needBinaries(t)
	secret := randomHex(32)
	authPort, chatPort, webPort := freePort(t), freePort(t), freePort(t)
	s := &stack{
		authURL:  fmt.Sprintf("http://127.0.0.1:%d", authPort),
		chatAddr: fmt.Sprintf("127.0.0.1:%d", chatPort),
		webURL:   fmt.Sprintf("http://127.0.0.1:%d", webPort),
	}
	authEnv := map[string]string{
		"SECRET":              secret,
		"REST_SERVER_ADDRESS": "127.0.0.1",
		"REST_SERVER_PORT":    strconv.Itoa(authPort),
		"DATA_DIR":            t.TempDir(),
		"DATABASE_URL":        opts.databaseURL,
		"ARGON2_MEMORY_KIB":   "19456", // the cheapest hashing auth accepts: tests are not about its cost
		"ARGON2_TIME":         "2",
		// The page chat serves calls auth from its own origin.
		"CORS_ALLOWED_ORIGINS": s.webURL,
		// Not auth's default metrics port, which stacks side by side would share.
		"METRICS_ADDRESS": "127.0.0.1:0",
	}
	for k, v := range opts.authEnv {
		authEnv[k] = v
	}
	s.auth = startProc(t, "auth", bins.auth, authEnv)
	s.chatEnv = map[string]string{
		"SECRET":              secret,
		"GRPC_SERVER_ADDRESS": "127.0.0.1",
		"GRPC_SERVER_PORT":    strconv.Itoa(chatPort),
		"DATA_DIR":            t.TempDir(),
		"METRICS_ADDRESS":     "127.0.0.1:0",
		"SHUTDOWN_TIMEOUT":    "3s",
		// Its own port, so that stacks side by side do not clash on the
		// default one.
		"WEB_SERVER_ADDRESS": "127.0.0.1",
		"WEB_SERVER_PORT":    strconv.Itoa(webPort),
		"WEB_AUTH_URL":       s.authURL,
	}
	for k, v := range opts.chatEnv {
		s.chatEnv[k] = v
	}
	s.startChat(t)
	waitFor(t, s.auth, "auth /readyz", func() error {
		resp, err := http.Get(s.authURL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return s
}

// startChat starts the chat service and waits until its health check says
// SERVING.
func (s *stack) startChat(t *testing.T) {
	t.Helper()
	if s.webURL == "" {
		// Another instance of a stack's chat (the cluster tests copy its
		// settings): its web page needs a port of its own too.
		port := freePort(t)
		s.chatEnv["WEB_SERVER_PORT"] = strconv.Itoa(port)
		s.webURL = fmt.Sprintf("http://127.0.0.1:%d", port)
	}
	s.chat = startProc(t, "chat", bins.chat, s.chatEnv)
	conn, err := grpc.NewClient(s.chatAddr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.Config{BaseDelay: 20 * time.Millisecond, Multiplier: 1.5, MaxDelay: 200 * time.Millisecond}}))
	require.NoError(t, err)
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	waitFor(t, s.chat, "chat health", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			return err
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("health: %s", resp.GetStatus())
		}
		return nil
	})
}

// restartChat stops the chat service with SIGTERM and starts it again on
// the same port and DATA_DIR.
func (s *stack) restartChat(t *testing.T) {
	t.Helper()
	s.chat.stop(t)
	s.startChat(t)
}

// crashChat kills the chat service with SIGKILL and starts it again on the
// same port and DATA_DIR.
func (s *stack) crashChat(t *testing.T) {
	t.Helper()
	s.chat.kill(t)
	s.startChat(t)
}

// postgresURL creates a fresh database for the test and returns its URL, or
// skips when PostgreSQL is not reachable (fails if it is required).
func postgresURL(t *testing.T) string {
	t.Helper()
	admin := os.Getenv("TEST_DATABASE_URL")
	if admin == "" {
		admin = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		if os.Getenv("GRPCCHATTER_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL at TEST_DATABASE_URL is required (GRPCCHATTER_REQUIRE_POSTGRES=1) but unreachable: %v", err)
		}
		t.Skipf("PostgreSQL not reachable at TEST_DATABASE_URL, skipping (set GRPCCHATTER_REQUIRE_POSTGRES=1 to fail instead): %v", err)
	}
	defer conn.Close(ctx)
	name := "grpcchatter_e2e_" + randomHex(6)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+name)
	require.NoError(t, err, "creating the test database")
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, admin)
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u, err := url.Parse(admin)
	require.NoError(t, err, "TEST_DATABASE_URL")
	u.Path = "/" + name
	return u.String()
}
