package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// asChatter, set to 1 in the environment, makes the test binary run
// chatter's main instead of the tests.
const asChatter = "CHATTER_TEST_AS_MAIN"

// The escape sequences that ask a terminal something: its background and
// foreground colours (OSC 11, OSC 10), the cursor position, its device
// attributes and its keyboard protocol. Unanswered, some libraries wait
// seconds for the reply.
var terminalQueries = []string{"\x1b]11;?", "\x1b]10;?", "\x1b[6n", "\x1b[c", "\x1b[>c", "\x1b[?u"}

// ptyChatter is chatter running as a process of its own, its standard
// streams and controlling terminal a pseudo-terminal whose other end, the
// test, reads everything and answers nothing.
type ptyChatter struct {
	master *os.File
	screen *notifyWriter
	read   chan struct{} // closed when the reader is done
	exited chan error
	start  time.Time
}

func startOnPTY(t *testing.T, want string, args []string, env ...string) *ptyChatter {
	t.Helper()
	self, err := os.Executable()
	require.NoError(t, err)
	master, slave := openPTY(t)
	cmd := exec.Command(self, args...)
	cmd.Env = append([]string{asChatter + "=1", "TERM=xterm-256color", "PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	// A session of its own with the pseudo-terminal as its controlling
	// terminal, so that /dev/tty is the silent one too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	p := &ptyChatter{master: master, screen: &notifyWriter{want: want, seen: make(chan struct{})},
		read: make(chan struct{}), exited: make(chan error, 1), start: time.Now()}
	require.NoError(t, cmd.Start())
	require.NoError(t, slave.Close()) // the child holds its own copies
	// The reader drains the terminal until chatter has exited and the
	// test closes the master (or the pseudo-terminal reports the hang-up).
	go func() {
		defer close(p.read)
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			_, _ = p.screen.Write(buf[:n])
			if err != nil {
				return
			}
		}
	}()
	// The waiter returns once chatter exits, which the cleanup forces.
	go func() { p.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
		_ = master.Close()
		<-p.read
	})
	return p
}

// wait returns chatter's exit code and how long it ran; it kills chatter
// after a bound far above any normal run.
func (p *ptyChatter) wait(t *testing.T) (int, time.Duration) {
	t.Helper()
	var err error
	select {
	case err = <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("chatter still running after 30s; the screen:\n%q", p.screen.String())
	}
	p.exited <- err // for the cleanup
	elapsed := time.Since(p.start)
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), elapsed
	}
	require.NoError(t, err)
	return 0, elapsed
}

// A terminal that never answers must not hold up the commands that are
// not the full-screen client: they ask the terminal nothing, and return
// as soon as their work is done.
func TestCommandsDoNotQueryTheTerminal(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  []string
		code int
	}{
		{"help", []string{"help"}, nil, exitOK},
		{"login, service down", []string{"login"}, []string{"CHATTER_USER=alice", "CHATTER_PASSWORD=x", "CHATTER_AUTH_URL=http://127.0.0.1:1"}, exitRuntime},
		{"users --json, bad token", []string{"--json", "users", "ABC234"}, []string{"CHATTER_TOKEN=garbage", "CHATTER_ROOM_PASSWORD=x"}, exitAuth},
		{"usage error", []string{"nope"}, nil, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startOnPTY(t, "", tt.args, tt.env...)
			code, elapsed := p.wait(t)
			require.NoError(t, p.master.Close())
			<-p.read
			screen := p.screen.String()
			assert.Equal(t, tt.code, code, screen)
			// A hang check, not a measure of speed: an unanswered query
			// costs 5 s; the work itself takes milliseconds.
			assert.Less(t, elapsed, 3*time.Second, "chatter %v took %s on a silent terminal", tt.args, elapsed)
			for _, q := range terminalQueries {
				assert.NotContains(t, screen, q, "chatter %v queried the terminal", tt.args)
			}
		})
	}
}

// The full-screen client on a terminal that never answers its queries
// shows its first screen and quits on Ctrl-C without waiting for them.
func TestTUIOnASilentTerminal(t *testing.T) {
	p := startOnPTY(t, "GRPCChatter — log in", []string{"tui"}, "CHATTER_USER=alice")
	select {
	case <-p.screen.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("no login screen within 10s; the screen:\n%q", p.screen.String())
	}
	shown := time.Since(p.start)
	_, err := p.master.Write([]byte{0x03}) // Ctrl-C, as a terminal in raw mode sends it
	require.NoError(t, err)
	code, _ := p.wait(t)
	assert.Equal(t, exitOK, code, p.screen.String())
	// A hang check, as above.
	assert.Less(t, shown, 3*time.Second, "the login screen took %s on a silent terminal", shown)
	assert.True(t, strings.Contains(p.screen.String(), "\x1b[?1049h"), "the client used the alternate screen")
}
