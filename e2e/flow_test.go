package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// `chatter join < file` with a file of 1,000 lines sends every line, in
// order, and nothing is lost, although the service reads a sender no
// faster than MAX_SEND_RATE: join waits for the room's echoes as long as
// they keep coming (--wait bounds a pause, not the whole wait), and
// another member receives every line too. The rates are test-sized (100
// a second for the stream instead of 20, so about 10 s), and --wait is
// well below the time the lines take.
func TestCLIJoinPastedFile(t *testing.T) {
	s := newStack(t, stackOptions{chatEnv: map[string]string{
		"MAX_SEND_RATE": "100", "MAX_SEND_BURST": "50", "MAX_USER_SEND_RATE": "200", "MAX_USER_SEND_BURST": "100",
	}})
	alice := map[string]string{"CHATTER_USER": "alice", "CHATTER_PASSWORD": "alice-password", "CHATTER_ROOM_PASSWORD": "room-pw"}
	_, errOut, code := chatter(t, s, alice, "", "register")
	require.Equal(t, 0, code, errOut)
	out, errOut, code := chatter(t, s, alice, "", "create-room", "general")
	require.Equal(t, 0, code, errOut)
	room := strings.TrimSpace(out)

	bob := newUser(t, s, "bob")
	_, err := bob.JoinChatRoom(testCtx(t, 10*time.Second), room, "room-pw")
	require.NoError(t, err)
	atBob := collect(t, bob)

	const total = 1000
	var file, echoed strings.Builder
	for i := range total {
		line := fmt.Sprintf("line %04d of a pasted file", i)
		file.WriteString(line + "\n")
		echoed.WriteString("alice: " + line + "\n")
	}
	start := time.Now()
	out, errOut, code = chatter(t, s, alice, file.String(), "join", "--backlog", "0", "--wait", "3s", room)
	t.Logf("join sent %d lines in %s", total, time.Since(start).Round(100*time.Millisecond))
	require.Equal(t, 0, code, errOut)
	assert.Equal(t, echoed.String(), out, "every line echoed, in order")

	atBob.waitUntil(t, 30*time.Second, "every line at bob", func(evs []client.Event) bool {
		return len(messagesOf(evs)) >= total
	})
	msgs := atBob.messages()
	require.Len(t, msgs, total)
	for i, m := range msgs {
		require.Equal(t, fmt.Sprintf("line %04d of a pasted file", i), m.Body, "message %d", i)
	}
	assert.Empty(t, eventsOf[*client.Connection](atBob.snapshot()), "bob's stream was never cut")
}

// At MAX_STREAMS_PER_USER=1, opening the room elsewhere (here, the same
// user through the SDK) replaces the page's stream: the page says the
// room was opened elsewhere and does not reconnect, so the newer stream
// keeps the room instead of the two taking turns.
func TestBrowserRoomOpenedElsewhere(t *testing.T) {
	r := newBrowserRoomWith(t, "elsewhere", stackOptions{chatEnv: map[string]string{"MAX_STREAMS_PER_USER": "1"}})
	alice := newClient(t, r.s)
	ctx := testCtx(t, 30*time.Second)
	_, err := alice.LogIn(ctx, "alice", pagePassword("alice"))
	require.NoError(t, err)
	_, err = alice.JoinChatRoom(ctx, r.code, roomPassword)
	require.NoError(t, err)
	col := collect(t, alice)

	page := r.alice
	page.waitJS("the page closed the room", `document.getElementById('alert').textContent.includes('opened elsewhere')`)
	assert.Contains(t, page.alert(), r.code)
	assert.Equal(t, "lobby", eval[string](page, `document.body.dataset.view`))

	// Longer than the page's first reconnection delay: had it reconnected,
	// it would have replaced the SDK's stream in turn.
	time.Sleep(2 * time.Second)
	_, err = alice.Send(ctx, "still mine")
	require.NoError(t, err)
	col.waitUntil(t, 10*time.Second, "the echo", hasBody("still mine"))
	assert.Empty(t, eventsOf[*client.Connection](col.snapshot()), "the SDK's stream was never replaced")
	users, err := alice.ListChatRoomUsers(ctx)
	require.NoError(t, err)
	require.Len(t, users, 1)
	assert.Equal(t, client.User{Name: "alice", Streams: 1}, users[0])
	page.assertClean()
}
