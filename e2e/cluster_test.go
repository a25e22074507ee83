package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/natstest"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// cluster is auth and several chat instances sharing rooms over a NATS
// cluster, as the shared mode runs in production (but for the rooms'
// database: one SQLite file that the instances on this machine share).
type cluster struct {
	*stack
	nats  []*natstest.Node
	chats []*stack // each instance, as a stack of its own for startChat
}

func newCluster(t *testing.T, instances int) *cluster {
	t.Helper()
	needBinaries(t)
	nodes := natstest.Cluster(t, 3)
	shared := t.TempDir()
	env := map[string]string{"NATS_URL": natstest.URLs(nodes), "NATS_REPLICAS": "3", "DATA_DIR": shared}
	c := &cluster{nats: nodes}
	for i := range instances {
		env["INSTANCE_ID"] = fmt.Sprint("chat-", i)
		if i == 0 {
			// 31 users register from one address.
			c.stack = newStack(t, stackOptions{chatEnv: env, authEnv: map[string]string{"REGISTER_RATE": "1000", "REGISTER_BURST": "100"}})
			c.chats = append(c.chats, c.stack)
			continue
		}
		s := &stack{authURL: c.authURL, chatAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), chatEnv: map[string]string{}}
		for k, v := range c.stack.chatEnv {
			s.chatEnv[k] = v
		}
		s.chatEnv["INSTANCE_ID"] = env["INSTANCE_ID"]
		s.chatEnv["GRPC_SERVER_PORT"] = strings.Split(s.chatAddr, ":")[1]
		s.startChat(t)
		c.chats = append(c.chats, s)
	}
	return c
}

// addrs lists the chat instances' addresses.
func (c *cluster) addrs() []string {
	var out []string
	for _, s := range c.chats {
		out = append(out, s.chatAddr)
	}
	return out
}

// on returns a client of instance i only.
func (c *cluster) on(t *testing.T, i int, opts ...client.Option) *client.Client {
	t.Helper()
	return newClient(t, c.stack, append([]client.Option{client.WithChatAddress(c.chats[i].chatAddr)}, opts...)...)
}

// member is a user in a room, with a client that may use any instance.
type member struct {
	name string
	c    *client.Client
	col  *collector
	sent int
}

