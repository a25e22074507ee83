package e2e

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The tests of `make run` run scripts/run.sh (what the target runs after
// building) in a directory laid out like a checkout: the repository's
// scripts beside the binaries TestMain built, so that the developer's
// .env.local, data/ and ports stay out of it.

// runRoot returns such a directory.
func runRoot(t *testing.T) string {
	t.Helper()
	needBinaries(t)
	repo, err := filepath.Abs("..")
	require.NoError(t, err)
	root := t.TempDir()
	for _, d := range []string{"scripts", "bin"} {
		require.NoError(t, os.Mkdir(filepath.Join(root, d), 0o755))
	}
	for _, s := range []string{"run.sh", "env-local.sh", "procs.sh", "compose.sh"} {
		b, err := os.ReadFile(filepath.Join(repo, "scripts", s))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(root, "scripts", s), b, 0o755))
	}
	require.NoError(t, os.Symlink(bins.auth, filepath.Join(root, "bin", "auth")))
	require.NoError(t, os.Symlink(bins.chat, filepath.Join(root, "bin", "chat")))
	return root
}

// runScript is scripts/run.sh running.
type runScript struct {
	cmd            *exec.Cmd
	stdout, stderr *syncBuffer
	exited         chan struct{}
	err            error // set before exited is closed
}

// startRun starts root's scripts/run.sh with env (KEY=VALUE) added to a
// minimal environment. It is stopped, if still running, at the end of the
// test, as Ctrl-C would.
func startRun(t *testing.T, root string, env ...string) *runScript {
	t.Helper()
	r := &runScript{stdout: &syncBuffer{}, stderr: &syncBuffer{}, exited: make(chan struct{})}
	r.cmd = exec.Command("bash", filepath.Join(root, "scripts", "run.sh"))
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, env...)
	r.cmd.Stdout, r.cmd.Stderr = r.stdout, r.stderr
	require.NoError(t, r.cmd.Start())
	// The waiter returns once the script exits, which the cleanup forces.
	go func() {
		r.err = r.cmd.Wait()
		close(r.exited)
	}()
	t.Cleanup(func() {
		r.stop(t)
		if t.Failed() {
			t.Logf("--- run.sh stdout:\n%s\n--- stderr:\n%s", r.stdout.String(), r.stderr.String())
		}
	})
	return r
}

// stop asks the script to stop (it stops the services first) and returns
// its exit code.
func (r *runScript) stop(t *testing.T) int {
	t.Helper()
	select {
	case <-r.exited:
		return r.code(t)
	default:
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-r.exited:
	case <-time.After(60 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
		t.Errorf("run.sh did not stop within 60s of SIGTERM")
	}
	return r.code(t)
}

// wait waits for the script to exit by itself and returns its exit code.
func (r *runScript) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-r.exited:
		return r.code(t)
	case <-time.After(d):
		t.Fatalf("run.sh still running after %s; stdout:\n%s\nstderr:\n%s", d, r.stdout.String(), r.stderr.String())
		return 0
	}
}

func (r *runScript) code(t *testing.T) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(r.err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, r.err)
	return 0
}

// listening tells whether something accepts connections on port.
func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// runPorts are free ports for every listener of `make run`.
type runPorts struct{ auth, authMetrics, chat, web, chatMetrics int }

func freeRunPorts(t *testing.T) runPorts {
	return runPorts{freePort(t), freePort(t), freePort(t), freePort(t), freePort(t)}
}

func (p runPorts) env() []string {
	return []string{
		"REST_SERVER_PORT=" + strconv.Itoa(p.auth),
		"AUTH_METRICS_ADDRESS=127.0.0.1:" + strconv.Itoa(p.authMetrics),
		"GRPC_SERVER_PORT=" + strconv.Itoa(p.chat),
		"WEB_SERVER_PORT=" + strconv.Itoa(p.web),
		"METRICS_ADDRESS=127.0.0.1:" + strconv.Itoa(p.chatMetrics),
	}
}

// A service that cannot start fails `make run`: the script exits non-zero
// with the service's own error, naming the address, prints no banner, and
// stops the other service.
func TestRunFailsWhenAPortIsTaken(t *testing.T) {
	tests := []struct {
		service string
		port    func(runPorts) int
		others  func(runPorts) []int // the other service's ports, closed after
	}{
		{"auth", func(p runPorts) int { return p.auth }, func(p runPorts) []int { return []int{p.chat, p.web} }},
		{"chat", func(p runPorts) int { return p.chat }, func(p runPorts) []int { return []int{p.auth} }},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			root := runRoot(t)
			ports := freeRunPorts(t)
			taken := tt.port(ports)
			// Another program holds the port: it accepts connections (the
			// kernel completes them) and never answers.
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(taken)))
			require.NoError(t, err)
			defer l.Close()

			r := startRun(t, root, ports.env()...)
			code := r.wait(t, 60*time.Second)
			assert.NotEqual(t, 0, code)
			stderr := r.stderr.String()
			assert.Contains(t, stderr, tt.service+" exited")
			assert.Contains(t, stderr, fmt.Sprintf("%s: listen", tt.service), "the service's own error")
			assert.Contains(t, stderr, fmt.Sprintf("127.0.0.1:%d", taken), "naming the address")
			assert.Contains(t, stderr, "address already in use")
			assert.NotContains(t, r.stdout.String(), "is up", "no banner")
			for _, p := range tt.others(ports) {
				assert.False(t, listening(p), "the other service was stopped (port %d)", p)
			}
		})
	}
}

