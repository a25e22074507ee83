package api

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// An authenticated client sends metadata far over MaxHeaderListSize: 16
// connections, each a Chat stream whose header block is 15 MB in HEADERS
// and CONTINUATION frames (what grpc-go's default 16 MiB limit let 16
// streams hold as 261 MB of heap). The server closes each connection
// without starting the stream, and after a forced GC its heap has grown
// by less than 16 MiB while the clients are still connected.
func TestOversizeMetadataIsNotHeld(t *testing.T) {
	const (
		conns     = 16
		blockSize = 15 << 20
		heapBound = 16 << 20
	)
	h := newHarness(t, opts{tcp: true})
	ann := h.userToken("u1", "ann")
	roomTok := h.join(ann, h.room(ann, "room", "pw"), "pw")

	// Each CONTINUATION frame holds two fields of 8,000 bytes ('!' has a
	// long Huffman code, so the value goes as it is); the HEADERS frame
	// the request's fields, the token and one of them.
	var pb bytes.Buffer
	require.NoError(t, hpack.NewEncoder(&pb).WriteField(hpack.HeaderField{Name: "x-pad", Value: strings.Repeat("!", 8000), Sensitive: true}))
	pad := pb.Bytes()
	first := append(headerBlock(chatPath, hpack.HeaderField{Name: "token", Value: roomTok}), pad...)
	cont := append(append([]byte{}, pad...), pad...)
	require.Less(t, len(cont), 16384, "fits the server's frame size")

	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)

	clients := make([]*h2Conn, conns)
	sent := make([]int, conns)
	var wg sync.WaitGroup
	for i := range conns {
		clients[i] = dialH2(t, h.addr)
		wg.Add(1)
		// Owner: the test. Exit: the block is sent or a write fails.
		go func() {
			defer wg.Done()
			c := clients[i]
			id := c.next
			if c.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: first}) != nil {
				return
			}
			n := len(first)
			for n < blockSize {
				last := n+len(cont) >= blockSize
				if c.fr.WriteContinuation(id, last, cont) != nil || c.flush() != nil {
					break
				}
				n += len(cont)
			}
			sent[i] = n
		}()
	}
	wg.Wait()
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	t.Logf("heap growth with %d oversize header blocks sent: %.1f MiB (HeapAlloc %d -> %d); bytes sent per connection %v",
		conns, float64(growth)/(1<<20), before.HeapAlloc, after.HeapAlloc, sent)
	assert.Less(t, growth, int64(heapBound))

	// Every connection was closed without a response to its stream: the
	// frame past the limit is a connection error (PROTOCOL_ERROR), which
	// grpc-go answers by closing the connection.
	for i, c := range clients {
		require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(15*time.Second)))
		for {
			f, err := c.fr.ReadFrame()
			if err != nil {
				assert.False(t, isTimeout(err), "connection %d still open: %v", i, err)
				break
			}
			switch f := f.(type) {
			case *http2.HeadersFrame, *http2.DataFrame:
				t.Errorf("connection %d: the stream got a response: %v", i, f)
			case *http2.GoAwayFrame:
				assert.Equal(t, http2.ErrCodeProtocol, f.ErrCode)
			}
		}
		assert.Less(t, sent[i], blockSize, "connection %d: the server read the whole block", i)
	}
}

// A header list over the limit in a single frame (here through HPACK
// indexing: 3,000 bytes in the table, referred to seven times) gets its
// stream reset with FRAME_SIZE_ERROR; the connection goes on.
func TestOversizeMetadataResetsStream(t *testing.T) {
	h := newHarness(t, opts{tcp: true})
	c := dialH2(t, h.addr)
	var b bytes.Buffer
	b.Write(headerBlock(chatPath))
	enc := hpack.NewEncoder(&b)
	big := hpack.HeaderField{Name: "x-big", Value: strings.Repeat("b", 3000)}
	for range 7 {
		require.NoError(t, enc.WriteField(big)) // indexed after the first
	}
	require.Less(t, b.Len(), 4000)
	id, err := c.open(b.Bytes())
	require.NoError(t, err)
	require.NoError(t, c.fr.WritePing(false, [8]byte{1}))
	require.NoError(t, c.flush())

	require.NoError(t, c.conn.SetReadDeadline(time.Now().Add(10*time.Second)))
	var rst *http2.RSTStreamFrame
	for {
		f, err := c.fr.ReadFrame()
		require.NoError(t, err)
		if r, ok := f.(*http2.RSTStreamFrame); ok {
			rst = r
		}
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			break
		}
		_, isHeaders := f.(*http2.HeadersFrame)
		assert.False(t, isHeaders, "the stream got a response")
	}
	require.NotNil(t, rst, "the stream was reset before the PING was answered")
	assert.Equal(t, id, rst.StreamID)
	assert.Equal(t, http2.ErrCodeFrameSize, rst.ErrCode)

	// The same connection still serves: a PING is answered.
	require.NoError(t, c.fr.WritePing(false, [8]byte{2}))
	require.NoError(t, c.flush())
	for {
		f, err := c.fr.ReadFrame()
		require.NoError(t, err)
		if p, ok := f.(*http2.PingFrame); ok && p.IsAck() {
			assert.Equal(t, [8]byte{2}, p.Data)
			break
		}
	}
}

// isTimeout reports whether err is a deadline passing.
func isTimeout(err error) bool {
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne) && ne.Timeout()
}
