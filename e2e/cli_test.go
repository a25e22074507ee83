package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// chatter runs the CLI to completion and returns its stdout, stderr and
// exit code.
func chatter(t *testing.T, s *stack, env map[string]string, stdin string, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bins.chatter, args...)
	cmd.Env = chatterEnv(s, env)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err)
	}
	return out.String(), errb.String(), code
}

func chatterEnv(s *stack, env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"CHATTER_AUTH_URL=" + s.authURL, "CHATTER_CHAT_ADDR=" + s.chatAddr}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// joiner is a running `chatter join` with its stdin held open.
type joiner struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	errb  *syncBuffer
	done  chan struct{}
}

func startJoin(t *testing.T, s *stack, env map[string]string, args ...string) *joiner {
	t.Helper()
	j := &joiner{lines: make(chan string, 100), errb: &syncBuffer{}, done: make(chan struct{})}
	j.cmd = exec.Command(bins.chatter, append([]string{"join"}, args...)...)
	j.cmd.Env = chatterEnv(s, env)
	j.cmd.Stderr = j.errb
	var err error
	j.stdin, err = j.cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := j.cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, j.cmd.Start())
	// The reader lives until the process closes its stdout (it exits).
	go func() {
		defer close(j.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			j.lines <- sc.Text()
		}
		close(j.lines)
	}()
	t.Cleanup(func() {
		_ = j.cmd.Process.Kill()
		<-j.done
		_ = j.cmd.Wait()
		if t.Failed() {
			t.Logf("--- chatter join %v stderr:\n%s", args, j.errb.String())
		}
	})
	return j
}

// next waits for the next stdout line, failing with chatter's stderr if
// none comes.
func (j *joiner) next(t *testing.T) string {
	t.Helper()
	select {
	case line, ok := <-j.lines:
		require.True(t, ok, "chatter join exited; stderr:\n%s", j.errb.String())
		return line
	case <-time.After(15 * time.Second):
		t.Fatalf("chatter join printed nothing within 15s; stderr:\n%s", j.errb.String())
		return ""
	}
}

// expect waits for the next stdout line and checks it.
func (j *joiner) expect(t *testing.T, want string) {
	t.Helper()
	assert.Equal(t, want, j.next(t), "stderr:\n%s", j.errb.String())
}

