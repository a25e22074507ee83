package engine_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

// cancelAfterDelete is a registry whose Delete succeeds and then the
// caller's context ends: the client hung up on DeleteChatRoom, or its
// deadline passed, just after the registry committed.
type cancelAfterDelete struct {
	engine.Registry
	cancel context.CancelFunc
}

func (r *cancelAfterDelete) Delete(ctx context.Context, code, ownerID string, at time.Time) error {
	err := r.Registry.Delete(ctx, code, ownerID, at)
	r.cancel()
	return err
}

// A deleted room's messages must not outlive it, let alone show up in the
// next room that gets the same code.
func TestDeleteOutlivesItsCall(t *testing.T) {
	st, err := sqlstore.Open(ctx(t), sqlstore.Config{DataDir: t.TempDir(), Retain: retained(engine.Config{})})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	reg := &cancelAfterDelete{Registry: st}
	m := start(t, engine.Config{NewCode: codes("AAAAAA")}, reg, st)

	r := create(t, m, "u1")
	send(t, m, r.Code, ann, "", "owner's secret")
	dctx, cancel := context.WithCancel(ctx(t))
	reg.cancel = cancel
	require.NoError(t, m.DeleteRoom(dctx, r.Code, "u1"), "the deletion is reported done")

	assert.Empty(t, logged(t, st, r.Code), "the deleted room's history is gone")

	// ReuseAfter is 0 here; in production the same happens after
	// ReuseAfter when a random code repeats.
	r2, err := m.CreateRoom(ctx(t), "someone else's", "hash2", "u2")
	require.NoError(t, err)
	require.Equal(t, r.Code, r2.Code)
	s := subscribe(t, m, r2.Code, bob, rooms.Open{Backlog: 10})
	evs, _ := drain(s)
	assert.Empty(t, bodies(evs), "a new room must not show the previous room's messages")
}

// The engine's own presence counts do not vanish because its renewal ran
// late (a database call of up to DB_TIMEOUT can hold up a tick).
func TestLatePresenceRenewalKeepsOpenStreams(t *testing.T) {
	clk := newClock()
	m, _, _ := newEngine(t, engine.Config{Now: clk.Now, MaxStreamsPerUser: 1})
	r := create(t, m, "u1")
	sa := subscribe(t, m, r.Code, ann, rooms.Open{})

	clk.advance(31 * time.Second) // one PresenceTTL without a Renew
	sb := subscribe(t, m, r.Code, bob, rooms.Open{})
	users, err := m.Users(ctx(t), r.Code)
	require.NoError(t, err)
	assert.Equal(t, []rooms.User{{Name: "ann", Streams: 1}, {Name: "bob", Streams: 1}}, users, "ann's stream is still open")

	_, err = m.Subscribe(ctx(t), r.Code, ann, rooms.Open{})
	assert.ErrorIs(t, err, rooms.ErrTooManyStreams, "MAX_STREAMS_PER_USER still holds")

	_, _ = drain(sb)
	sa.Close()
	evs, _ := drain(sb)
	var left bool
	for _, ev := range evs {
		left = left || ev.Kind == rooms.EventLeft
	}
	assert.True(t, left, "bob hears that ann left")
}

// ackLostLog stores the first batch and then reports a transient error,
// as a database does when the commit's acknowledgement is lost (timeout,
// connection reset during COMMIT).
type ackLostLog struct {
	*memstore.Log
	once sync.Once
}

func (l *ackLostLog) Append(ctx context.Context, msgs []rooms.Message) error {
	err := l.Log.Append(ctx, msgs)
	l.once.Do(func() {
		if err == nil {
			err = fmt.Errorf("%w: connection reset during commit", rooms.ErrUnavailable)
		}
	})
	return err
}

// A retried Append whose first try did land is not taken for another
// writer: the batch is found in the log and delivered.
func TestRetryAfterAmbiguousCommit(t *testing.T) {
	log := &ackLostLog{Log: memstore.NewLog(retained(engine.Config{}))}
	m := start(t, engine.Config{}, memstore.NewRegistry(), log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, ann, rooms.Open{})
	send(t, m, r.Code, ann, "c1", "hello")
	evs, err := drain(s)
	assert.NoError(t, err, "the stream goes on")
	assert.Equal(t, []string{"hello"}, bodies(evs))
}

// slowIdleRegistry holds DeleteIdle until released.
type slowIdleRegistry struct {
	*memstore.Registry
	entered, gate chan struct{}
}

func (r *slowIdleRegistry) DeleteIdle(ctx context.Context, code string, idleBefore, at time.Time) (bool, error) {
	close(r.entered)
	<-r.gate
	return r.Registry.DeleteIdle(ctx, code, idleBefore, at)
}