// Members spread over three instances sharing a NATS cluster of three
// nodes see every message once, in the room's one order, across the loss
// of a chat instance (kill -9: its members resume on the others) and of a
// NATS node (replicated streams go on); any instance lists every member;
// a wrong room password is throttled across instances.
func TestClusterScaleOut(t *testing.T) {
	if testing.Short() {
		t.Skip("a cluster of 3 NATS nodes and 3 chat instances")
	}
	c := newCluster(t, 3)
	const roomsN, perRoom = 3, 10
	var all []*member
	codes := make([]string, roomsN)
	byRoom := make([][]*member, roomsN)
	for r := range roomsN {
		for k := range perRoom {
			name := fmt.Sprintf("u%d-%d", r, k)
			// Every client knows every instance and picks one at random.
			cl := newUser(t, c.stack, name, client.WithChatAddress(c.addrs()...))
			ctx := testCtx(t, 20*time.Second)
			if k == 0 {
				code, err := cl.CreateChatRoom(ctx, fmt.Sprint("room ", r), "room-secret-"+strconv.Itoa(r))
				require.NoError(t, err)
				codes[r] = code
			}
			_, err := cl.JoinChatRoom(ctx, codes[r], "room-secret-"+strconv.Itoa(r))
			require.NoError(t, err, "%s joins", name)
			m := &member{name: name, c: cl, col: collect(t, cl)}
			byRoom[r] = append(byRoom[r], m)
			all = append(all, m)
		}
	}

	// Every instance lists every member of a room, wherever they are.
	for i := range c.chats {
		viewer := c.on(t, i)
		ctx := testCtx(t, 10*time.Second)
		_, err := viewer.LogIn(ctx, "u0-0", "pw-u0-0-long-enough")
		require.NoError(t, err)
		require.Eventually(t, func() bool {
			users, err := viewer.PeekChatRoomUsers(ctx, codes[0], "room-secret-0")
			return err == nil && len(users) == perRoom
		}, 10*time.Second, 50*time.Millisecond, "instance %d lists all %d members of room 0", i, perRoom)
	}

	round := func(label string) {
		t.Helper()
		var wg sync.WaitGroup
		for _, m := range all {
			wg.Go(func() {
				for k := range 3 {
					ctx := testCtx(t, 30*time.Second)
					_, err := m.c.Send(ctx, fmt.Sprintf("%s %s #%d", label, m.name, k))
					assert.NoError(t, err, "%s sends", m.name)
				}
			})
			m.sent += 3
		}
		wg.Wait()
	}
	// verify waits until every member has every message of its room, then
	// checks that they all have the same ones in the same order, once.
	verify := func(what string) {
		t.Helper()
		for r, members := range byRoom {
			want := 0
			for _, m := range members {
				want += m.sent
			}
			var first []string
			for _, m := range members {
				m.col.waitUntil(t, 60*time.Second, fmt.Sprintf("%s: %s has %d messages", what, m.name, want), func(evs []client.Event) bool {
					return len(distinct(messagesOf(evs))) >= want
				})
				msgs := messagesOf(m.col.snapshot())
				got := distinct(msgs)
				assert.Len(t, got, want, "%s: %s: no message is duplicated", what, m.name)
				assert.Equal(t, len(got), len(msgs), "%s: %s received a message twice", what, m.name)
				if first == nil {
					first = got
					seqs := sequences(msgs)
					assert.True(t, slices.IsSorted(seqs), "room %d: sequences in order", r)
					continue
				}
				assert.Equal(t, first, got, "%s: %s sees room %d's one order", what, m.name, r)
			}
		}
	}

	round("calm")
	verify("three instances")

	// Throttled across instances: five wrong passwords spread over two
	// instances, and the third refuses even the right one.
	guesser := newUser(t, c.stack, "guesser")
	for i, inst := range []int{0, 1, 0, 1, 0} {
		g := c.on(t, inst)
		_, err := g.UseToken(mustToken(t, guesser))
		require.NoError(t, err)
		_, err = g.JoinChatRoom(testCtx(t, 10*time.Second), codes[1], "wrong-"+strconv.Itoa(i))
		require.ErrorIs(t, err, client.ErrPermissionDenied, "guess %d on instance %d is refused as wrong", i, inst)
	}
	g := c.on(t, 2)
	_, err := g.UseToken(mustToken(t, guesser))
	require.NoError(t, err)
	_, err = g.JoinChatRoom(testCtx(t, 10*time.Second), codes[1], "room-secret-1")
	require.ErrorIs(t, err, client.ErrRateLimited, "the third instance knows of the five failures")

	// kill -9 of one instance as a round starts; its members resume on
	// the others and send again.
	var wg sync.WaitGroup
	killed := time.Now()
	wg.Go(func() { round("crash") })
	c.chats[0].chat.kill(t)
	wg.Wait()
	round("after crash")
	verify("after kill -9 of chat-0")
	t.Logf("kill -9 of chat-0: every member had every message %s later", time.Since(killed).Round(time.Millisecond))

	// The loss of one NATS node: R3 streams go on.
	stopped := time.Now()
	c.nats[1].Stop()
	round("node down")
	verify("with one NATS node down")
	t.Logf("NATS node n2 down: a round of %d messages was sent and delivered to all in %s", 3*len(all), time.Since(stopped).Round(time.Millisecond))

	// One message from one instance: the others learn of it from their
	// feeds alone (no append of theirs runs into it).
	lone := byRoom[0][1]
	_, err = lone.c.Send(testCtx(t, 20*time.Second), "alone after the node loss")
	require.NoError(t, err)
	for _, m := range byRoom[0] {
		m.col.waitUntil(t, 30*time.Second, m.name+" hears the lone message", hasBody("alone after the node loss"))
	}

	// The owner deletes a room: its members hear of it on every instance.
	owner := byRoom[2][0]
	require.NoError(t, owner.c.DeleteChatRoom(testCtx(t, 20*time.Second), codes[2]))
	for _, m := range byRoom[2] {
		m.col.waitUntil(t, 20*time.Second, m.name+" hears that room 2 was deleted", func(evs []client.Event) bool {
			return len(eventsOf[*client.RoomDeleted](evs)) == 1
		})
	}
}

