package h2guard

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"golang.org/x/net/http2"
	"google.golang.org/grpc/credentials/insecure"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A frame sequence cut into pieces of every size yields the same headers,
// and boundaries exactly between frames.
func TestFramesInPieces(t *testing.T) {
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, nil)
	type want struct {
		typ http2.FrameType
		id  uint32
	}
	var wants []want
	var ends []int // offsets where frames end
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		id := uint32(2*i + 1)
		switch i % 4 {
		case 0:
			require.NoError(t, fr.WriteData(id, false, make([]byte, rng.IntN(20000)%16385)))
			wants = append(wants, want{http2.FrameData, id})
		case 1:
			require.NoError(t, fr.WriteRSTStream(id, http2.ErrCodeCancel))
			wants = append(wants, want{http2.FrameRSTStream, id})
		case 2:
			require.NoError(t, fr.WriteSettings()) // an empty payload
			wants = append(wants, want{http2.FrameSettings, 0})
		case 3:
			require.NoError(t, fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x82}, EndHeaders: true}))
			wants = append(wants, want{http2.FrameHeaders, id})
		}
		ends = append(ends, wire.Len())
	}
	for _, maxPiece := range []int{1, 2, 8, 9, 10, 100, 16393, 1 << 20} {
		var f frames
		var got []want
		var boundaries []int
		b := wire.Bytes()
		off := 0
		for off < len(b) {
			n := min(len(b)-off, 1+rng.IntN(maxPiece))
			p := b[off : off+n]
			for len(p) > 0 {
				k, h := f.advance(p)
				p = p[k:]
				if h != nil {
					got = append(got, want{http2.FrameType(h[3]), streamID(h)})
				}
				if f.atBoundary() {
					boundaries = append(boundaries, off+n-len(p))
				}
			}
			off += n
		}
		assert.Equal(t, wants, got, "pieces up to %d", maxPiece)
		// Every frame end is a boundary, and nothing else is (zero-length
		// frames report theirs right after their header).
		assert.Subset(t, boundaries, ends, "pieces up to %d", maxPiece)
		for _, at := range boundaries {
			assert.Contains(t, ends, at, "pieces up to %d", maxPiece)
		}
	}
}

// toBoundary stops exactly at the end of the current frame.
func TestToBoundary(t *testing.T) {
	var wire bytes.Buffer
	fr := http2.NewFramer(&wire, nil)
	require.NoError(t, fr.WriteData(1, false, make([]byte, 1000)))
	first := wire.Len()
	require.NoError(t, fr.WriteData(1, false, make([]byte, 1000)))
	b := wire.Bytes()

	var f frames
	assert.Zero(t, f.toBoundary(b), "at a boundary already")
	k, h := f.advance(b[:5]) // inside the first header
	require.Equal(t, 5, k)
	require.Nil(t, h)
	assert.Equal(t, 100, f.toBoundary(b[5:105]), "the frame goes on")
	assert.Equal(t, first-105, f.toBoundary(b[105:]))
	assert.True(t, f.atBoundary())
}

// pair returns a guarded server connection and its client, over loopback
// TCP, with the client's preface already sent.
func pair(t *testing.T, cfg Config) (*Conn, net.Conn) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer lis.Close()
	client, err := net.Dial("tcp", lis.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { _ = client.Close() })
	raw, err := lis.Accept()
	require.NoError(t, err)
	server := Wrap(raw, cfg)
	t.Cleanup(func() { _ = server.closeNow() })
	_, err = client.Write([]byte(http2.ClientPreface))
	require.NoError(t, err)
	return server, client
}

// serverReads reads the server side until it fails, as an HTTP/2
// server's reader does, and returns the error.
func serverReads(c *Conn) <-chan error {
	errc := make(chan error, 1)
	// Owner: the test. Exit: Read fails (refusal, close).
	go func() {
		_, err := io.Copy(io.Discard, c)
		errc <- err
	}()
	return errc
}

