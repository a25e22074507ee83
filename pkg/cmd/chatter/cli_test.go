package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/sys/unix"
)

func TestMain(m *testing.M) {
	if os.Getenv(asChatter) == "1" {
		// Re-executed by a test to be chatter itself (see chatterProcess).
		main()
	}
	goleak.VerifyTestMain(m)
}

func env(kv ...string) lookupEnv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  lookupEnv
		code int
		msg  string
	}{
		{"no args off a terminal", nil, env(), exitUsage, "usage"},
		{"help", []string{"help"}, env(), exitOK, ""},
		{"unknown command", []string{"nope"}, env(), exitUsage, `unknown command "nope"`},
		{"join without code", []string{"join"}, env(), exitUsage, "CODE"},
		{"bad flag", []string{"login", "--bogus"}, env(), exitUsage, "bogus"},
		{"no user", []string{"login"}, env("CHATTER_PASSWORD", "x"), exitUsage, "CHATTER_USER"},
		{"no password off a terminal", []string{"login", "--user", "a"}, env(), exitUsage, "CHATTER_PASSWORD"},
		{"negative wait", []string{"join", "--wait", "-1s", "ABC234"}, env(), exitUsage, "--wait must not be negative"},
		{"negative backlog", []string{"join", "--backlog", "-1", "ABC234"}, env(), exitUsage, "--backlog must not be negative"},
		{"backlog not a number", []string{"join", "--backlog", "lots", "ABC234"}, env(), exitUsage, "backlog"},
		{"help documents backlog", []string{"help"}, env(), exitOK, "--backlog N"},
		{"auth URL without scheme", []string{"login"}, env("CHATTER_USER", "a", "CHATTER_PASSWORD", "x", "CHATTER_AUTH_URL", "localhost:8080"), exitUsage, "auth URL"},
		{"service down", []string{"login"}, env("CHATTER_USER", "a", "CHATTER_PASSWORD", "x", "CHATTER_AUTH_URL", "http://127.0.0.1:1"), exitRuntime, "is the service running"},
		{"bad token", []string{"create-room", "r"}, env("CHATTER_TOKEN", "garbage"), exitAuth, "CHATTER_TOKEN"},
		{"tui off a terminal", []string{"tui"}, env(), exitUsage, "terminal"},
		{"help documents address lists", []string{"help"}, env(), exitOK, "separated by commas"},
		{"chat address list with a gap", []string{"login"}, env("CHATTER_USER", "a", "CHATTER_PASSWORD", "x", "CHATTER_CHAT_ADDR", "127.0.0.1:5050,,127.0.0.1:5051"), exitUsage, "chat address 2 of 3 is empty"},
		{"chat target in a list", []string{"login", "--chat-addr", "dns:///chat:5050,127.0.0.1:5051"}, env("CHATTER_USER", "a", "CHATTER_PASSWORD", "x"), exitUsage, "can only be given alone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, tt.args, stdio{in: strings.NewReader(""), out: &out, err: &errb}, tt.env)
			assert.Equal(t, tt.code, code, errb.String())
			assert.Contains(t, out.String()+errb.String(), tt.msg)
		})
	}
}

func TestChatAddresses(t *testing.T) {
	tests := []struct {
		list string
		want []string
	}{
		{"127.0.0.1:5050", []string{"127.0.0.1:5050"}},
		{"dns:///chat.example:5050", []string{"dns:///chat.example:5050"}},
		{"10.0.0.1:5050,10.0.0.2:5050", []string{"10.0.0.1:5050", "10.0.0.2:5050"}},
		{" 10.0.0.1:5050 , [::1]:5050 ", []string{"10.0.0.1:5050", "[::1]:5050"}},
		{"10.0.0.1:5050,", []string{"10.0.0.1:5050", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.list, func(t *testing.T) {
			assert.Equal(t, tt.want, chatAddresses(tt.list))
		})
	}
}

func TestExitCodeMapping(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{&client.Error{Kind: client.ErrUnauthenticated}, exitAuth},
		{&client.Error{Kind: client.ErrPermissionDenied}, exitAuth},
		{&client.Error{Kind: client.ErrRateLimited}, exitAuth},
		{&client.Error{Kind: client.ErrNotFound}, exitNotFound},
		{fmt.Errorf("session ended: %w", &client.Error{Kind: client.ErrRoomDeleted}), exitNotFound},
		{&client.Error{Kind: client.ErrAlreadyTaken}, exitTaken},
		{usageError{"x"}, exitUsage},
		{&client.Error{Kind: client.ErrInvalidArgument}, exitUsage},
		{errors.New("boom"), exitRuntime},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			assert.Equal(t, tt.want, exitCode(tt.err))
		})
	}
}

