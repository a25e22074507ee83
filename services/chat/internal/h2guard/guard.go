// Package h2guard defends an HTTP/2 server against clients that reset
// streams faster than any legitimate client does (the "rapid reset"
// attack, CVE-2023-44487): each stream a client opens costs the server a
// handler start, while the client pays two small frames and never waits
// for an answer.
//
// It works on the connection's bytes, below the HTTP/2 implementation and
// without reaching into it: Wrap returns a net.Conn that reads the frame
// headers on their way in and out, counts the RST_STREAM frames against
// a token bucket and, once the bucket is empty, sends GOAWAY
// (ENHANCE_YOUR_CALM, debug data "too_many_resets") and closes the
// connection. The server's own frames are written whole: the wrapper
// tracks their boundaries, so the GOAWAY is never written inside another
// frame.
//
// Resets count whichever side sends them. The client's are the classic
// attack. The server's come from streams it ends before the client has
// finished sending, which a client can cause as cheaply: a client that
// opens Chat streams without a token and never resets one gets each
// refused at once, the stream reset by the server, and its slot free for
// the next (11,500 handler runs a second from one connection, measured).
// A legitimate client sees either when a stream ends early, a few times
// a minute.
package h2guard

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
)

// The reset budget of a connection: a bucket of DefaultBurst resets,
// refilled at DefaultRate a second.
//
// DefaultBurst is above the 128 concurrent streams the chat server allows
// on a connection, so a client that cancels every stream it has at once
// (a CLI exiting, a page leaving all its rooms) stays within it.
// DefaultRate is far above what an interactive client cancels in a
// second (a stream per room switch, a call per timeout), and bounds an
// attacker to 50 stream starts a second per connection after the burst,
// against the ~74,000 a second one connection achieved without it. A
// client that wants more must open new connections, each costing it a
// TCP and an HTTP/2 handshake for at most DefaultBurst more resets.
const (
	DefaultBurst = 200
	DefaultRate  = 50.0
)

// Grace bounds how long a refused connection takes to close. The GOAWAY
// waits for the server to finish the frame it is writing, and the
// connection, once the GOAWAY is written and the write side shut, stays
// open this long so that the client reads the GOAWAY before a close with
// unread input makes the kernel reset the connection, which may discard
// it. A client that reads nothing cannot hold the connection longer.
const Grace = time.Second

// ErrTooManyResets is what the wrapped connection's Read and Write return
// once it has refused its client.
var ErrTooManyResets = errors.New("h2guard: client reset too many streams")

// goAwayDebug is the GOAWAY's debug data, as other servers send it.
const goAwayDebug = "too_many_resets"

// Config sets a connection's reset budget and how it reports.
type Config struct {
	// Burst and Rate size the token bucket (see DefaultBurst); zero
	// means the default.
	Burst int
	Rate  float64
	// Reset, if set, is called for every RST_STREAM frame, with whether
	// the client sent it (or the server), from the goroutine reading or
	// writing the connection. It must not block.
	Reset func(byClient bool)
	// Refused, if set, is called once per connection refused for
	// resetting too many streams, with the client's address and the
	// highest stream ID it had opened. It must not block.
	Refused func(remote net.Addr, lastStreamID uint32)
}

func (c Config) withDefaults() Config {
	if c.Burst <= 0 {
		c.Burst = DefaultBurst
	}
	if c.Rate <= 0 {
		c.Rate = DefaultRate
	}
	return c
}

// Conn is a server's HTTP/2 connection, guarded. Read must be called
// from one goroutine at a time (an HTTP/2 server has one reader per
// connection); Write may be called from any.
type Conn struct {
	net.Conn
	cfg Config

	// The read side, owned by Read's caller.
	in    frames
	maxID atomic.Uint32 // highest stream ID the client opened (HEADERS)

	// The reset budget, spent by Read and Write alike.
	bmu    sync.Mutex
	tokens float64
	last   time.Time

	// refused is set once the budget is spent; the GOAWAY follows at the
	// next frame boundary of the output.
	refused atomic.Bool

	// The write side. wmu serializes writes so that frame boundaries can
	// be tracked and the GOAWAY placed between frames; holding it during
	// a write is the point. A write blocked on a client that does not
	// read holds it until the close after Grace fails that write.
	wmu  sync.Mutex
	out  frames
	sent bool          // the GOAWAY has been written
	done chan struct{} // closed when the GOAWAY has been written

	closeOnce sync.Once
	closed    chan struct{}
	closeErr  error
}

// Wrap guards c, the server side of an HTTP/2 connection from its first
// byte: the client's connection preface comes first in what it reads.
func Wrap(c net.Conn, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	return &Conn{
		Conn: c, cfg: cfg,
		in:     frames{skip: len(http2.ClientPreface)},
		tokens: float64(cfg.Burst), last: time.Now(),
		done: make(chan struct{}), closed: make(chan struct{}),
	}
}

// Read reads from the connection, counting the client's stream resets.
// Once the budget is spent, it returns ErrTooManyResets: if a reset it
// read spent it, instead of the bytes that held that reset, after the
// GOAWAY has been written or Grace has passed.
func (c *Conn) Read(p []byte) (int, error) {
	if c.refused.Load() {
		return 0, ErrTooManyResets
	}
	n, err := c.Conn.Read(p)
	if n > 0 && c.scanIn(p[:n]) {
		c.refuse()
		return 0, ErrTooManyResets
	}
	return n, err
}

