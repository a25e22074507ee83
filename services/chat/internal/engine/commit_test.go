package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Nobody sees a message before the log has it: not the streams open when
// it was published, nor streams opened while it is being written, which
// get it live, once.
func TestDeliveryWaitsForLog(t *testing.T) {
	log := newGatedLog(retained(engine.Config{}))
	m := start(t, engine.Config{}, memstore.NewRegistry(), log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, ann, rooms.Open{})

	log.hold()
	t.Cleanup(log.release)
	seq, err := m.Publish(ctx(t), r.Code, ann, "", "one")
	require.NoError(t, err)
	assert.Equal(t, uint64(1), seq)
	log.awaitAppend(t)
	short, cancel := context.WithTimeout(ctx(t), 50*time.Millisecond)
	defer cancel()
	assert.ErrorIs(t, m.Flush(short), context.DeadlineExceeded)
	assert.False(t, s.Pending(), "delivered before the log had it")

	resumed := subscribe(t, m, r.Code, ann, rooms.Open{Resume: &rooms.Resume{Epoch: m.Epoch(), After: 0}})
	assert.Equal(t, rooms.RecoveryComplete, resumed.Opened.Recovery)
	backlog := subscribe(t, m, r.Code, ann, rooms.Open{Backlog: 10})
	for _, o := range []rooms.Opened{resumed.Opened, backlog.Opened} {
		assert.Zero(t, o.Head, "the head is the last message written")
		assert.Zero(t, o.Backlog)
	}

	log.release()
	require.NoError(t, m.Flush(ctx(t)))
	for _, sub := range []*rooms.Subscription{s, resumed, backlog} {
		evs, err := drain(sub)
		require.NoError(t, err)
		assert.Equal(t, []string{"one"}, bodies(evs))
	}
	assert.Equal(t, []string{"one"}, logged(t, log, r.Code))
}

// A failed Append is reported and retried; the messages then arrive once
// each, in order.
func TestFailedAppendIsRetried(t *testing.T) {
	rep := &reports{}
	cfg := engine.Config{Report: rep.report}
	log := newGatedLog(retained(cfg))
	m := start(t, cfg, memstore.NewRegistry(), log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, bob, rooms.Open{})

	log.fail(3)
	for _, b := range []string{"a", "b", "c"} {
		_, err := m.Publish(ctx(t), r.Code, ann, "", b)
		require.NoError(t, err)
	}
	require.NoError(t, m.Flush(ctx(t)))
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"a", "b", "c"}, bodies(evs))
	assert.Equal(t, span(1, 3), seqs(evs))
	assert.Equal(t, []string{"a", "b", "c"}, logged(t, log, r.Code))
	errs := rep.all()
	assert.Len(t, errs, 3, "one report per failed Append")
	for _, err := range errs {
		assert.ErrorIs(t, err, errDisk)
	}
}

// MaxPending bounds the messages accepted but not yet written to the
// log, the batch being written included: Publish waits while there are
// that many, gives up when its context ends, and proceeds once they are
// written.
func TestPublishWaitsAtMaxPending(t *testing.T) {
	cfg := engine.Config{MaxPending: 2}
	log := newGatedLog(retained(cfg))
	m := start(t, cfg, memstore.NewRegistry(), log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, bob, rooms.Open{})

	log.hold()
	t.Cleanup(log.release)
	_, err := m.Publish(ctx(t), r.Code, ann, "", "one")
	require.NoError(t, err)
	log.awaitAppend(t) // "one" is being written
	_, err = m.Publish(ctx(t), r.Code, ann, "", "two")
	require.NoError(t, err)

	short, cancel := context.WithTimeout(ctx(t), 100*time.Millisecond)
	defer cancel()
	_, err = m.Publish(short, r.Code, ann, "", "refused")
	assert.ErrorIs(t, err, context.DeadlineExceeded, "two messages pending: Publish must wait")

	type result struct {
		seq uint64
		err error
	}
	done := make(chan result, 1)
	go func() { // Owner: this test. Exit: Publish returns once the log is released.
		seq, err := m.Publish(ctx(t), r.Code, ann, "", "three")
		done <- result{seq, err}
	}()
	log.release()
	res := <-done
	require.NoError(t, res.err)
	require.NoError(t, m.Flush(ctx(t)))
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, bodies(evs), logged(t, log, r.Code))
	assert.Equal(t, "three", bodies(evs)[len(evs)-1])
	assert.Equal(t, uint64(len(evs)), res.seq)
}

