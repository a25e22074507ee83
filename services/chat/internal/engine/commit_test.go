package engine_test

import (
	"context"
	"errors"
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