// waitStderr waits until stderr contains s.
func (j *joiner) waitStderr(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(j.errb.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("stderr never showed %q:\n%s", s, j.errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// finish closes stdin and returns the exit code.
func (j *joiner) finish(t *testing.T) int {
	t.Helper()
	require.NoError(t, j.stdin.Close())
	for range j.lines { // drain what is left
	}
	err := j.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	require.NoError(t, err)
	return 0
}

func TestCLIPipes(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice := map[string]string{"CHATTER_USER": "alice", "CHATTER_PASSWORD": "alice-password"}
	bob := map[string]string{"CHATTER_USER": "bob", "CHATTER_PASSWORD": "bob-password"}

	for _, u := range []map[string]string{alice, bob} {
		out, errOut, code := chatter(t, s, u, "", "register")
		require.Equal(t, 0, code, errOut)
		assert.Equal(t, "registered "+u["CHATTER_USER"]+"\n", out)
	}
	_, errOut, code := chatter(t, s, alice, "", "register")
	assert.Equal(t, 5, code, "name taken")
	assert.Contains(t, errOut, "taken")
	_, errOut, code = chatter(t, s, map[string]string{"CHATTER_USER": "alice", "CHATTER_PASSWORD": "wrong-password"}, "", "login")
	assert.Equal(t, 3, code, "bad credentials")
	assert.Contains(t, errOut, "alice")
	_, _, code = chatter(t, s, nil, "", "login", "--user", "alice")
	assert.Equal(t, 2, code, "no password and no terminal")

	// login prints a token that later commands take from CHATTER_TOKEN.
	token, errOut, code := chatter(t, s, alice, "", "login")
	require.Equal(t, 0, code, errOut)
	withToken := map[string]string{"CHATTER_TOKEN": strings.TrimSpace(token), "CHATTER_ROOM_PASSWORD": "room-pw"}
	out, errOut, code := chatter(t, s, withToken, "", "create-room", "general")
	require.Equal(t, 0, code, errOut)
	roomCode := strings.TrimSpace(out)
	require.NotEmpty(t, roomCode)

	alice["CHATTER_ROOM_PASSWORD"], bob["CHATTER_ROOM_PASSWORD"] = "room-pw", "room-pw"
	a := startJoin(t, s, alice, roomCode)
	a.waitStderr(t, "* joined general")
	b := startJoin(t, s, bob, "--json", roomCode)
	first := b.next(t)
	assert.Contains(t, first, `"type":"joined"`)
	a.waitStderr(t, "* bob joined")

	out, errOut, code = chatter(t, s, bob, "", "users", roomCode)
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "alice\nbob\n", out)

	_, err := io.WriteString(a.stdin, "hello from alice\n")
	require.NoError(t, err)
	a.expect(t, "alice: hello from alice")
	line := b.next(t)
	assert.Contains(t, line, `"type":"message"`)
	assert.Contains(t, line, `"body":"hello from alice"`)

	_, err = io.WriteString(b.stdin, "hi alice\nhow are you\n")
	require.NoError(t, err)
	a.expect(t, "bob: hi alice")
	a.expect(t, "bob: how are you")

	// At end of input bob flushes and leaves with 0; alice sees him go.
	assert.Equal(t, 0, b.finish(t))
	a.waitStderr(t, "* bob left")
	assert.Equal(t, 0, a.finish(t))

	_, errOut, code = chatter(t, s, bob, "", "join", "ZZZZZZ")
	assert.Equal(t, 4, code, errOut)
	_, errOut, code = chatter(t, s, bob, "", "join", "not a code!")
	assert.Equal(t, 2, code, errOut)
	_, errOut, code = chatter(t, s, map[string]string{"CHATTER_USER": "bob", "CHATTER_PASSWORD": "bob-password", "CHATTER_ROOM_PASSWORD": "wrong"}, "", "join", roomCode)
	assert.Equal(t, 3, code, errOut)
}

// A line longer than the chat service takes stops join with exit 2 and a
// reason, after the lines before it were delivered. The limit is the
// service's (MAX_MESSAGE_BYTES), not the SDK's default.
func TestCLILineTooLong(t *testing.T) {
	s := newStack(t, stackOptions{chatEnv: map[string]string{"MAX_MESSAGE_BYTES": "100"}})
	alice := map[string]string{"CHATTER_USER": "alice", "CHATTER_PASSWORD": "alice-password", "CHATTER_ROOM_PASSWORD": "room-pw"}
	_, errOut, code := chatter(t, s, alice, "", "register")
	require.Equal(t, 0, code, errOut)
	out, errOut, code := chatter(t, s, alice, "", "create-room", "general")
	require.Equal(t, 0, code, errOut)
	room := strings.TrimSpace(out)

	out, errOut, code = chatter(t, s, alice, "fits\n"+strings.Repeat("x", 200)+"\nnever read\n", "join", room)
	assert.Equal(t, 2, code, errOut)
	assert.Contains(t, errOut, "not sent")
	assert.Contains(t, out, "alice: fits")
	assert.NotContains(t, out, "never read")
}

// TestCLIBacklogAfterRestart has a newcomer join after the chat service
// restarted: `chatter join` prints the messages sent before the restart,
// marked earlier, before the live ones. The rooms are in the database: the
// chat service never writes a rooms.json.
func TestCLIBacklogAfterRestart(t *testing.T) {
	s := newStack(t, stackOptions{})
	watchNoFile(t, filepath.Join(s.chatEnv["DATA_DIR"], "rooms.json"))
	env := func(name string) map[string]string {
		return map[string]string{"CHATTER_USER": name, "CHATTER_PASSWORD": name + "-password", "CHATTER_ROOM_PASSWORD": "room-pw"}
	}
	alice, bob, carol := env("alice"), env("bob"), env("carol")
	for _, u := range []map[string]string{alice, bob, carol} {
		_, errOut, code := chatter(t, s, u, "", "register")
		require.Equal(t, 0, code, errOut)
	}
	out, errOut, code := chatter(t, s, alice, "", "create-room", "general")
	require.Equal(t, 0, code, errOut)
	room := strings.TrimSpace(out)

	a := startJoin(t, s, alice, room)
	a.waitStderr(t, "* joined general")
	_, err := io.WriteString(a.stdin, "one\ntwo\nthree\n")
	require.NoError(t, err)
	for _, m := range []string{"one", "two", "three"} {
		a.expect(t, "alice: "+m)
	}

	s.restartChat(t)
	c := startJoin(t, s, carol, room)
	c.waitStderr(t, "3 earlier messages follow")
	for _, m := range []string{"one", "two", "three"} {
		c.expect(t, "[earlier] alice: "+m)
	}
	_, err = io.WriteString(a.stdin, "four\n")
	require.NoError(t, err)
	c.expect(t, "alice: four")
	a.expect(t, "alice: four")

	b := startJoin(t, s, bob, "--json", "--backlog", "2", room)
	type line struct {
		Type    string `json:"type"`
		Body    string `json:"body"`
		Sender  string `json:"sender"`
		Backlog int    `json:"backlog"`
		Earlier bool   `json:"earlier"`
	}
	// nextJSON returns bob's next line that is not about presence.
	nextJSON := func() line {
		for {
			raw := b.next(t)
			var l line
			require.NoError(t, json.Unmarshal([]byte(raw), &l), raw)
			if l.Type != "presence" {
				return l
			}
		}
	}
	assert.Equal(t, line{Type: "joined", Backlog: 2}, nextJSON())
	assert.Equal(t, line{Type: "message", Sender: "alice", Body: "three", Earlier: true}, nextJSON())
	assert.Equal(t, line{Type: "message", Sender: "alice", Body: "four", Earlier: true}, nextJSON())
	_, err = io.WriteString(a.stdin, "five\n")
	require.NoError(t, err)
	assert.Equal(t, line{Type: "message", Sender: "alice", Body: "five"}, nextJSON())
	c.expect(t, "alice: five")

	for _, j := range []*joiner{b, c, a} {
		assert.Equal(t, 0, j.finish(t))
	}
}

// watchNoFile fails the test if path exists at any time until the test
// ends.
func watchNoFile(t *testing.T, path string) {
	t.Helper()
	stop, done := make(chan struct{}), make(chan struct{})
	// The watcher lives until Cleanup stops it.
	go func() {
		defer close(done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			if _, err := os.Stat(path); err == nil {
				t.Errorf("%s exists", path)
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() {
		close(stop)
		<-done
	})
}