func TestPrinter(t *testing.T) {
	var out, errb bytes.Buffer
	p := printer{out: &out, err: &errb}
	p.event(&client.Message{Sender: "alice", Body: "hi"})
	p.event(&client.Presence{Kind: client.Left, User: "bob"})
	assert.Equal(t, "alice: hi\n", out.String())
	assert.Equal(t, "* bob left\n", errb.String())

	out.Reset()
	p.json = true
	p.event(&client.Message{Sequence: 3, Sender: "alice", Body: "hi"})
	p.event(&client.Gap{Epoch: "e2"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	assert.Len(t, lines, 2)
	assert.Contains(t, lines[0], `"type":"message"`)
	assert.Contains(t, lines[0], `"sequence":3`)
	assert.Contains(t, lines[1], `"type":"gap"`)
}

// Messages from before the join come first, marked as earlier in every
// output form; live ones are not.
func TestPrinterEarlier(t *testing.T) {
	room := &client.Room{ShortCode: "ABC234", Name: "general", Backlog: 2, Users: []client.User{{Name: "bob"}}}
	earlier := &client.Message{Sequence: 7, Sender: "alice", Body: "old news", Earlier: true}
	live := &client.Message{Sequence: 8, Sender: "alice", Body: "fresh"}
	tests := []struct {
		name       string
		p          printer
		out, joins string
	}{
		{"text", printer{}, "[earlier] alice: old news\nalice: fresh\n", "* joined general (ABC234) as bob; 1 online; 2 earlier messages follow\n"},
		{"text on a terminal", printer{dim: true}, "\x1b[2m[earlier] alice: old news\x1b[0m\nalice: fresh\n", "2 earlier messages follow"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			p := tt.p
			p.out, p.err = &out, &errb
			p.joined(room, "bob")
			p.event(earlier)
			p.event(live)
			assert.Equal(t, tt.out, out.String())
			assert.Contains(t, errb.String(), tt.joins)
		})
	}

	t.Run("json", func(t *testing.T) {
		var out bytes.Buffer
		p := printer{out: &out, err: io.Discard, json: true}
		p.joined(room, "bob")
		p.event(earlier)
		p.event(live)
		var lines []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var v map[string]any
			require.NoError(t, json.Unmarshal([]byte(l), &v), l)
			lines = append(lines, v)
		}
		require.Len(t, lines, 3)
		assert.Equal(t, "joined", lines[0]["type"])
		assert.EqualValues(t, 2, lines[0]["backlog"])
		assert.Equal(t, "old news", lines[1]["body"])
		assert.Equal(t, true, lines[1]["earlier"])
		assert.Equal(t, "fresh", lines[2]["body"])
		assert.Equal(t, false, lines[2]["earlier"])
	})
}

func TestEchoes(t *testing.T) {
	e := newEchoes()
	e.sent("a")
	e.echoed("b") // echo overtook Send's return
	e.sent("b")
	assert.Equal(t, 1, e.outstanding())
	e.echoed("a")
	assert.Equal(t, 0, e.outstanding())

	// Echoes dropped unread cannot be confirmed: a gap that dropped
	// messages settles every echo still awaited.
	e.sent("c")
	e.sent("d")
	require.Equal(t, 2, e.outstanding())
	e.settleAll()
	assert.Equal(t, 0, e.outstanding())
}

func TestDroppedEventsDescribed(t *testing.T) {
	assert.Equal(t, "fell behind: 7 events not shown, 5 of them messages", describeEvent(&client.Gap{Dropped: 7, DroppedMessages: 5}))
	assert.Contains(t, describeEvent(&client.Gap{Dropped: 7, ServiceGap: true}), "reconnecting")
}

// openPTY opens a pseudo-terminal: the test plays the terminal on master,
// chatter reads slave as its standard input.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	fd := int(master.Fd())
	require.NoError(t, unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0))
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	require.NoError(t, err)
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	require.NoError(t, err)
	return master, slave
}

// notifyWriter is a buffer that says when it first contains want.
type notifyWriter struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	had := strings.Contains(w.buf.String(), w.want)
	w.buf.Write(p)
	if !had && strings.Contains(w.buf.String(), w.want) {
		close(w.seen)
	}
	return len(p), nil
}

func (w *notifyWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// An interrupt at a password prompt ends chatter with 130 and the
// terminal's echo back on, although the read itself cannot be cancelled.
func TestPasswordPromptInterrupted(t *testing.T) {
	master, slave := openPTY(t)
	defer slave.Close()
	stderr := &notifyWriter{want: "password for alice", seen: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	code := make(chan int, 1)
	go func() { // returns once the interrupt ends the prompt
		code <- run(ctx, []string{"login", "--user", "alice"}, stdio{in: slave, out: io.Discard, err: stderr}, env())
	}()
	select {
	case <-stderr.seen:
	case <-time.After(10 * time.Second):
		t.Fatalf("no prompt; stderr: %q", stderr.String())
	}
	echo := func() bool {
		tio, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		require.NoError(t, err)
		return tio.Lflag&unix.ECHO != 0
	}
	// The prompt turns echo off; interrupt only once it has.
	for deadline := time.Now().Add(10 * time.Second); echo(); {
		require.True(t, time.Now().Before(deadline), "echo never turned off")
		runtime.Gosched()
	}
	cancel()
	select {
	case c := <-code:
		assert.Equal(t, exitInterrupted, c)
	case <-time.After(10 * time.Second):
		t.Fatal("chatter still waiting for the password after the interrupt")
	}
	assert.True(t, echo(), "echo restored")
	assert.Contains(t, stderr.String(), "interrupted")
	// Hanging up the terminal ends the abandoned read.
	require.NoError(t, master.Close())
}