// Close writes every message accepted before it, and Publish fails after.
func TestCloseWritesEverythingAccepted(t *testing.T) {
	log := newGatedLog(retained(engine.Config{}))
	m := start(t, engine.Config{}, memstore.NewRegistry(), log)
	r := create(t, m, "u1")
	s := subscribe(t, m, r.Code, bob, rooms.Open{})

	log.hold()
	t.Cleanup(log.release)
	for _, b := range []string{"one", "two", "three"} {
		_, err := m.Publish(ctx(t), r.Code, ann, "", b)
		require.NoError(t, err)
	}
	log.awaitAppend(t)
	closed := make(chan error, 1)
	go func() { closed <- m.Close(ctx(t)) }() // Owner: this test. Exit: the log is released below.
	// Publish refuses new messages as soon as Close begins; a room that
	// does not exist tells without adding any.
	require.Eventually(t, func() bool {
		_, err := m.Publish(ctx(t), "NOPE", ann, "", "x")
		return errors.Is(err, rooms.ErrShuttingDown)
	}, 5*time.Second, time.Millisecond)
	log.release()
	require.NoError(t, <-closed)

	assert.Equal(t, []string{"one", "two", "three"}, logged(t, log, r.Code))
	evs, err := drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"one", "two", "three"}, bodies(evs))
	_, err = m.Publish(ctx(t), r.Code, ann, "", "late")
	assert.ErrorIs(t, err, rooms.ErrShuttingDown)
	assert.NoError(t, m.Flush(ctx(t)), "nothing pending")
}

// Close waits for a broken log only until its context ends, and then says
// that accepted messages were lost.
func TestCloseGivesUpOnBrokenLog(t *testing.T) {
	cases := []struct {
		name     string
		breakLog func(*gatedLog)
	}{
		{"Append fails", func(l *gatedLog) { l.fail(-1) }},
		{"Append hangs", func(l *gatedLog) { l.hold() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := newGatedLog(retained(engine.Config{}))
			m, err := engine.New(testConfig(engine.Config{}), memstore.NewRegistry(), log)
			require.NoError(t, err)
			r := create(t, m, "u1")
			s := subscribe(t, m, r.Code, bob, rooms.Open{})

			tc.breakLog(log)
			_, err = m.Publish(ctx(t), r.Code, ann, "", "lost")
			require.NoError(t, err)
			log.awaitAppend(t)
			c, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
			defer cancel()
			closed := make(chan error, 1)
			go func() { closed <- m.Close(c) }() // Owner: this test. Exit: Close returns, at worst once the log is repaired below.
			select {
			case err = <-closed:
				assert.ErrorIs(t, err, rooms.ErrUnavailable)
				assert.False(t, s.Pending(), "delivered without the log")
			case <-time.After(5 * time.Second):
				t.Error("Close did not return after its context ended")
				log.fail(0)
				log.release()
				<-closed
			}
			_, err = m.Publish(ctx(t), r.Code, ann, "", "late")
			assert.ErrorIs(t, err, rooms.ErrShuttingDown)
			log.fail(0)
			log.release()
		})
	}
}

