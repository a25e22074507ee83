package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// keys returns the sorted keys of a JSON object.
func keys(t *testing.T, line string) []string {
	t.Helper()
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(line), &v), line)
	out := make([]string, 0, len(v))
	for k := range v {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(s ...string) []string {
	sort.Strings(s)
	return s
}

// Every event join --json prints has all of its type's fields, whatever
// the event holds, as README.md lists them; lists are never null.
func TestEventJSONShapes(t *testing.T) {
	tests := []struct {
		ev   client.Event
		typ  string
		keys []string
	}{
		{&client.Message{}, "message", sorted("type", "sequence", "epoch", "sender", "body", "sent_at", "client_message_id", "earlier")},
		{&client.Presence{Kind: client.Joined}, "presence", sorted("type", "kind", "user_name", "at")},
		{&client.Gap{}, "gap", sorted("type", "previous_epoch", "after_sequence", "epoch", "head_sequence", "unconfirmed", "dropped", "dropped_messages")},
		{&client.Connection{State: client.Reconnecting}, "connection", sorted("type", "state", "reason", "message", "error", "attempt", "retry_in_ms", "users")},
		{&client.Connection{State: client.Connected}, "connection", sorted("type", "state", "reason", "message", "error", "attempt", "retry_in_ms", "users")},
		{&client.RoomDeleted{}, "room_deleted", sorted("type", "at")},
		{&client.SendFailed{Err: errors.New("too long")}, "send_failed", sorted("type", "client_message_id", "body", "error")},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%T", tt.ev), func(t *testing.T) {
			var out bytes.Buffer
			printer{out: &out, json: true}.event(tt.ev)
			line := strings.TrimSpace(out.String())
			assert.Equal(t, tt.keys, keys(t, line))
			assert.Contains(t, line, `"type":"`+tt.typ+`"`)
			assert.NotContains(t, line, "null", "lists are [] when empty")
		})
	}

	var out bytes.Buffer
	printer{out: &out, json: true}.joined(&client.Room{ShortCode: "ABC234", Name: "n"}, "bob")
	assert.Equal(t, sorted("type", "short_code", "name", "user_name", "users", "backlog"), keys(t, out.String()))
	assert.Contains(t, out.String(), `"users":[]`)
}

// A reconnection reads as what happened and when the next attempt is, in
// words and as a stable reason, whatever the transport's error says.
func TestReconnectWording(t *testing.T) {
	transport := `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:5050: connect: connection refused"`
	tests := []struct {
		err    error
		retry  time.Duration
		text   string
		reason string
	}{
		{&client.Error{Kind: client.ErrUnavailable, Message: transport}, 5 * time.Second, "chat service unreachable, retrying in 5s", "unavailable"},
		{fmt.Errorf("%w: %w", client.ErrUnavailable, errors.New(transport)), 1234 * time.Millisecond, "chat service unreachable, retrying in 1.2s", "unavailable"},
		{&client.Error{Kind: client.ErrSlowConsumer}, 200 * time.Millisecond, "fell behind reading the room, retrying in 200ms", "slow_consumer"},
		{&client.Error{Kind: client.ErrRoomFull, RetryAfter: 30 * time.Second}, 30*time.Second + 400*time.Millisecond, "the room is full, retrying in 30s", "room_full"},
		{&client.Error{Kind: client.ErrStreamLimit}, time.Second, "too many of your connections are open in this room, retrying in 1s", "stream_limit"},
		{&client.Error{Kind: client.ErrServer, Message: "boom"}, time.Second, "the chat service failed, retrying in 1s", "server_error"},
		{errors.New("something else"), time.Second, "connection lost, retrying in 1s", "unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			ev := &client.Connection{State: client.Reconnecting, Attempt: 3, Err: tt.err, Retry: tt.retry}
			var out, errb bytes.Buffer
			printer{out: &out, err: &errb}.event(ev)
			assert.Equal(t, "* "+tt.text+"\n", errb.String())
			assert.NotContains(t, errb.String(), "transport")

			out.Reset()
			printer{out: &out, json: true}.event(ev)
			var v connectionJSON
			require.NoError(t, json.Unmarshal(out.Bytes(), &v))
			assert.Equal(t, tt.reason, v.Reason)
			assert.Equal(t, strings.SplitN(tt.text, ",", 2)[0], v.Message)
			assert.Equal(t, tt.err.Error(), v.Error)
			assert.Equal(t, 3, v.Attempt)
			assert.Equal(t, tt.retry.Milliseconds(), v.RetryInMS)
		})
	}
}

// users --json prints an array, [] for an empty room, sorted by name.
func TestUsersJSON(t *testing.T) {
	b, err := json.Marshal(usersJSON(nil))
	require.NoError(t, err)
	assert.Equal(t, "[]", string(b))
	b, err = json.Marshal(usersJSON([]client.User{{Name: "bob", Streams: 2}, {Name: "alice", Streams: 1}}))
	require.NoError(t, err)
	assert.Equal(t, `[{"user_name":"alice","streams":1},{"user_name":"bob","streams":2}]`, string(b))
}
