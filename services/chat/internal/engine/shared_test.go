package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A log that another writer changed refuses a room's messages: the engine
// catches up with what the other wrote, delivers it, and writes its own
// after it, while the other rooms of the same batch are written as they
// were.
func TestSeqConflictCatchesUp(t *testing.T) {
	rep := &reports{}
	cfg := engine.Config{Report: rep.report}
	log := newGatedLog(retained(cfg))
	m := start(t, cfg, memstore.NewRegistry(), log)
	w, x, y := create(t, m, "u1"), create(t, m, "u1"), create(t, m, "u1")
	sx := subscribe(t, m, x.Code, ann, rooms.Open{})
	sy := subscribe(t, m, y.Code, ann, rooms.Open{})
	require.NoError(t, log.Log.Append(ctx(t), []rooms.Message{{Room: x.Code, Seq: 1, SentAt: t0, SenderID: "u9", Sender: "zed", Body: "foreign"}}))

	// Hold the committer on a first batch so that x's and y's messages
	// form the next one.
	log.hold()
	t.Cleanup(log.release)
	_, err := m.Publish(ctx(t), w.Code, ann, "", "w1")
	require.NoError(t, err)
	log.awaitAppend(t)
	for _, code := range []string{x.Code, y.Code} {
		seq, err := m.Publish(ctx(t), code, ann, "", "to "+code)
		require.NoError(t, err)
		require.Equal(t, uint64(1), seq)
	}
	log.release()
	require.NoError(t, m.Flush(ctx(t)))

	evs, err := drain(sy)
	require.NoError(t, err)
	assert.Equal(t, []string{"to " + y.Code}, bodies(evs))
	assert.Equal(t, []string{"to " + y.Code}, logged(t, log, y.Code))
	evs, err = drain(sx)
	require.NoError(t, err)
	assert.Equal(t, []string{"foreign", "to " + x.Code}, bodies(evs))
	assert.Equal(t, []uint64{1, 2}, seqs(evs))
	assert.Equal(t, []string{"foreign", "to " + x.Code}, logged(t, log, x.Code))
	assert.Equal(t, uint64(3), send(t, m, x.Code, ann, "", "x again"))
	evs, err = drain(sx)
	require.NoError(t, err)
	assert.Equal(t, []uint64{3}, seqs(evs))
	for _, err := range rep.all() {
		assert.NotErrorIs(t, err, rooms.ErrSeqConflict, "catching up is routine, not an error")
	}
}

// feed stands for a shared log's feed: after each Append it tells the
// other engines what was written, as a NATS feed would, in order.
type feed struct {
	engine.Log
	mu      sync.Mutex
	engines []*engine.Engine
	self    map[*engine.Engine]bool
}

// sharedLog is one engine's view of the feed: its appends reach the others.
type sharedLog struct {
	*feed
	owner **engine.Engine
}

func (l sharedLog) Append(ctx context.Context, msgs []rooms.Message) error {
	l.mu.Lock() // appends and their reports in one order, as a log's feed gives
	defer l.mu.Unlock()
	if err := l.Log.Append(ctx, msgs); err != nil {
		return err
	}
	for _, m := range l.engines {
		if m == *l.owner {
			continue
		}
		for i := 0; i < len(msgs); {
			j := i + 1
			for j < len(msgs) && msgs[j].Room == msgs[i].Room {
				j++
			}
			m.Apply(msgs[i].Room, append([]rooms.Message(nil), msgs[i:j]...), false)
			i = j
		}
	}
	return nil
}

func (l sharedLog) Drop(ctx context.Context, code string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.Log.Drop(ctx, code); err != nil {
		return err
	}
	for _, m := range l.engines {
		if m != *l.owner {
			m.Apply(code, nil, true)
		}
	}
	return nil
}

// instances starts n engines sharing one registry, one log with a feed and
// one presence table, as n service instances would.
func instances(t *testing.T, n int, cfg engine.Config) ([]*engine.Engine, engine.Log) {
	reg := memstore.NewRegistry()
	f := &feed{Log: memstore.NewLog(retained(cfg))}
	table := engine.NewMemoryPresence(30*time.Second, nil)
	out := make([]*engine.Engine, n)
	for i := range out {
		c := cfg
		c.Presence = table.Holder(fmt.Sprint("i", i))
		out[i] = start(t, c, reg, sharedLog{feed: f, owner: &out[i]})
	}
	f.mu.Lock()
	f.engines = out
	f.mu.Unlock()
	return out, f.Log
}

