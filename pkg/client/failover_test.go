package client_test

import (
	"fmt"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
)

// A Client given two instances, by a list of addresses or by a DNS name
// with a record for each, streams from one of them. When that one stops
// mid-stream the Client opens the stream on the other, asking it to resume
// after the last message it received, in the room's shared epoch: nothing
// is lost, repeated or reported as a gap.
func TestFailoverResumesOnAnotherInstance(t *testing.T) {
	tests := []struct {
		name  string
		start func(t *testing.T, e *env) (addrs []string, ins []*instance)
	}{
		{"address list", func(t *testing.T, e *env) ([]string, []*instance) {
			a := startInstance(t, e.chat, "127.0.0.1:0")
			b := startInstance(t, e.chat, "127.0.0.1:0")
			return []string{a.addr, b.addr}, []*instance{a, b}
		}},
		{"DNS name", func(t *testing.T, e *env) ([]string, []*instance) {
			a, b, port := instancesOnOnePort(t, e.chat)
			dns := startDNS(t, "chat.test.", netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("127.0.0.2"))
			return []string{"dns://" + dns + "/" + net.JoinHostPort("chat.test", port)}, []*instance{a, b}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			addrs, ins := tt.start(t, e)
			// alice talks to the service through an instance of her own,
			// which stays up.
			alice := e.loggedIn("alice")
			bob := e.clientAt(addrs)
			logIn(t, bob, "bob")
			room(t, alice, bob)
			ctx := testCtx(t)

			const before, after = 5, 3
			for i := range before {
				_, err := alice.Send(ctx, fmt.Sprint(i))
				require.NoError(t, err)
			}
			require.Len(t, messages(t, bob, before), before)
			first, others := streamOn(t, "bob", ins...)
			first.stop()
			stopped := time.Now()
			// bob cannot see these before his stream is open again.
			for i := range after {
				_, err := alice.Send(ctx, fmt.Sprint(before+i))
				require.NoError(t, err)
			}
			waitConnected(t, bob)
			t.Logf("stream open again on the other instance %s after the first stopped", time.Since(stopped).Round(time.Millisecond))
			for i, m := range messages(t, bob, after) {
				assert.Equal(t, fmt.Sprint(before+i), m.Body)
				assert.Equal(t, uint64(before+i+1), m.Sequence)
				assert.Equal(t, "epoch-1", m.Epoch)
			}

			second, _ := streamOn(t, "bob", others...)
			opens := second.opened("bob")
			require.Len(t, opens, 1)
			require.NotNil(t, opens[0].GetResume(), "the second instance was asked to resume")
			assert.Equal(t, "epoch-1", opens[0].GetResume().GetEpoch())
			assert.Equal(t, uint64(before), opens[0].GetResume().GetAfterSequence())
			require.Len(t, first.opened("bob"), 1)
			assert.Nil(t, first.opened("bob")[0].GetResume(), "the first stream was a new session")
		})
	}
}

// pinnedOrder makes the Client try its addresses in the order given,
// rather than shuffled, so that a test can put a dead instance first.
var pinnedOrder = client.WithDialOptions(grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"pick_first":{}}]}`))

// A Client whose first address is dead connects to the next and works.
// One that refuses connections is passed over at once; one that accepts
// them and never answers, after gRPC's Happy Eyeballs delay of 250ms,
// when it tries the next address alongside. Without that the join would
// wait for the connection attempt to time out, 5s, and the test's 2s
// deadline would fail it.
func TestDeadInstanceFirst(t *testing.T) {
	tests := []struct {
		name string
		dead func(t *testing.T) string
	}{
		{"refuses connections", refusedAddr},
		{"never answers", silentAddr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			live := startInstance(t, e.chat, "127.0.0.1:0")
			code := emptyRoom(t, e)
			bob := e.clientAt([]string{tt.dead(t), live.addr}, pinnedOrder)
			logIn(t, bob, "bob")

			took, err := joinWithin(t, bob, code, 2*time.Second)
			require.NoError(t, err)
			t.Logf("joined past the dead instance in %s", took.Round(time.Millisecond))
			_, err = bob.Send(testCtx(t), "hello")
			require.NoError(t, err)
			assert.Equal(t, "hello", messages(t, bob, 1)[0].Body)
			assert.Len(t, live.opened("bob"), 1)
		})
	}
}

// Clients given the same addresses pick among them at random, so that
// they spread over the instances. 16 clients all on one of two instances
// would happen once in 2^15 runs.
func TestClientsSpreadOverInstances(t *testing.T) {
	e := newEnv(t)
	a := startInstance(t, e.chat, "127.0.0.1:0")
	b := startInstance(t, e.chat, "127.0.0.1:0")
	addrs := []string{a.addr, b.addr}
	code := emptyRoom(t, e)
	owner := e.clientAt(addrs)
	logIn(t, owner, "bob")
	creds, err := owner.Credentials()
	require.NoError(t, err)
	for range 16 {
		c := e.clientAt(addrs)
		_, err := c.UseToken(creds.Token)
		require.NoError(t, err)
		_, err = c.JoinChatRoom(testCtx(t), code, "room-pw")
		require.NoError(t, err)
	}
	t.Logf("streams per instance: %d and %d", len(a.opened("bob")), len(b.opened("bob")))
	assert.NotEmpty(t, a.opened("bob"))
	assert.NotEmpty(t, b.opened("bob"))
}

func TestChatAddressesChecked(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
		msg   string
	}{
		{"none", nil, "no chat address"},
		{"empty", []string{"127.0.0.1:5050", ""}, "chat address 2 of 2 is empty"},
		{"comma-separated", []string{"127.0.0.1:5050,127.0.0.1:5051"}, "separate arguments"},
		{"target in a list", []string{"dns:///chat.example:5050", "127.0.0.1:5051"}, "can only be given alone"},
		{"no port in a list", []string{"127.0.0.1", "127.0.0.1:5051"}, "each must be host:port"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := client.New(client.WithChatAddress(tt.addrs...))
			require.ErrorIs(t, err, client.ErrInvalidArgument)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
	for _, ok := range [][]string{{"chat.example:5050"}, {"dns:///chat.example:5050"}, {"[::1]:5050", "127.0.0.1:5050"}} {
		c, err := client.New(client.WithChatAddress(ok...))
		require.NoError(t, err, "%q", ok)
		require.NoError(t, c.Close())
	}
}
