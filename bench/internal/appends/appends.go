// Package appends counts the appends that chat instances in shared mode
// make to their history stream on NATS JetStream, and how many of them the
// stream refused.
//
// An instance appends a room's new messages as one chunk, published on
// the room's subject only if the subject's last chunk is the one the
// instance knows (compare-and-set on the last subject sequence). When
// instances append to one room at once, one wins and the others are
// refused, catch up and publish again. The service counts none of this,
// but every publish also reaches an ordinary subscriber on the subject,
// refused or not, while the stream's last sequence counts only the chunks
// it stored: the difference is the refused appends.
package appends

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The names the chat service gives its history (services/chat/cmd/chat,
// shared.go); an instance with other names would not share its rooms.
const (
	stream  = "CHAT_HISTORY"
	subject = "chat.history.*"
	// dropped marks the chunk that ends a deleted room's history: not an
	// append.
	dropped = "Chat-Dropped"
)

// Count is what a Counter saw between Mark and Take.
type Count struct {
	// Stored is the chunks the stream stored.
	Stored int64 `json:"stored"`
	// Published is the chunks the instances published, when the Counter
	// watched publishes.
	Published int64 `json:"published,omitempty"`
}

// Refused is the publishes the stream turned down, when the Counter
// watched publishes: appends that lost the race for a room's next
// sequence (or, rarely, retries of an append whose answer was lost, which
// the stream deduplicates).
func (c Count) Refused() int64 { return max(0, c.Published-c.Stored) }

// Counter counts appends to the history stream.
type Counter struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	sub *nats.Subscription // nil unless watching publishes
	// seen counts the messages handled, published those that are appends.
	seen, published atomic.Int64
	mark            Count // the stream's last sequence and Published at Mark
}

// Start connects to url. The Counter counts the chunks the stream stores,
// which costs the server two requests per count, outside what is measured.
func Start(ctx context.Context, url string) (*Counter, error) {
	nc, err := nats.Connect(url, nats.Name("chatbench appends"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("appends: %w", err)
	}
	c := &Counter{nc: nc}
	if c.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return nil, fmt.Errorf("appends: %w", err)
	}
	return c, nil
}

// WatchPublishes makes the Counter count publishes too, refused or not,
// by subscribing to the history's subjects: the server then sends this
// process a copy of every append, which it spends CPU on.
func (c *Counter) WatchPublishes(ctx context.Context) error {
	// The handler runs on the subscription's delivery goroutine, which
	// ends when the connection closes (Close).
	sub, err := c.nc.Subscribe(subject, func(m *nats.Msg) {
		if m.Header.Get(dropped) == "" {
			c.published.Add(1)
		}
		c.seen.Add(1)
	})
	if err != nil {
		return fmt.Errorf("appends: subscribe: %w", err)
	}
	c.sub = sub
	return flush(ctx, c.nc) // the subscription is in place before Mark
}

// Close ends the subscription and the connection.
func (c *Counter) Close() { c.nc.Close() }

// Mark starts a count.
func (c *Counter) Mark(ctx context.Context) error {
	if err := c.settle(ctx); err != nil {
		return err
	}
	last, err := c.lastSeq(ctx)
	if err != nil {
		return err
	}
	c.mark = Count{Stored: last, Published: c.published.Load()}
	return nil
}

// Take returns the count since Mark.
func (c *Counter) Take(ctx context.Context) (Count, error) {
	if err := c.settle(ctx); err != nil {
		return Count{}, err
	}
	last, err := c.lastSeq(ctx)
	if err != nil {
		return Count{}, err
	}
	return Count{Stored: last - c.mark.Stored, Published: c.published.Load() - c.mark.Published}, nil
}

// settle waits until the handler has seen every message the server
// routed to the subscription so far: a round trip to the server (what it
// routed before its answer arrives before it), then until the handler
// has run for every message the subscription received.
func (c *Counter) settle(ctx context.Context) error {
	if c.sub == nil {
		return nil
	}
	if err := flush(ctx, c.nc); err != nil {
		return err
	}
	for {
		delivered, err := c.sub.Delivered()
		if err != nil {
			return fmt.Errorf("appends: %w", err)
		}
		pending, _, err := c.sub.Pending()
		if err != nil {
			return fmt.Errorf("appends: %w", err)
		}
		if pending == 0 && c.seen.Load() == delivered {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}

// flushTimeout bounds a round trip to the server.
const flushTimeout = 10 * time.Second

// flush makes a round trip to the server, which nats.go needs bounded.
func flush(ctx context.Context, nc *nats.Conn) error {
	ctx, cancel := context.WithTimeout(ctx, flushTimeout)
	defer cancel()
	if err := nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("appends: %w", err)
	}
	return nil
}

// lastSeq is the stream's last sequence, 0 before the stream exists.
func (c *Counter) lastSeq(ctx context.Context) (int64, error) {
	s, err := c.js.Stream(ctx, stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("appends: stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("appends: stream %s: %w", stream, err)
	}
	return int64(info.State.LastSeq), nil
}