// Members on two instances see one room's messages, sent from both at
// once, in one order with contiguous sequences, the log's.
func TestSharedLogOneOrder(t *testing.T) {
	ms, log := instances(t, 2, engine.Config{HistorySize: 1000, QueueSize: 1000})
	r := create(t, ms[0], "u1")
	subs := []*rooms.Subscription{
		subscribe(t, ms[0], r.Code, ann, rooms.Open{}),
		subscribe(t, ms[1], r.Code, bob, rooms.Open{}),
	}
	const each = 200
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			for k := range each {
				_, err := m.Publish(context.Background(), r.Code, []rooms.Member{ann, bob}[i], fmt.Sprint(k), fmt.Sprintf("%d-%d", i, k))
				assert.NoError(t, err)
			}
		})
	}
	wg.Wait()
	for _, m := range ms {
		require.NoError(t, m.Flush(ctx(t)))
	}
	want := logged(t, log, r.Code)
	require.Len(t, want, 2*each)
	for i, s := range subs {
		var got []*rooms.Event
		require.Eventually(t, func() bool {
			evs, err := drain(s)
			require.NoError(t, err)
			for _, ev := range evs {
				if ev.Kind == rooms.EventMessage {
					got = append(got, ev)
				}
			}
			return len(got) >= 2*each
		}, 10*time.Second, 5*time.Millisecond, "instance %d delivered %d of %d", i, len(got), 2*each)
		assert.Equal(t, want, bodies(got), "instance %d: the log's order", i)
		assert.Equal(t, span(1, 2*each), seqs(got), "instance %d: contiguous sequences", i)
	}
}

// A client that resends a message on another instance, after the first
// wrote it, has it ignored there: the second instance catches up with
// the log and finds the client ID.
func TestSharedLogDedupAcrossInstances(t *testing.T) {
	ms, log := instances(t, 2, engine.Config{})
	r := create(t, ms[0], "u1")
	s1 := subscribe(t, ms[1], r.Code, bob, rooms.Open{})
	// ms[1] hears nothing of it until it tries to write after it.
	send(t, ms[0], r.Code, ann, "c1", "once")
	require.NoError(t, ms[0].Flush(ctx(t)))
	_, err := ms[1].Publish(ctx(t), r.Code, ann, "c1", "once")
	require.NoError(t, err)
	require.NoError(t, ms[1].Flush(ctx(t)))
	assert.Equal(t, []string{"once"}, logged(t, log, r.Code))
	evs, err := drain(s1)
	require.NoError(t, err)
	assert.Equal(t, []string{"once"}, bodies(evs))
}

// A deletion on one instance ends the room's streams on the others.
func TestSharedLogDeleteEndsStreamsEverywhere(t *testing.T) {
	ms, _ := instances(t, 2, engine.Config{})
	r := create(t, ms[0], "u1")
	s1 := subscribe(t, ms[1], r.Code, bob, rooms.Open{})
	require.NoError(t, ms[0].DeleteRoom(ctx(t), r.Code, "u1"))
	var evs []*rooms.Event
	var err error
	require.Eventually(t, func() bool {
		var more []*rooms.Event
		more, err = drain(s1)
		evs = append(evs, more...)
		return err != nil
	}, 5*time.Second, 5*time.Millisecond)
	assert.ErrorIs(t, err, rooms.ErrDeleted)
	require.NotEmpty(t, evs)
	assert.Equal(t, rooms.EventRoomDeleted, evs[len(evs)-1].Kind)
	_, err = ms[1].Publish(ctx(t), r.Code, bob, "", "late")
	assert.ErrorIs(t, err, rooms.ErrNotFound)
}

// Another instance's presence change reaches this one's streams.
func TestNotifyPresence(t *testing.T) {
	ms, _ := instances(t, 1, engine.Config{})
	r := create(t, ms[0], "u1")
	s := subscribe(t, ms[0], r.Code, ann, rooms.Open{})
	ms[0].Notify(r.Code, &rooms.Event{Kind: rooms.EventJoined, User: "zed", At: t0})
	ms[0].Notify(r.Code, &rooms.Event{Kind: rooms.EventMessage, At: t0}) // not a presence change: ignored
	ms[0].Notify("NOSUCH", &rooms.Event{Kind: rooms.EventLeft, User: "zed", At: t0})
	evs, err := drain(s)
	require.NoError(t, err)
	require.Len(t, evs, 1)
	assert.Equal(t, "zed", evs[0].User)
}

// staleHead is a shared log whose Head is read just before another
// instance appends: it lags one message behind what Since returns.
type staleHead struct{ engine.Log }

func (l staleHead) Head(ctx context.Context, code string) (uint64, error) {
	h, err := l.Log.Head(ctx, code)
	return h - min(h, 1), err
}

// A room loaded while another instance appends starts from the last
// message it read, not from the head it read first.
func TestLoadWhileAnotherAppends(t *testing.T) {
	log := memstore.NewLog(retained(engine.Config{}))
	reg := memstore.NewRegistry()
	m := start(t, engine.Config{}, reg, staleHead{log})
	r := create(t, m, "u1")
	require.NoError(t, log.Append(ctx(t), []rooms.Message{
		{Room: r.Code, Seq: 1, Epoch: log.Epoch(), SentAt: t0, Body: "one"},
		{Room: r.Code, Seq: 2, Epoch: log.Epoch(), SentAt: t0, Body: "two"},
	}))
	s := subscribe(t, m, r.Code, ann, rooms.Open{Backlog: 10})
	assert.Equal(t, uint64(2), s.Opened.Head)
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two"}, bodies(evs))
	assert.Equal(t, uint64(3), send(t, m, r.Code, ann, "", "three"))
}
