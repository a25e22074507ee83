package e2e

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// collector receives a Client's events on its own goroutine, as a member
// of a room that sends and receives at once does, and keeps them for the
// test to inspect.
type collector struct {
	mu     sync.Mutex
	events []client.Event
	err    error // why Receive stopped; set before done is closed
	done   chan struct{}
}

func collect(t *testing.T, c *client.Client) *collector {
	t.Helper()
	col := &collector{done: make(chan struct{})}
	// The receiver lives until the session ends: the room is deleted, or
	// Cleanup closes the Client.
	go func() {
		defer close(col.done)
		for {
			ev, err := c.Receive(context.Background())
			col.mu.Lock()
			if err != nil {
				col.err = err
				col.mu.Unlock()
				return
			}
			col.events = append(col.events, ev)
			col.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-col.done
	})
	return col
}

// snapshot returns the events received so far.
func (col *collector) snapshot() []client.Event {
	col.mu.Lock()
	defer col.mu.Unlock()
	return slices.Clone(col.events)
}

// messages returns the messages received so far.
func (col *collector) messages() []*client.Message {
	return messagesOf(col.snapshot())
}

func messagesOf(evs []client.Event) []*client.Message {
	var out []*client.Message
	for _, ev := range evs {
		if m, ok := ev.(*client.Message); ok {
			out = append(out, m)
		}
	}
	return out
}

// eventsOf returns the events of type T.
func eventsOf[T client.Event](evs []client.Event) []T {
	var out []T
	for _, ev := range evs {
		if v, ok := ev.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// waitUntil polls the events received until ok holds, failing the test
// after d or once the session has ended.
func (col *collector) waitUntil(t *testing.T, d time.Duration, what string, ok func([]client.Event) bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		evs := col.snapshot()
		if ok(evs) {
			return
		}
		select {
		case <-col.done:
			t.Fatalf("%s: the session ended first (%v) after %d events", what, col.err, len(evs))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s (%d events, %d messages)", what, d, len(evs), len(messagesOf(evs)))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// hasBody tells whether a message with this body was received.
func hasBody(body string) func([]client.Event) bool {
	return func(evs []client.Event) bool {
		return slices.ContainsFunc(messagesOf(evs), func(m *client.Message) bool { return m.Body == body })
	}
}