// While the sweep asks the registry about a loaded room, a stream opening
// in it waits for the answer: the registry may keep the room (a join
// touched it after the sweep listed it), and then the stream opens.
func TestStreamOpensInRoomThatSurvivesSweep(t *testing.T) {
	clk := newClock()
	reg := &slowIdleRegistry{Registry: memstore.NewRegistry(), entered: make(chan struct{}), gate: make(chan struct{})}
	m := start(t, engine.Config{Now: clk.Now, IdleTTL: time.Hour}, reg, memstore.NewLog(retained(engine.Config{})))
	r := create(t, m, "u1")
	send(t, m, r.Code, ann, "", "loads the room")
	clk.advance(2 * time.Hour)

	done := make(chan int)
	go func() { n, _ := m.SweepIdle(context.Background()); done <- n }()
	<-reg.entered
	require.NoError(t, m.Touch(ctx(t), r.Code)) // JoinChatRoom, after the sweep listed the room
	opened := make(chan error, 1)
	go func() { // Owner: this test. Exit: once the sweep has decided.
		s, err := m.Subscribe(ctx(t), r.Code, bob, rooms.Open{})
		if err == nil {
			s.Close()
		}
		opened <- err
	}()
	close(reg.gate)
	assert.Equal(t, 0, <-done, "the room survives the sweep")
	assert.NoError(t, <-opened, "so its stream opens, once the sweep has decided")
}

// countingLog counts Since calls: one per load of a room.
type countingLog struct {
	*memstore.Log
	since atomic.Int32
}

func (l *countingLog) Since(ctx context.Context, code string, after uint64, limit int) ([]rooms.Message, error) {
	l.since.Add(1)
	time.Sleep(time.Millisecond) // a database round trip
	return l.Log.Since(ctx, code, after, limit)
}

// After a restart every member of a room reconnects at once: the room's
// history is read once, not once per member.
func TestReconnectStormLoadsOncePerRoom(t *testing.T) {
	reg := memstore.NewRegistry()
	log := &countingLog{Log: memstore.NewLog(retained(engine.Config{}))}
	m := start(t, engine.Config{}, reg, log)
	r := create(t, m, "u1")
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Go(func() {
			s, err := m.Subscribe(ctx(t), r.Code, rooms.Member{ID: fmt.Sprint("m", i), Name: fmt.Sprint("m", i)}, rooms.Open{})
			if assert.NoError(t, err) {
				s.Close()
			}
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, log.since.Load(), int32(2), "history reads for one room")
}

// panickyLog panics in its first Append, as a faulty driver might.
type panickyLog struct {
	*memstore.Log
	once sync.Once
}

func (l *panickyLog) Append(ctx context.Context, msgs []rooms.Message) error {
	l.once.Do(func() { panic("driver bug") })
	return l.Log.Append(ctx, msgs)
}

// A panic while writing the log fails that attempt, which is retried and
// reported; the process and the message survive.
func TestAppendPanicIsRetried(t *testing.T) {
	var mu sync.Mutex
	var reports []string
	cfg := engine.Config{Report: func(err error) { mu.Lock(); reports = append(reports, err.Error()); mu.Unlock() }}
	m := start(t, cfg, memstore.NewRegistry(), &panickyLog{Log: memstore.NewLog(retained(cfg))})
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, ann, rooms.Open{})
	send(t, m, r.Code, ann, "c1", "survives")
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"survives"}, bodies(evs))
	mu.Lock()
	defer mu.Unlock()
	require.NotEmpty(t, reports)
	assert.Contains(t, reports[0], "driver bug")
}

// Deletions that fail (another code, not the owner) neither fence the
// room nor throw away its load: it loads once.
func TestFailedDeletesDoNotStarveLoads(t *testing.T) {
	reg := memstore.NewRegistry()
	log := &countingLog{Log: memstore.NewLog(retained(engine.Config{}))}
	m := start(t, engine.Config{}, reg, log)
	r := create(t, m, "u1")
	other := create(t, m, "u2")

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // Owner: this test. Exit: stop.
		for {
			select {
			case <-stop:
				return
			default:
			}
			_ = m.DeleteRoom(context.Background(), "ZZZZZZ", "mallory")   // no such room
			_ = m.DeleteRoom(context.Background(), other.Code, "mallory") // not the owner
		}
	})
	s, err := m.Subscribe(ctx(t), r.Code, bob, rooms.Open{})
	close(stop)
	wg.Wait()
	require.NoError(t, err)
	s.Close()
	assert.Equal(t, int32(1), log.since.Load(), "one history load")
}

// downRegistry answers every look-up with an outage, after a pause.
type downRegistry struct {
	*memstore.Registry
	calls   atomic.Int32
	release chan struct{}
}

func (r *downRegistry) Room(ctx context.Context, code string) (rooms.Room, error) {
	r.calls.Add(1)
	<-r.release
	return rooms.Room{}, rooms.ErrUnavailable
}

// Clients that wait for a room's load get its outcome: an outage is one
// failed read for all of them, not one each in turn.
func TestWaitersShareAFailedLoad(t *testing.T) {
	reg := &downRegistry{Registry: memstore.NewRegistry(), release: make(chan struct{})}
	m := start(t, engine.Config{}, reg, memstore.NewLog(retained(engine.Config{})))
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			_, err := m.Subscribe(ctx(t), "ROOM23", bob, rooms.Open{})
			assert.ErrorIs(t, err, rooms.ErrUnavailable)
		})
	}
	for reg.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the others find the load under way
	close(reg.release)
	wg.Wait()
	assert.LessOrEqual(t, reg.calls.Load(), int32(2), "registry reads for 20 waiters")
}
