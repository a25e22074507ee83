package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Global flags go anywhere on the line: before the command, between its
// arguments or after them; a flag's value is never taken for the command.
func TestFlagsAnywhere(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		cmd      string
		rest     []string
		fails    string
		wantJSON bool
		wantUser string
	}{
		{name: "after", args: []string{"users", "--json", "ABC234"}, cmd: "users", rest: []string{"--json", "ABC234"}, wantJSON: true},
		{name: "before", args: []string{"--json", "users", "ABC234"}, cmd: "users", rest: []string{"--json", "ABC234"}, wantJSON: true},
		{name: "a value that names a command", args: []string{"--user", "join", "users", "ABC234"}, cmd: "users",
			rest: []string{"--user", "join", "ABC234"}, wantUser: "join"},
		{name: "value after =", args: []string{"--user=bob", "login"}, cmd: "login", rest: []string{"--user=bob"}, wantUser: "bob"},
		{name: "a command's own flag before it", args: []string{"--backlog", "5", "join", "ABC234"}, cmd: "join", rest: []string{"--backlog", "5", "ABC234"}},
		{name: "no command", args: []string{"--user", "bob"}, cmd: "", rest: []string{"--user", "bob"}},
		{name: "unknown flag", args: []string{"--bogus", "users"}, fails: "bogus"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &app{env: env()}
			cmd, rest, err := a.splitCommand(tt.args)
			if tt.fails != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.fails)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.cmd, cmd)
			assert.Equal(t, tt.rest, rest)
			if cmd == "" {
				return
			}
			c, ok := lookupCommand(cmd)
			require.True(t, ok)
			pos, err := parseAnywhere(a.flagSet(cmd, c.flags), rest)
			require.NoError(t, err)
			assert.Len(t, pos, len(c.args))
			assert.Equal(t, tt.wantJSON, a.json)
			if tt.wantUser != "" {
				assert.Equal(t, tt.wantUser, a.user)
			}
		})
	}
}

// The same command line with the flags in different places fails or
// succeeds the same way, through run.
func TestFlagPlacementThroughRun(t *testing.T) {
	service := env("CHATTER_TOKEN", "garbage", "CHATTER_ROOM_PASSWORD", "x")
	for _, args := range [][]string{
		{"--json", "users", "ABC234"},
		{"users", "--json", "ABC234"},
		{"users", "ABC234", "--json"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), args, stdio{in: strings.NewReader(""), out: &out, err: &errb}, service)
			// The token is refused: the flags were all understood.
			assert.Equal(t, exitAuth, code, errb.String())
			assert.NotContains(t, errb.String(), "not defined")
		})
	}
	var errb bytes.Buffer
	code := run(context.Background(), []string{"--json", "tui"}, stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &errb}, env())
	assert.Equal(t, exitUsage, code)
	assert.Contains(t, errb.String(), "no --json output")
	errb.Reset()
	code = run(context.Background(), []string{"--wait", "1s", "users", "ABC234"}, stdio{in: strings.NewReader(""), out: &bytes.Buffer{}, err: &errb}, service)
	assert.Equal(t, exitUsage, code, "users has no --wait")
	assert.Contains(t, errb.String(), "wait")
}

// README.md's CLI section shows `chatter help` as it is.
func TestREADMEShowsHelp(t *testing.T) {
	readme, err := os.ReadFile("../../../README.md")
	require.NoError(t, err)
	section := string(readme)
	start := strings.Index(section, "## Using the CLI")
	require.GreaterOrEqual(t, start, 0, "README.md has no CLI section")
	section = section[start:]
	open := strings.Index(section, "```\n")
	require.GreaterOrEqual(t, open, 0, "the CLI section has no code block")
	section = section[open+len("```\n"):]
	end := strings.Index(section, "```")
	require.GreaterOrEqual(t, end, 0)
	var out bytes.Buffer
	require.Equal(t, exitOK, run(context.Background(), []string{"help"}, stdio{in: strings.NewReader(""), out: &out, err: &out}, env()))
	assert.Equal(t, out.String(), section[:end], "README.md's CLI section differs from `chatter help`")
}

