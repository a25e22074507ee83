package api

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// chatPath is the Chat stream's method, the one an attacker resets: its
// handler starts as soon as the headers arrive.
const chatPath = "/grpcchatter.chat.v1.ChatService/Chat"

// h2Conn is a raw HTTP/2 client connection, for what grpc-go's client
// refuses to send: metadata over the server's limit, streams reset as
// fast as they are opened. Writes go through a buffer; flush sends them.
type h2Conn struct {
	conn net.Conn
	w    *bufio.Writer
	fr   *http2.Framer // writes to w, reads from conn
	next uint32        // the next stream ID
}

// dialH2 connects to addr and sends the client preface and an empty
// SETTINGS frame. The connection closes when the test ends.
func dialH2(t testing.TB, addr string) *h2Conn {
	t.Helper()
	c, err := tryDialH2(addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.conn.Close() })
	return c
}

// tryDialH2 is dialH2 for goroutines other than the test's; the caller
// closes the connection.
func tryDialH2(addr string) (*h2Conn, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriterSize(conn, 64<<10)
	c := &h2Conn{conn: conn, w: w, fr: http2.NewFramer(w, conn), next: 1}
	c.fr.SetMaxReadFrameSize(1 << 24)
	_, _ = w.WriteString(http2.ClientPreface) // a bufio.Writer fails only on Flush
	_ = c.fr.WriteSettings()
	if err := w.Flush(); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return c, nil
}

// headerBlock encodes a request's headers for path, with extra fields
// after the standard ones. Fields are never indexed, so the block can be
// sent any number of times.
func headerBlock(path string, extra ...hpack.HeaderField) []byte {
	var b bytes.Buffer
	enc := hpack.NewEncoder(&b)
	fields := []hpack.HeaderField{
		{Name: ":method", Value: "POST"}, {Name: ":scheme", Value: "http"},
		{Name: ":path", Value: path}, {Name: ":authority", Value: "chat"},
		{Name: "content-type", Value: "application/grpc"}, {Name: "te", Value: "trailers"},
	}
	for _, f := range append(fields, extra...) {
		f.Sensitive = true
		_ = enc.WriteField(f) // a bytes.Buffer does not fail
	}
	return b.Bytes()
}

// open starts a stream with block (END_HEADERS) and returns its ID.
func (c *h2Conn) open(block []byte) (uint32, error) {
	id := c.next
	c.next += 2
	return id, c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndHeaders: true})
}

// reset sends RST_STREAM(CANCEL) for id.
func (c *h2Conn) reset(id uint32) error { return c.fr.WriteRSTStream(id, http2.ErrCodeCancel) }

func (c *h2Conn) flush() error { return c.w.Flush() }

// rapidReset opens and resets streams, flushing every 32, until a write
// fails or stop is closed, and returns how many it reset.
func (c *h2Conn) rapidReset(block []byte, stop <-chan struct{}) int {
	for n := 0; ; n++ {
		if n%32 == 0 {
			select {
			case <-stop:
				return n
			default:
			}
			if c.flush() != nil {
				return n
			}
		}
		id, err := c.open(block)
		if err != nil || c.reset(id) != nil {
			return n
		}
	}
}

// goAway reads frames until the server's GOAWAY, which it returns, or
// until the connection ends (nil). Every frame before it must parse.
func (c *h2Conn) goAway() (*http2.GoAwayFrame, error) {
	if err := c.conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		return nil, err
	}
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return nil, err
		}
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			return ga, nil
		}
	}
}
