package api

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"
)

// Flow control of senders. Each frame a stream's reader receives after
// Open waits for a token before it is acted on and the next one is read:
// one from the stream's own bucket and one from the bucket its user's
// streams on this instance share. While it waits nothing is read, so the
// transport pushes back on the client (an HTTP/2 stream's window fills
// and the client's Send blocks; a WebSocket is not read and the browser
// buffers) and nobody is dropped or cut. A stream whose client sends
// nothing takes no token, however many such streams a user has. The
// buckets bound what one sender puts into every other member's queue: a
// burst well inside MAX_MESSAGE_QUEUE_SIZE, then a steady rate that any
// reader keeping up drains, so one fast sender no longer overflows the
// queues of readers that keep up.

// SendLimit is a message rate with a burst: Burst frames may come back to
// back, then one every 1/Rate seconds. A zero Rate means no limit.
type SendLimit struct {
	Rate  float64 // frames a second
	Burst int     // at least 1 when Rate is set
}

// pacing is a SendLimit as the bucket uses it, in nanoseconds: one token
// every `every`, and up to tolerance of credit beyond the next token.
// every is 0 when there is no limit.
type pacing struct {
	every, tolerance int64
}

func newPacing(l SendLimit) pacing {
	if l.Rate <= 0 {
		return pacing{}
	}
	every := int64(math.Ceil(float64(time.Second) / l.Rate))
	every = max(every, 1)
	return pacing{every: every, tolerance: every * int64(max(l.Burst, 1)-1)}
}

// bucket is a token bucket held as one number, the generic cell rate
// algorithm's theoretical arrival time: when the bucket will be full
// again, in nanoseconds on the server's clock (see flow.clock). A
// single word updated by compare-and-swap costs the hot path no lock and
// no allocation, and the zero value is a full bucket.
type bucket struct{ full atomic.Int64 }

// take takes a token at now and returns how long the caller must wait for
// it: 0 while the burst lasts. The token is the caller's even if it then
// gives up waiting; the next taker waits a token longer, which only slows
// a sender down.
func (b *bucket) take(p pacing, now int64) time.Duration {
	if p.every == 0 {
		return 0
	}
	for {
		old := b.full.Load()
		full := max(old, now)
		if b.full.CompareAndSwap(old, full+p.every) {
			return time.Duration(max(full-p.tolerance-now, 0))
		}
	}
}

// fullIn is how long, from now, the bucket takes to be full again: 0 if
// it is.
func (b *bucket) fullIn(now int64) time.Duration {
	return time.Duration(max(b.full.Load()-now, 0))
}

// flow is the server's pacing of senders.
type flow struct {
	now          func() time.Time
	start        time.Time // the buckets' clock starts here
	stream, user pacing
}

// The bounds of a SendLimit that is set, which keep the buckets'
// arithmetic within int64 nanoseconds.
const (
	minSendRate  = 0.001
	maxSendRate  = 1e9
	maxSendBurst = 1 << 20
)

func newFlow(cfg Config) (flow, error) {
	for _, l := range []SendLimit{cfg.SendLimit, cfg.UserSendLimit} {
		if l.Rate == 0 {
			continue
		}
		if !(l.Rate >= minSendRate && l.Rate <= maxSendRate) || l.Burst < 1 || l.Burst > maxSendBurst {
			return flow{}, fmt.Errorf("api: a send limit's Rate must be 0 (none) or %g-%g, and its Burst 1-%d", minSendRate, maxSendRate, maxSendBurst)
		}
	}
	return flow{now: cfg.Now, start: cfg.Now(), stream: newPacing(cfg.SendLimit), user: newPacing(cfg.UserSendLimit)}, nil
}

// clock is the buckets' clock: monotonic nanoseconds since New.
func (f *flow) clock() int64 { return int64(f.now().Sub(f.start)) }

// off reports whether nothing is paced.
func (f *flow) off() bool { return f.stream.every == 0 && f.user.every == 0 }

// pace waits until the stream and its user may send the frame just
// received. It reports false, having ended the stream, if ctx ends first:
// the client cancelled, or the stream ended for the transport.
func (c *conn) pace(ctx context.Context) bool {
	f := &c.s.flow
	if f.off() {
		return true
	}
	now := f.clock()
	d := max(c.send.take(f.stream, now), c.user.send.take(f.user, now))
	if d <= 0 {
		return true
	}
	c.s.cfg.Metrics.SendsPaced.Inc()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		c.e.end(ctx.Err())
		return false
	}
}