// flood opens and resets streams until the connection fails, and returns
// the highest stream ID opened.
func flood(t *testing.T, c net.Conn, n int) uint32 {
	fr := http2.NewFramer(c, nil)
	var id uint32
	for i := range n {
		id = uint32(2*i + 1)
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: []byte{0x83}, EndHeaders: true}) != nil ||
			fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
	}
	return id
}

// readGoAway reads frames until a GOAWAY and then the end of the stream.
func readGoAway(t *testing.T, c net.Conn) (*http2.GoAwayFrame, []http2.Frame) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	fr := http2.NewFramer(nil, c)
	var before []http2.Frame
	for {
		f, err := fr.ReadFrame()
		require.NoError(t, err, "frames before the GOAWAY parse")
		if ga, ok := f.(*http2.GoAwayFrame); ok {
			_, err := fr.ReadFrame()
			assert.ErrorIs(t, err, io.EOF, "the GOAWAY is the last frame")
			return ga, before
		}
		if d, ok := f.(*http2.DataFrame); ok {
			before = append(before, &http2.DataFrame{FrameHeader: d.FrameHeader})
		}
	}
}

// A client that resets streams without pause gets GOAWAY
// (ENHANCE_YOUR_CALM, "too_many_resets") naming the last stream it
// opened once the burst is spent; the reader fails with ErrTooManyResets.
func TestRapidResetGetsGoAway(t *testing.T) {
	var resets, refused atomic.Int64
	var lastID atomic.Uint32
	server, client := pair(t, Config{Burst: 20, Rate: 1,
		Reset:   func(byClient bool) { assert.True(t, byClient); resets.Add(1) },
		Refused: func(_ net.Addr, id uint32) { refused.Add(1); lastID.Store(id) },
	})
	errc := serverReads(server)
	// Owner: the test. Exit: after 1000 pairs or a failed write.
	go flood(t, client, 1000)

	ga, _ := readGoAway(t, client)
	assert.Equal(t, http2.ErrCodeEnhanceYourCalm, ga.ErrCode)
	assert.Equal(t, goAwayDebug, string(ga.DebugData()))
	assert.ErrorIs(t, <-errc, ErrTooManyResets)
	assert.Equal(t, int64(1), refused.Load())
	assert.Equal(t, lastID.Load(), ga.LastStreamID)
	// The reset that overflowed the bucket is the 21st (one token may
	// have come back meanwhile); its stream was opened just before.
	assert.GreaterOrEqual(t, resets.Load(), int64(21))
	assert.LessOrEqual(t, resets.Load(), int64(23))
	assert.GreaterOrEqual(t, ga.LastStreamID, uint32(41))
	assert.LessOrEqual(t, ga.LastStreamID, uint32(45))
}

// Resets within the budget, the burst at once and then at the refill
// rate, never get a GOAWAY.
func TestResetsWithinBudget(t *testing.T) {
	server, client := pair(t, Config{Burst: 10, Rate: 100})
	errc := serverReads(server)
	fr := http2.NewFramer(client, nil)
	id := uint32(1)
	for round := range 5 {
		n := 10
		if round > 0 {
			n = 5 // 5 tokens come back within 50 ms; 100 ms leave a margin
			time.Sleep(100 * time.Millisecond)
		}
		for range n {
			require.NoError(t, fr.WriteRSTStream(id, http2.ErrCodeCancel))
			id += 2
		}
	}
	time.Sleep(50 * time.Millisecond)
	assert.False(t, server.refused.Load())
	require.NoError(t, client.Close())
	assert.NoError(t, <-errc) // io.Copy: EOF
}

