package tcpproxy_test

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/tcpproxy"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// quiet is how long a check that nothing arrives waits. It can only make
// such a check pass wrongly, never fail wrongly.
const quiet = 200 * time.Millisecond

// target is a TCP server whose connections the test handles itself.
type target struct {
	addr  string
	conns chan net.Conn
}

func newTarget(t *testing.T) *target {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	tg := &target{addr: lis.Addr().String(), conns: make(chan net.Conn, 16)}
	var wg sync.WaitGroup
	wg.Add(1)
	// Owner: the test. Exit: Accept fails once Cleanup closes the listener.
	go func() {
		defer wg.Done()
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			tg.conns <- c
		}
	}()
	t.Cleanup(func() {
		lis.Close()
		wg.Wait()
		close(tg.conns)
		for c := range tg.conns {
			c.Close()
		}
	})
	return tg
}

// accepted is the target's side of the next connection.
func (tg *target) accepted(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-tg.conns:
		t.Cleanup(func() { c.Close() })
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection reached the target")
		return nil
	}
}

func start(t *testing.T, tg *target) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.Listen(tg.addr)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func dial(t *testing.T, p *tcpproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", p.Addr())
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// connect is a client connection through p and the target's side of it,
// shown to carry both ways.
func connect(t *testing.T, p *tcpproxy.Proxy, tg *target) (client, server net.Conn) {
	t.Helper()
	client = dial(t, p)
	server = tg.accepted(t)
	exchange(t, client, server, "ping")
	exchange(t, server, client, "pong")
	return client, server
}

// exchange writes msg on from and reads it whole on to.
func exchange(t *testing.T, from, to net.Conn, msg string) {
	t.Helper()
	_, err := from.Write([]byte(msg))
	require.NoError(t, err)
	require.Equal(t, msg, read(t, to, len(msg)))
}

func read(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	buf := make([]byte, n)
	_, err := io.ReadFull(c, buf)
	require.NoError(t, err)
	return string(buf)
}

// closedRead asserts that c has been closed by its peer: a read ends
// with EOF or a reset, not a timeout.
func closedRead(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
	_, err := c.Read(make([]byte, 1))
	require.Error(t, err)
	assert.False(t, errors.Is(err, os.ErrDeadlineExceeded), "closed, not silent: %v", err)
}

// silentRead asserts that nothing, not even a close, arrives on c for a while.
func silentRead(t *testing.T, c net.Conn) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(quiet)))
	n, err := c.Read(make([]byte, 64))
	assert.Zero(t, n)
	assert.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestForwardsBothWays(t *testing.T) {
	tg := newTarget(t)
	p := start(t, tg)
	client, server := connect(t, p, tg)
	exchange(t, client, server, "more")
	// A close by one end reaches the other.
	require.NoError(t, client.Close())
	closedRead(t, server)
}

// Cut closes both ends of every carried connection; new ones go through.
func TestCut(t *testing.T) {
	tg := newTarget(t)
	p := start(t, tg)
	c1, s1 := connect(t, p, tg)
	c2, s2 := connect(t, p, tg)
	p.Cut()
	for _, c := range []net.Conn{c1, s1, c2, s2} {
		closedRead(t, c)
	}
	connect(t, p, tg)
}

// A refusing proxy closes new connections without reaching the target and
// leaves carried ones alone.
func TestRefusing(t *testing.T) {
	tg := newTarget(t)
	p := start(t, tg)
	client, server := connect(t, p, tg)
	p.SetRefusing(true)
	closedRead(t, dial(t, p))
	exchange(t, client, server, "still carried")
	select {
	case <-tg.conns:
		t.Fatal("a refused connection reached the target")
	default:
	}
	p.SetRefusing(false)
	connect(t, p, tg)
}

// A frozen proxy carries no data either way; thawed, it delivers what
// it held.
func TestFreezeHoldsData(t *testing.T) {
	tg := newTarget(t)
	p := start(t, tg)
	client, server := connect(t, p, tg)
	p.Freeze()
	_, err := client.Write([]byte("up"))
	require.NoError(t, err)
	_, err = server.Write([]byte("down"))
	require.NoError(t, err)
	silentRead(t, server)
	silentRead(t, client)
	p.Thaw()
	assert.Equal(t, "up", read(t, server, 2))
	assert.Equal(t, "down", read(t, client, 4))
	exchange(t, client, server, "after")
}

// A frozen proxy passes on no close: the other end sees nothing until the
// thaw, as with a peer that vanished.
func TestFreezeHoldsClose(t *testing.T) {
	tg := newTarget(t)
	p := start(t, tg)
	client, server := connect(t, p, tg)
	p.Freeze()
	require.NoError(t, server.Close())
	silentRead(t, client)
	p.Thaw()
	closedRead(t, client)
}

// Close ends a frozen proxy's connections and goroutines (goleak checks
// the latter for the package).
func TestCloseWhileFrozen(t *testing.T) {
	tg := newTarget(t)
	p := start(t, tg)
	client, server := connect(t, p, tg)
	p.Freeze()
	_, err := client.Write([]byte("held"))
	require.NoError(t, err)
	closed := make(chan struct{})
	// Owner: the test. Exit: Close returns.
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close hangs on a frozen proxy")
	}
	closedRead(t, client)
	closedRead(t, server)
}