// The ports come from the documented keys, in .env.local or in the
// environment, which wins; the banner shows where the services are, and
// they are there.
func TestRunUsesConfiguredAddresses(t *testing.T) {
	root := runRoot(t)
	file, env := freeRunPorts(t), freeRunPorts(t)
	envLocal := "SECRET=" + randomHex(32) + "\n" +
		"# a comment\n" +
		fmt.Sprintf("REST_SERVER_PORT=%d\n", file.auth) +
		fmt.Sprintf("export GRPC_SERVER_PORT=%d\n", file.chat) +
		fmt.Sprintf("WEB_SERVER_PORT=\"%d\"\n", file.web) +
		fmt.Sprintf("AUTH_METRICS_ADDRESS=127.0.0.1:%d # auth's\n", file.authMetrics) +
		fmt.Sprintf("METRICS_ADDRESS='127.0.0.1:%d'\n", file.chatMetrics)
	require.NoError(t, os.WriteFile(filepath.Join(root, ".env.local"), []byte(envLocal), 0o600))

	// The environment sets auth's port; the rest come from the file.
	r := startRun(t, root, "REST_SERVER_PORT="+strconv.Itoa(env.auth))
	deadline := time.Now().Add(60 * time.Second)
	// The banner comes in several writes: wait for its last line.
	for !strings.Contains(r.stdout.String(), "Press Ctrl-C") {
		select {
		case <-r.exited:
			t.Fatalf("run.sh exited (%v); stderr:\n%s", r.err, r.stderr.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "no banner within 60s; stderr:\n%s", r.stderr.String())
		time.Sleep(50 * time.Millisecond)
	}
	banner := r.stdout.String()
	authURL := fmt.Sprintf("http://127.0.0.1:%d", env.auth)
	chatAddr := fmt.Sprintf("127.0.0.1:%d", file.chat)
	webURL := fmt.Sprintf("http://127.0.0.1:%d", file.web)
	for _, want := range []string{
		authURL, chatAddr, webURL,
		fmt.Sprintf("http://127.0.0.1:%d/metrics", file.authMetrics),
		fmt.Sprintf("http://127.0.0.1:%d/metrics", file.chatMetrics),
		fmt.Sprintf("bin/chatter --auth-url %s --chat-addr %s", authURL, chatAddr),
	} {
		assert.Contains(t, banner, want)
	}

	get := func(url string) (int, string) {
		resp, err := http.Get(url)
		if !assert.NoError(t, err, url) {
			return 0, ""
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, _ := get(authURL + "/readyz")
	assert.Equal(t, http.StatusOK, code, "auth on the environment's port")
	assert.False(t, listening(file.auth), "nothing on the file's auth port, which the environment overrode")
	code, body := get(webURL + "/config.json")
	assert.Equal(t, http.StatusOK, code)
	assert.Contains(t, body, authURL, "the page calls auth where it is")
	assert.True(t, listening(file.chat), "chat's gRPC port")
	for _, p := range []int{file.authMetrics, file.chatMetrics} {
		code, _ = get(fmt.Sprintf("http://127.0.0.1:%d/metrics", p))
		assert.Equal(t, http.StatusOK, code, "metrics on %d", p)
	}

	assert.Equal(t, 0, r.stop(t), "stopped as by Ctrl-C: exit 0")
	for _, p := range []int{env.auth, file.chat, file.web, file.authMetrics, file.chatMetrics} {
		assert.False(t, listening(p), "port %d closed after the stop", p)
	}
}

// make up without Docker or without its compose plugin says what is
// missing and what to run instead, before anything else.
func TestComposeNeedsDocker(t *testing.T) {
	root := runRoot(t)
	tools := t.TempDir()
	for _, tool := range []string{"bash", "dirname"} {
		p, err := exec.LookPath(tool)
		require.NoError(t, err)
		require.NoError(t, os.Symlink(p, filepath.Join(tools, tool)))
	}
	oldDocker := t.TempDir()
	// A docker without the compose plugin, as an old Docker install has.
	require.NoError(t, os.WriteFile(filepath.Join(oldDocker, "docker"),
		[]byte("#!/bin/sh\necho \"docker: unknown command: docker $1\" >&2\nexit 1\n"), 0o755))
	tests := []struct {
		name, path, missing string
	}{
		{"no docker", tools, "docker is not installed"},
		{"no compose plugin", tools + string(os.PathListSeparator) + oldDocker, "'docker compose version' fails"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(filepath.Join(tools, "bash"), filepath.Join(root, "scripts", "compose.sh"), "up", "-d", "--build")
			cmd.Env = []string{"PATH=" + tt.path}
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			require.ErrorAs(t, err, &ee, "%s", out)
			assert.NotEqual(t, 0, ee.ExitCode())
			assert.Contains(t, string(out), tt.missing)
			assert.Contains(t, string(out), "make run")
			assert.Contains(t, string(out), "make run-cluster")
			assert.NoFileExists(t, filepath.Join(root, "deployments", ".env"), "nothing written first")
		})
	}
}