// distinct lists the bodies of msgs once each, in order of first arrival.
func distinct(msgs []*client.Message) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range msgs {
		if !seen[m.Body] {
			seen[m.Body] = true
			out = append(out, m.Body)
		}
	}
	return out
}

func sequences(msgs []*client.Message) []uint64 {
	out := make([]uint64, len(msgs))
	for i, m := range msgs {
		out[i] = m.Sequence
	}
	return out
}

// mustToken returns the client's user token.
func mustToken(t *testing.T, c *client.Client) string {
	t.Helper()
	creds, err := c.Credentials()
	require.NoError(t, err)
	return creds.Token
}

// While NATS is down, new work is refused with UNAVAILABLE; what members
// sent meanwhile is delivered once NATS is back, once, in one order.
func TestClusterNATSOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts a NATS server")
	}
	needBinaries(t)
	node := natstest.StartServer(t)
	env := map[string]string{"NATS_URL": node.URL, "INSTANCE_ID": "chat-a", "DB_TIMEOUT": "2s"}
	a := newStack(t, stackOptions{chatEnv: env})
	b := &stack{authURL: a.authURL, chatAddr: fmt.Sprintf("127.0.0.1:%d", freePort(t)), chatEnv: map[string]string{}}
	for k, v := range a.chatEnv {
		b.chatEnv[k] = v
	}
	b.chatEnv["INSTANCE_ID"] = "chat-b"
	b.chatEnv["GRPC_SERVER_PORT"] = strings.Split(b.chatAddr, ":")[1]
	b.startChat(t)

	alice := newUser(t, a, "alice")
	bob := newUser(t, a, "bob", client.WithChatAddress(b.chatAddr))
	code := joinedRoom(t, alice, bob)
	ctx := testCtx(t, 90*time.Second)
	_, err := alice.Send(ctx, "before")
	require.NoError(t, err)
	receiveUntil(t, bob, "before")

	node.Stop()
	carol := newUser(t, a, "carol", client.WithChatAddress(b.chatAddr))
	_, err = carol.JoinChatRoom(testCtx(t, 20*time.Second), code, "room-secret")
	require.ErrorIs(t, err, client.ErrUnavailable, "no join while the shared state is out of reach")

	sent := make(chan error, 2)
	for _, c := range []*client.Client{alice, bob} {
		go func() { // returns once the message is accepted
			_, err := c.Send(ctx, "during from "+mustCreds(t, c))
			sent <- err
		}()
	}
	time.Sleep(time.Second)
	restarted := time.Now()
	node.Start()
	for range 2 {
		require.NoError(t, <-sent)
	}
	for _, c := range []*client.Client{alice, bob} {
		col := collect(t, c)
		col.waitUntil(t, 60*time.Second, "both messages sent during the outage", func(evs []client.Event) bool {
			return hasBody("during from alice")(evs) && hasBody("during from bob")(evs)
		})
		got := distinct(messagesOf(col.snapshot()))
		assert.Len(t, got, len(messagesOf(col.snapshot())), "nothing twice")
	}
	t.Logf("both messages of the outage delivered %s after NATS restarted", time.Since(restarted).Round(time.Millisecond))
	_, err = carol.JoinChatRoom(testCtx(t, 20*time.Second), code, "room-secret")
	require.NoError(t, err, "joins work again")
}

func mustCreds(t *testing.T, c *client.Client) string {
	t.Helper()
	creds, err := c.Credentials()
	require.NoError(t, err)
	return creds.UserName
}