// A log that another writer changed refuses a room's messages: that room
// is reset (its streams end with ErrUnavailable, it reloads from the log
// on next use), while the other rooms of the same batch are written and
// delivered.
func TestSeqConflictResetsRoom(t *testing.T) {
	rep := &reports{}
	cfg := engine.Config{Report: rep.report}
	log := newGatedLog(retained(cfg))
	m := start(t, cfg, memstore.NewRegistry(), log)
	w, x, y := create(t, m, "u1"), create(t, m, "u1"), create(t, m, "u1")
	sx := subscribe(t, m, x.Code, ann, rooms.Open{})
	sy := subscribe(t, m, y.Code, ann, rooms.Open{})
	require.NoError(t, log.Log.Append(ctx(t), []rooms.Message{{Room: x.Code, Seq: 1, SentAt: t0, Body: "foreign"}}))

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
	batch := log.awaitAppend(t)
	require.Len(t, batch, 2, "x and y in one batch")

	evs, err := drain(sy)
	require.NoError(t, err)
	assert.Equal(t, []string{"to " + y.Code}, bodies(evs))
	assert.Equal(t, []string{"to " + y.Code}, logged(t, log, y.Code))
	evs, err = drain(sx)
	assert.ErrorIs(t, err, rooms.ErrUnavailable)
	assert.Empty(t, evs)
	assert.Equal(t, []string{"foreign"}, logged(t, log, x.Code))
	conflicts := 0
	for _, err := range rep.all() {
		if errors.Is(err, rooms.ErrSeqConflict) {
			conflicts++
		}
	}
	assert.Equal(t, 1, conflicts, "the refusal is reported")
	assert.False(t, m.Loaded(x.Code), "forgotten until next use")

	s := subscribe(t, m, x.Code, bob, rooms.Open{Backlog: 10})
	assert.Equal(t, uint64(1), s.Opened.Head)
	evs, err = drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"foreign"}, bodies(evs))
	assert.Equal(t, uint64(2), send(t, m, x.Code, ann, "", "x again"))
	evs, err = drain(s)
	require.NoError(t, err)
	assert.Equal(t, []string{"x again"}, bodies(evs))
	assert.Equal(t, []string{"foreign", "x again"}, logged(t, log, x.Code))
}

// After a reset, the old room's later messages may still await the log
// when the reloaded room accepts new ones with the same sequences. The log
// refuses the batch holding both; whatever reaches a stream must still be
// in the log, and a message the log refused must end the streams of the
// room that accepted it.
func TestSeqConflictAfterReloadDeliversOnlyWritten(t *testing.T) {
	var (
		m      *engine.Engine
		x      rooms.Room
		once   sync.Once
		hooked = make(chan struct{})
		sx2    *rooms.Subscription
		seq2   uint64
		errs   error
	)
	report := func(err error) {
		if !errors.Is(err, rooms.ErrSeqConflict) {
			return
		}
		// On the committer, right after the reset: a client reconnects
		// and sends before the old room's second message is written.
		once.Do(func() {
			defer close(hooked)
			c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			sx2, errs = m.Subscribe(c, x.Code, bob, rooms.Open{})
			if errs == nil {
				seq2, errs = m.Publish(c, x.Code, bob, "", "after reload")
			}
		})
	}
	cfg := engine.Config{Report: report}
	log := newGatedLog(retained(cfg))
	m = start(t, cfg, memstore.NewRegistry(), log)
	x = create(t, m, "u1")
	subscribe(t, m, x.Code, ann, rooms.Open{})
	require.NoError(t, log.Log.Append(ctx(t), []rooms.Message{{Room: x.Code, Seq: 1, SentAt: t0, Body: "foreign"}}))

	log.hold()
	t.Cleanup(log.release)
	_, err := m.Publish(ctx(t), x.Code, ann, "", "x1")
	require.NoError(t, err)
	log.awaitAppend(t)
	_, err = m.Publish(ctx(t), x.Code, ann, "", "x2")
	require.NoError(t, err)
	log.release()
	select {
	case <-hooked:
	case <-time.After(10 * time.Second):
		t.Fatal("no sequence conflict reported")
	}
	require.NoError(t, m.Flush(ctx(t)))
	require.NoError(t, errs)
	t.Cleanup(sx2.Close)
	assert.Equal(t, uint64(2), seq2, "the reloaded room follows the log's head")

	evs, err := drain(sx2)
	written := map[uint64]string{}
	msgs, lerr := log.Since(ctx(t), x.Code, 0, 0)
	require.NoError(t, lerr)
	for _, msg := range msgs {
		written[msg.Seq] = msg.Body
	}
	for _, ev := range evs {
		if ev.Kind == rooms.EventMessage {
			assert.Equal(t, ev.Message.Body, written[ev.Message.Seq], "message %d reached a stream but not the log", ev.Message.Seq)
		}
	}
	if written[2] != "after reload" {
		assert.ErrorIs(t, err, rooms.ErrUnavailable, "the log refused message 2, yet its room's streams go on")
	}
}
