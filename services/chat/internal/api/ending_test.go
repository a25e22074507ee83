package api

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A stream ends with the first reason given, whoever gives it, and the
// handler returns that reason, so that the log, the metrics and the
// client's status agree.
func TestEnderFirstReasonWins(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name   string
		ends   []error // given to end, in order
		result error
	}{
		{"overflow, then expiry", []error{rooms.ErrSlowConsumer, rooms.ErrRoomTokenExpired}, rooms.ErrSlowConsumer},
		{"drain", []error{rooms.ErrShuttingDown, boom}, rooms.ErrShuttingDown},
		{"room deleted", []error{rooms.ErrDeleted}, rooms.ErrDeleted},
		{"half-close flushed is OK", []error{errFlushed, rooms.ErrSlowConsumer}, nil},
		{"send failed", []error{boom}, boom},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnder()
			assert.False(t, e.ended())
			for _, err := range tt.ends {
				e.end(err)
			}
			assert.True(t, e.ended())
			assert.Equal(t, tt.result, e.result())
			assert.Equal(t, tt.result, e.result(), "a second result changes nothing")
		})
	}
	t.Run("concurrent ends", func(t *testing.T) {
		e := newEnder()
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() { e.end(boom) })
		}
		wg.Go(func() { assert.ErrorIs(t, e.result(), boom) })
		wg.Wait()
	})
}

// newConn is a registered stream for openStreams, subscribed or not.
func newConn(sub *rooms.Subscription) *conn {
	c := &conn{e: newEnder()}
	if sub != nil {
		c.sub.Store(sub)
	}
	return c
}

// Drain ends every registered stream with Unavailable, not those that
// have gone, and refuses streams from then on: a stream not yet
// subscribed at once, a subscribed one after what is queued for it, or
// after the grace period if nobody drains its queue.
func TestOpenStreamsDrain(t *testing.T) {
	var l openStreams
	queued := &rooms.Event{Kind: rooms.EventJoined, User: "x"}
	subs := []*rooms.Subscription{
		nil,
		rooms.NewSubscription(rooms.Opened{}, []*rooms.Event{queued}, 4, nil),
		nil,
		nil,
		rooms.NewSubscription(rooms.Opened{}, []*rooms.Event{queued}, 4, nil),
	}
	conns := make([]*conn, len(subs))
	for i := range conns {
		conns[i] = newConn(subs[i])
		require.True(t, l.add(conns[i]))
	}
	l.remove(conns[0]) // the last one in the list
	l.remove(conns[3]) // one in the middle
	l.drain(200 * time.Millisecond)
	assert.False(t, conns[0].e.ended(), "removed streams are left alone")
	assert.False(t, conns[3].e.ended())
	assert.ErrorIs(t, conns[2].e.result(), rooms.ErrShuttingDown, "not subscribed: at once")
	assert.False(t, conns[1].e.ended(), "subscribed: after its queue")

	// The queued event comes first, with the reason.
	evs, err := subs[1].Drain(nil, 10, 1<<20)
	assert.Equal(t, []*rooms.Event{queued}, evs)
	assert.ErrorIs(t, err, rooms.ErrShuttingDown)

	// Nobody drains stream 4: the grace period ends it.
	assert.ErrorIs(t, conns[4].e.result(), rooms.ErrShuttingDown)

	late := newConn(nil)
	assert.False(t, l.add(late), "no stream starts once draining")
	l.remove(conns[1]) // a drained stream's handler returns
	l.drain(time.Millisecond)
}
