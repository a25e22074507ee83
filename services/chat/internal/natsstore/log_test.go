package natsstore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/natstest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/natsstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

var streams atomic.Int64

// connect opens a connection to url that the end of the test closes; it
// reconnects at once to a server that a test restarts.
func connect(t testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	return nc, js
}

// logConfig names a stream of its own for each log a test opens.
func logConfig(retain int, origin string) natsstore.LogConfig {
	n := streams.Add(1)
	return natsstore.LogConfig{Stream: fmt.Sprint("HISTORY", n), Subject: fmt.Sprint("hist", n), Retain: retain, Origin: origin}
}

func openLog(t testing.TB, url string, cfg natsstore.LogConfig) *natsstore.Log {
	t.Helper()
	nc, js := connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := natsstore.OpenLog(ctx, nc, js, cfg)
	require.NoError(t, err)
	return l
}

func TestLogContract(t *testing.T) {
	url := natstest.Server(t)
	contract.Log(t, func(t *testing.T, retain int) (engine.Log, func() engine.Log) {
		cfg := logConfig(retain, "a")
		l := openLog(t, url, cfg)
		return l, func() engine.Log { return openLog(t, url, cfg) }
	})
}

// Two instances' logs on one stream share an epoch and a history, and
// each refuses a run that the other's append made stale.
func TestLogShared(t *testing.T) {
	url := natstest.Server(t)
	cfg := logConfig(100, "a")
	a := openLog(t, url, cfg)
	cfg.Origin = "b"
	b := openLog(t, url, cfg)
	require.Equal(t, a.Epoch(), b.Epoch())
	msg := func(seq uint64, body string) []rooms.Message {
		return []rooms.Message{{Room: "ROOM22", Seq: seq, Epoch: a.Epoch(), SentAt: time.UnixMicro(int64(seq)).UTC(), Body: body}}
	}
	ctx := context.Background()
	require.NoError(t, a.Append(ctx, msg(1, "a1")))
	require.NoError(t, b.Append(ctx, msg(2, "b2")), "b reads the head it has not seen")
	assert.ErrorIs(t, a.Append(ctx, msg(2, "a2")), rooms.ErrSeqConflict)
	require.NoError(t, a.Append(ctx, msg(3, "a3")), "a catches up")
	got, err := b.Since(ctx, "ROOM22", 0, 0)
	require.NoError(t, err)
	var bodies []string
	for _, m := range got {
		bodies = append(bodies, m.Body)
	}
	assert.Equal(t, []string{"a1", "b2", "a3"}, bodies)
}

// The feed tells one instance what another appended and dropped, in
// order, and nothing of its own.
func TestLogWatch(t *testing.T) {
	url := natstest.Server(t)
	cfg := logConfig(100, "a")
	a := openLog(t, url, cfg)
	cfg.Origin = "b"
	b := openLog(t, url, cfg)
	type report struct {
		code    string
		seqs    []uint64
		dropped bool
	}
	got := make(chan report, 16)
	stop, err := b.Watch(context.Background(), func(code string, msgs []rooms.Message, dropped bool) {
		r := report{code: code, dropped: dropped}
		for _, m := range msgs {
			r.seqs = append(r.seqs, m.Seq)
		}
		got <- r
	}, func(err error) { t.Log(err) })
	require.NoError(t, err)
	t.Cleanup(stop)
	var h uint64
	e := a.Epoch()
	bg := context.Background()
	require.NoError(t, a.Append(bg, []rooms.Message{{Room: "ROOM22", Seq: 1, Epoch: e}, {Room: "ROOM22", Seq: 2, Epoch: e}}))
	require.NoError(t, b.Append(bg, []rooms.Message{{Room: "ROOM22", Seq: 3, Epoch: e}}))
	require.NoError(t, a.Drop(bg, "ROOM22"))
	want := []report{{code: "ROOM22", seqs: []uint64{1, 2}}, {code: "ROOM22", dropped: true}}
	for _, w := range want {
		select {
		case r := <-got:
			assert.Equal(t, w, r)
		case <-time.After(5 * time.Second):
			t.Fatalf("no report of %+v", w)
		}
	}
	h, err = b.Head(bg, "ROOM22")
	require.NoError(t, err)
	assert.Zero(t, h, "dropped")
}

// A run larger than one NATS message is split into chunks that all land.
func TestLogLargeRun(t *testing.T) {
	url := natstest.Server(t)
	l := openLog(t, url, logConfig(5000, "a"))
	body := string(make([]byte, 60000))
	var run []rooms.Message
	for i := range 40 { // 2.4 MB, over the default 1 MB payload
		run = append(run, rooms.Message{Room: "BIG222", Seq: uint64(i + 1), Epoch: l.Epoch(), Body: body, SentAt: time.UnixMicro(0).UTC()})
	}
	require.NoError(t, l.Append(context.Background(), run))
	got, err := l.Since(context.Background(), "BIG222", 0, 0)
	require.NoError(t, err)
	assert.Equal(t, run, got)
	got, err = l.Since(context.Background(), "BIG222", 37, 2)
	require.NoError(t, err)
	assert.Equal(t, run[37:39], got)
}

// The feed goes on after the node its connection used is lost: the
// ordered consumer is made again on another node from where it stopped.
func TestLogWatchSurvivesNodeLoss(t *testing.T) {
	nodes := natstest.Cluster(t, 3)
	cfg := logConfig(100, "a")
	cfg.Replicas = 3
	a := openLog(t, nodes[1].URL+","+nodes[2].URL, cfg)
	cfg.Origin = "b"
	b := openLog(t, nodes[0].URL, cfg) // it learns of the others from the cluster
	got := make(chan uint64, 64)
	stop, err := b.Watch(context.Background(), func(_ string, msgs []rooms.Message, _ bool) {
		for _, m := range msgs {
			got <- m.Seq
		}
	}, func(err error) { t.Log("feed:", err) })
	require.NoError(t, err)
	t.Cleanup(stop)
	e := a.Epoch()
	next := uint64(1)
	appendOne := func() {
		t.Helper()
		require.Eventually(t, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			return a.Append(ctx, []rooms.Message{{Room: "ROOM22", Seq: next, Epoch: e}}) == nil
		}, 30*time.Second, 100*time.Millisecond)
		next++
	}
	expect := func(seq uint64) {
		t.Helper()
		select {
		case s := <-got:
			assert.Equal(t, seq, s)
		case <-time.After(30 * time.Second):
			t.Fatalf("the feed did not deliver message %d", seq)
		}
	}
	appendOne()
	expect(1)
	nodes[0].Stop() // the node b's connection uses
	start := time.Now()
	appendOne()
	expect(2)
	t.Logf("feed delivered again %s after the node was lost", time.Since(start).Round(time.Millisecond))
	appendOne()
	expect(3)
}
