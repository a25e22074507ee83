package e2e

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Global flags go before or after the command, and --json prints the
// shapes README.md documents, against the real services.
func TestCLIJSONAndFlagPlacement(t *testing.T) {
	s := newStack(t, stackOptions{})
	alice := map[string]string{"CHATTER_USER": "alice", "CHATTER_PASSWORD": "alice-password", "CHATTER_ROOM_PASSWORD": "room-pw"}

	out, errOut, code := chatter(t, s, alice, "", "--json", "register")
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `{"user_name":"alice"}`, out)

	out, errOut, code = chatter(t, s, alice, "", "login", "--json")
	require.Equal(t, 0, code, errOut)
	var creds struct {
		UserName  string    `json:"user_name"`
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &creds), out)
	assert.Equal(t, "alice", creds.UserName)
	assert.NotEmpty(t, creds.Token)
	assert.True(t, creds.ExpiresAt.After(time.Now()))

	out, errOut, code = chatter(t, s, alice, "", "--json", "create-room", "lobby")
	require.Equal(t, 0, code, errOut)
	var room struct {
		ShortCode string `json:"short_code"`
		Name      string `json:"name"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &room), out)
	assert.Equal(t, "lobby", room.Name)
	require.NotEmpty(t, room.ShortCode)

	// Nobody online: an empty array, wherever --json is.
	for _, args := range [][]string{
		{"--json", "users", room.ShortCode},
		{"users", "--json", room.ShortCode},
		{"users", room.ShortCode, "--json"},
		{"--user", "alice", "--json", "users", room.ShortCode},
	} {
		out, errOut, code = chatter(t, s, alice, "", args...)
		require.Equal(t, 0, code, "%v: %s", args, errOut)
		assert.Equal(t, "[]\n", out, "%v", args)
	}

	j := startJoin(t, s, alice, room.ShortCode)
	j.waitStderr(t, "* joined lobby")
	out, errOut, code = chatter(t, s, alice, "", "--json", "users", room.ShortCode)
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `[{"user_name":"alice","streams":1}]`, out)
	assert.Equal(t, 0, j.finish(t))

	out, errOut, code = chatter(t, s, alice, "", "--json", "delete-room", room.ShortCode)
	require.Equal(t, 0, code, errOut)
	assert.JSONEq(t, `{"short_code":"`+room.ShortCode+`","deleted":true}`, out)
}

// A script sets a new password on standard input; it is not asked for
// twice, and it is the password.
func TestCLIPasswordStdin(t *testing.T) {
	s := newStack(t, stackOptions{})
	bob := map[string]string{"CHATTER_USER": "bob"}
	out, errOut, code := chatter(t, s, bob, "bob-password\n", "register", "--password-stdin")
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, "registered bob\n", out)

	bob["CHATTER_PASSWORD"] = "bob-password"
	out, errOut, code = chatter(t, s, bob, "room-password\n", "--password-stdin", "create-room", "den")
	require.Equal(t, 0, code, errOut)
	code1 := strings.TrimSpace(out)
	bob["CHATTER_ROOM_PASSWORD"] = "room-password"
	out, errOut, code = chatter(t, s, bob, "", "users", code1)
	require.Equal(t, 0, code, "the room password was the line on stdin: %s", errOut)
	assert.Empty(t, out)
}