// A new password typed at a prompt is asked for twice, and two that differ
// stop the command before it reaches the service. From the environment or
// with --password-stdin it is not asked for twice.
func TestNewPasswordConfirmed(t *testing.T) {
	down := "http://127.0.0.1:1" // nothing listens: reaching it fails with exit 1
	t.Run("typed twice, differing", func(t *testing.T) {
		code, stderr := registerAtPrompt(t, down, "first-password", "other-password")
		assert.Equal(t, exitUsage, code, stderr)
		assert.Contains(t, stderr, "differ")
		assert.NotContains(t, stderr, "is the service running", "nothing was sent")
	})
	t.Run("typed twice, the same", func(t *testing.T) {
		code, stderr := registerAtPrompt(t, down, "same-password", "same-password")
		assert.Equal(t, exitRuntime, code, stderr)
		assert.Contains(t, stderr, "is the service running", "sent to the service")
	})
	tests := []struct {
		name  string
		args  []string
		env   lookupEnv
		stdin string
		code  int
		msg   string
	}{
		{"register from stdin", []string{"register", "--password-stdin"}, env("CHATTER_USER", "alice", "CHATTER_AUTH_URL", down), "secret-password\n", exitRuntime, "is the service running"},
		{"stdin without a newline", []string{"--password-stdin", "register"}, env("CHATTER_USER", "alice", "CHATTER_AUTH_URL", down), "secret-password", exitRuntime, "is the service running"},
		{"stdin empty", []string{"register", "--password-stdin"}, env("CHATTER_USER", "alice", "CHATTER_AUTH_URL", down), "", exitUsage, "first line"},
		{"stdin too long", []string{"register", "--password-stdin"}, env("CHATTER_USER", "alice", "CHATTER_AUTH_URL", down), strings.Repeat("x", maxPasswordBytes+1) + "\n", exitUsage, "longer than"},
		{"register from the environment", []string{"register"}, env("CHATTER_USER", "alice", "CHATTER_PASSWORD", "pw", "CHATTER_AUTH_URL", down), "", exitRuntime, "is the service running"},
		{"register without a password", []string{"register"}, env("CHATTER_USER", "alice", "CHATTER_AUTH_URL", down), "", exitUsage, "--password-stdin"},
		{"create-room takes it too", []string{"create-room", "lobby", "--password-stdin"}, env("CHATTER_TOKEN", "garbage"), "room-password\n", exitAuth, "CHATTER_TOKEN"},
		{"login does not", []string{"login", "--password-stdin"}, env("CHATTER_USER", "alice"), "pw\n", exitUsage, "password-stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := run(ctx, tt.args, stdio{in: strings.NewReader(tt.stdin), out: &out, err: &errb}, tt.env)
			assert.Equal(t, tt.code, code, errb.String())
			assert.Contains(t, errb.String(), tt.msg)
		})
	}
}

// registerAtPrompt runs `chatter register` on a pseudo-terminal, types the
// two passwords at its prompts, and returns the exit code and stderr.
func registerAtPrompt(t *testing.T, authURL, first, second string) (int, string) {
	t.Helper()
	master, slave := openPTY(t)
	defer slave.Close()
	defer master.Close()
	stderr := &notifyWriter{want: "new password for alice", seen: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := make(chan int, 1)
	go func() { // returns once both passwords are read and the command ends
		code <- run(ctx, []string{"register", "--user", "alice", "--auth-url", authURL}, stdio{in: slave, out: &bytes.Buffer{}, err: stderr}, env())
	}()
	waitFor(t, stderr, "new password for alice")
	_, err := master.WriteString(first + "\n")
	require.NoError(t, err)
	waitFor(t, stderr, "again")
	_, err = master.WriteString(second + "\n")
	require.NoError(t, err)
	select {
	case c := <-code:
		return c, stderr.String()
	case <-ctx.Done():
		t.Fatalf("register did not end; stderr: %q", stderr.String())
		return 0, ""
	}
}

// waitFor waits until w has s.
func waitFor(t *testing.T, w *notifyWriter, s string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(w.String(), s); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q; stderr: %q", s, w.String())
		}
	}
}
