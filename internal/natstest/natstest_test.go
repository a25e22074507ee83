package natstest_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/natstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func connect(t *testing.T, urls string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return js
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

func TestServer(t *testing.T) {
	js := connect(t, natstest.Server(t))
	kv, err := js.CreateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: "b"})
	require.NoError(t, err)
	_, err = kv.Put(ctx(t), "k", []byte("v"))
	require.NoError(t, err)
	e, err := kv.Get(ctx(t), "k")
	require.NoError(t, err)
	assert.Equal(t, "v", string(e.Value()))
}

func TestServersAreFresh(t *testing.T) {
	a, b := natstest.Server(t), natstest.Server(t)
	assert.NotEqual(t, a, b)
	_, err := connect(t, a).CreateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: "b"})
	require.NoError(t, err)
	_, err = connect(t, b).KeyValue(ctx(t), "b")
	assert.ErrorIs(t, err, jetstream.ErrBucketNotFound)
}

// A replicated bucket survives one stopped node of three, and the node
// catches up when it starts again.
func TestClusterNodeStopStart(t *testing.T) {
	nodes := natstest.Cluster(t, 3)
	require.Len(t, nodes, 3)
	js := connect(t, natstest.URLs(nodes))
	kv, err := js.CreateKeyValue(ctx(t), jetstream.KeyValueConfig{Bucket: "b", Replicas: 3})
	require.NoError(t, err)
	_, err = kv.Put(ctx(t), "k", []byte("1"))
	require.NoError(t, err)

	nodes[0].Stop()
	nodes[0].Stop() // idempotent
	require.Eventually(t, func() bool {
		c, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := kv.Put(c, "k", []byte("2"))
		return err == nil
	}, 20*time.Second, 100*time.Millisecond, "two of three nodes keep the bucket writable")

	nodes[0].Start()
	alone := connect(t, nodes[0].URL)
	require.Eventually(t, func() bool {
		c, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		kv, err := alone.KeyValue(c, "b")
		if err != nil {
			return false
		}
		e, err := kv.Get(c, "k")
		return err == nil && string(e.Value()) == "2"
	}, 20*time.Second, 100*time.Millisecond, "the restarted node serves the latest value")
}
