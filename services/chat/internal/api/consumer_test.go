package api

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// consumerLog is a rooms.Consumer that counts its calls.
type consumerLog struct{ starts, overflows int }

func (c *consumerLog) Start()    { c.starts++ }
func (c *consumerLog) Overflow() { c.overflows++ }

func event(t *testing.T, i int) *rooms.Event {
	t.Helper()
	return &rooms.Event{Kind: rooms.EventJoined, User: fmt.Sprint(i), At: time.Unix(0, 0)}
}

// The writer relies on the subscription to start it, claimed, whenever
// events are pending and nobody holds the claim, and to report an
// overflow at once even while the writer holds the claim (blocked on a
// stalled client). The calls come on the pushing goroutine, so the
// counts need no lock here.
func TestSubscriptionStartsItsConsumer(t *testing.T) {
	t.Run("push while unclaimed", func(t *testing.T) {
		sub := rooms.NewSubscription(rooms.Opened{}, nil, 4, nil)
		c := &consumerLog{}
		sub.Watch(c)
		assert.Zero(t, c.starts, "nothing pending")
		require.True(t, sub.Push(event(t, 1)))
		assert.Equal(t, 1, c.starts)
		assert.False(t, sub.Claim(), "claimed on the consumer's behalf")
		require.True(t, sub.Push(event(t, 2)))
		assert.Equal(t, 1, c.starts, "not again while claimed")
		got, err := sub.Drain(nil, 10, 1<<20)
		require.NoError(t, err)
		assert.Len(t, got, 2)
		require.True(t, sub.Release())
		require.True(t, sub.Push(event(t, 3)))
		assert.Equal(t, 2, c.starts, "again once released")
	})
	t.Run("backlog when watched", func(t *testing.T) {
		sub := rooms.NewSubscription(rooms.Opened{}, []*rooms.Event{event(t, 1)}, 4, nil)
		c := &consumerLog{}
		sub.Watch(c)
		assert.Equal(t, 1, c.starts)
		assert.False(t, sub.Claim())
	})
	t.Run("overflow while claimed", func(t *testing.T) {
		sub := rooms.NewSubscription(rooms.Opened{}, nil, 2, nil)
		c := &consumerLog{}
		sub.Watch(c)
		for i := range 2 {
			require.True(t, sub.Push(event(t, i)))
		}
		assert.False(t, sub.Push(event(t, 3)))
		assert.False(t, sub.Push(event(t, 4)))
		sub.End(event(t, 5), rooms.ErrDeleted)
		assert.Equal(t, consumerLog{starts: 1, overflows: 1}, *c, "one overflow, and no start: the claim is held")
	})
	t.Run("overflow before watched", func(t *testing.T) {
		sub := rooms.NewSubscription(rooms.Opened{}, nil, 1, nil)
		require.True(t, sub.Push(event(t, 1)))
		require.False(t, sub.Push(event(t, 2)))
		c := &consumerLog{}
		sub.Watch(c)
		assert.Equal(t, consumerLog{overflows: 1}, *c)
	})
	t.Run("end while unclaimed", func(t *testing.T) {
		sub := rooms.NewSubscription(rooms.Opened{}, nil, 4, nil)
		c := &consumerLog{}
		sub.Watch(c)
		sub.End(event(t, 1), rooms.ErrDeleted)
		assert.Equal(t, consumerLog{starts: 1}, *c, "started to deliver the last event and the end")
	})
	t.Run("closed", func(t *testing.T) {
		closed := 0
		sub := rooms.NewSubscription(rooms.Opened{}, nil, 4, func() { closed++ })
		c := &consumerLog{}
		sub.Watch(c)
		sub.Close()
		sub.Close()
		sub.Push(event(t, 1))
		assert.Equal(t, consumerLog{}, *c, "a closed subscription starts nothing")
		assert.Equal(t, 1, closed)
	})
}

// The subscription's snapshot of the room's users is handed over once
// and not kept for the stream's life.
func TestTakeOpenedReleasesUsers(t *testing.T) {
	sub := rooms.NewSubscription(rooms.Opened{Code: "ABC", Users: []rooms.User{{Name: "ann", Streams: 1}}}, nil, 4, nil)
	o := sub.TakeOpened()
	assert.Equal(t, "ABC", o.Code)
	assert.Len(t, o.Users, 1)
	assert.Nil(t, sub.Opened.Users)
}