// scanIn reads the frame headers in p, and reports whether a reset
// exceeded the budget.
func (c *Conn) scanIn(p []byte) bool {
	for len(p) > 0 {
		k, h := c.in.advance(p)
		p = p[k:]
		if h == nil {
			continue
		}
		switch http2.FrameType(h[3]) {
		case http2.FrameHeaders:
			if id := streamID(h); id > c.maxID.Load() {
				c.maxID.Store(id)
			}
		case http2.FrameRSTStream:
			if ok, first := c.allowReset(true); !ok {
				if first {
					c.report()
				}
				return true
			}
		}
	}
	return false
}

// scanOut reads the frame headers in p, which the server is about to
// write, and returns len(p), or, if a reset spent the budget, how much of
// p comes before that reset's payload, and whether that started the
// refusal.
func (c *Conn) scanOut(p []byte) (int, bool) {
	for i := 0; i < len(p); {
		k, h := c.out.advance(p[i:])
		i += k
		if h != nil && http2.FrameType(h[3]) == http2.FrameRSTStream {
			if ok, first := c.allowReset(false); !ok {
				return i, first
			}
		}
	}
	return len(p), false
}

// allowReset counts a reset and takes a token from the bucket for it.
// When there is none, it reports false, and first if this call refused
// the connection: it set refused and the timer that closes it.
func (c *Conn) allowReset(byClient bool) (ok, first bool) {
	if c.cfg.Reset != nil {
		c.cfg.Reset(byClient)
	}
	c.bmu.Lock()
	now := time.Now()
	c.tokens = min(float64(c.cfg.Burst), c.tokens+now.Sub(c.last).Seconds()*c.cfg.Rate)
	c.last = now
	ok = c.tokens >= 1
	if ok {
		c.tokens--
	}
	c.bmu.Unlock()
	if !ok && c.refused.CompareAndSwap(false, true) {
		// Owner: the connection. Exit: fires once after Grace, or never
		// fires if the connection closed first (closeNow is idempotent).
		// Once refused, a close is due: Close leaves it to this timer.
		time.AfterFunc(Grace, func() { _ = c.closeNow() })
		return false, true
	}
	return ok, false
}

// report tells the Refused hook, outside any lock.
func (c *Conn) report() {
	if c.cfg.Refused != nil {
		c.cfg.Refused(c.RemoteAddr(), c.maxID.Load())
	}
}

// refuse sends the GOAWAY, now if the output is between frames, or else
// through the Write that finishes the current frame, and waits until it
// is written or Grace has passed. The connection closes Grace after the
// refusal whatever happens: that also bounds the wait for wmu while a
// write is blocked on a client that does not read.
func (c *Conn) refuse() {
	c.wmu.Lock()
	if c.out.atBoundary() {
		c.goAwayLocked()
	}
	c.wmu.Unlock()
	select {
	case <-c.done:
	case <-c.closed:
	}
}

// Write writes p, keeping track of where the server's frames begin and
// end, and counting the server's stream resets. Once the budget is spent,
// it writes up to the end of the current frame, then the GOAWAY, and
// fails with ErrTooManyResets.
func (c *Conn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	n, first, err := c.writeLocked(p)
	c.wmu.Unlock()
	if first {
		c.report()
	}
	return n, err
}

// writeLocked is Write under wmu; first reports that a reset in p
// refused the connection.
func (c *Conn) writeLocked(p []byte) (n int, first bool, err error) {
	if c.sent {
		return 0, false, ErrTooManyResets
	}
	k := 0
	if !c.refused.Load() {
		// The frames are scanned before they are written: a write that
		// fails part way ends the connection, and with it the need to
		// know where the frames were.
		if k, first = c.scanOut(p); k == len(p) && !c.refused.Load() {
			n, err = c.Conn.Write(p)
			return n, false, err
		}
	}
	k += c.out.toBoundary(p[k:])
	if k > 0 {
		if n, err = c.Conn.Write(p[:k]); err != nil {
			return n, first, err
		}
	}
	if !c.out.atBoundary() {
		return n, first, nil // the frame goes on in the next Write
	}
	c.goAwayLocked()
	return n, first, ErrTooManyResets
}

// goAwayLocked writes the GOAWAY and shuts the write side, so that the
// client reads it followed by the end of the stream. The caller holds wmu
// and the output is at a frame boundary.
func (c *Conn) goAwayLocked() {
	if c.sent {
		return
	}
	c.sent = true
	defer close(c.done)
	_ = c.Conn.SetWriteDeadline(time.Now().Add(Grace))
	if _, err := c.Conn.Write(goAwayFrame(c.maxID.Load())); err != nil {
		return
	}
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// Close closes the connection, except one refused for too many resets:
// that one closes Grace after the refusal, so that the GOAWAY has time to
// arrive.
func (c *Conn) Close() error {
	if c.refused.Load() {
		return nil
	}
	return c.closeNow()
}

func (c *Conn) closeNow() error {
	c.closeOnce.Do(func() {
		c.closeErr = c.Conn.Close()
		close(c.closed)
	})
	return c.closeErr
}

// goAwayFrame encodes a GOAWAY frame with ENHANCE_YOUR_CALM.
func goAwayFrame(lastStreamID uint32) []byte {
	b := make([]byte, headerLen+8+len(goAwayDebug))
	putLength(b, 8+len(goAwayDebug))
	b[3] = byte(http2.FrameGoAway)
	// flags 0, stream 0
	binary.BigEndian.PutUint32(b[9:], lastStreamID&(1<<31-1))
	binary.BigEndian.PutUint32(b[13:], uint32(http2.ErrCodeEnhanceYourCalm))
	copy(b[17:], goAwayDebug)
	return b
}