// The GOAWAY never lands inside a frame: a refusal while the server has
// written half a frame waits for the rest, then follows it.
func TestGoAwayAfterTheFrameInProgress(t *testing.T) {
	server, client := pair(t, Config{Burst: 5, Rate: 1})
	var frame bytes.Buffer
	require.NoError(t, http2.NewFramer(&frame, nil).WriteData(1, false, bytes.Repeat([]byte("x"), 16384)))
	_, err := server.Write(frame.Bytes()[:5000])
	require.NoError(t, err)

	errc := serverReads(server)
	flood(t, client, 50)
	require.Eventually(t, server.refused.Load, 5*time.Second, time.Millisecond)
	select {
	case err := <-errc:
		t.Fatalf("Read returned before the GOAWAY was written: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	n, err := server.Write(frame.Bytes()[5000:])
	assert.ErrorIs(t, err, ErrTooManyResets)
	assert.Equal(t, frame.Len()-5000, n)
	assert.ErrorIs(t, <-errc, ErrTooManyResets)
	_, err = server.Write([]byte("more"))
	assert.ErrorIs(t, err, ErrTooManyResets, "nothing follows the GOAWAY")

	ga, data := readGoAway(t, client)
	assert.Equal(t, http2.ErrCodeEnhanceYourCalm, ga.ErrCode)
	require.Len(t, data, 1)
	assert.Equal(t, uint32(16384), data[0].Header().Length)
}

// A server that never finishes its frame gets no GOAWAY in; the
// connection closes after Grace anyway.
func TestRefusedConnectionClosesWithinGrace(t *testing.T) {
	server, client := pair(t, Config{Burst: 5, Rate: 1})
	_, err := server.Write([]byte{0, 0x40, 0, byte(http2.FrameData), 0, 0, 0, 0, 1}) // a header, no payload yet
	require.NoError(t, err)
	errc := serverReads(server)
	start := time.Now()
	flood(t, client, 50)
	assert.ErrorIs(t, <-errc, ErrTooManyResets)
	assert.NoError(t, server.Close(), "Close leaves it to the timer")
	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err = io.Copy(io.Discard, client)
	var ne net.Error
	assert.False(t, errors.As(err, &ne) && ne.Timeout(), "the connection closed: %v", err)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// The gRPC credentials guard the connection their inner handshake returns.
func TestCredentials(t *testing.T) {
	c := Credentials(insecure.NewCredentials(), Config{})
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	conn, info, err := c.ServerHandshake(a)
	require.NoError(t, err)
	assert.IsType(t, &Conn{}, conn)
	assert.Equal(t, "insecure", info.AuthType())
	assert.Equal(t, c.Info(), c.Clone().Info())
	assert.IsType(t, &creds{}, c.Clone())
}

// The server's own resets count too: the write that holds the reset too
// many ends with it, then the GOAWAY; the reader fails from then on.
func TestServerResetsCount(t *testing.T) {
	var byServer, refused atomic.Int64
	server, client := pair(t, Config{Burst: 5, Rate: 1,
		Reset:   func(byClient bool) { assert.False(t, byClient); byServer.Add(1) },
		Refused: func(net.Addr, uint32) { refused.Add(1) },
	})
	var out bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	for id := uint32(1); id < 20; id += 2 {
		require.NoError(t, fr.WriteRSTStream(id, http2.ErrCodeNo))
	}
	n, err := server.Write(out.Bytes())
	assert.ErrorIs(t, err, ErrTooManyResets)
	assert.Equal(t, 6*13, n, "up to and including the sixth reset")
	assert.Equal(t, int64(6), byServer.Load())
	assert.Equal(t, int64(1), refused.Load())
	_, err = server.Read(make([]byte, 10))
	assert.ErrorIs(t, err, ErrTooManyResets)

	require.NoError(t, client.SetReadDeadline(time.Now().Add(10*time.Second)))
	cfr := http2.NewFramer(nil, client)
	for range 6 {
		f, err := cfr.ReadFrame()
		require.NoError(t, err)
		require.IsType(t, &http2.RSTStreamFrame{}, f)
	}
	f, err := cfr.ReadFrame()
	require.NoError(t, err)
	require.IsType(t, &http2.GoAwayFrame{}, f)
	assert.Equal(t, http2.ErrCodeEnhanceYourCalm, f.(*http2.GoAwayFrame).ErrCode)
}
