// Package tcpproxy forwards loopback TCP connections to a target and fails
// them on demand, for tests of what clients and servers do when the network
// fails: every connection cut at once (Cut), a service that cannot be
// reached (SetRefusing), or a peer that vanished without a word (Freeze).
package tcpproxy

import (
	"net"
	"sync"
	"time"
)

// dialTimeout bounds the connection to the target, so that Close never
// waits long on an accept in progress.
const dialTimeout = 10 * time.Second

// Proxy accepts connections on a loopback address of its own and carries
// each to the target, both ways, until one side closes it or the proxy
// cuts it. Its methods are safe for concurrent use.
type Proxy struct {
	target string
	lis    net.Listener
	done   chan struct{} // closed by Close
	wg     sync.WaitGroup

	mu       sync.Mutex
	conns    []net.Conn    // carried since the last Cut
	refusing bool          // close new connections at once
	thawed   chan struct{} // nil unless frozen; closed by Thaw
	closed   bool
}

// Listen starts a proxy to target (host:port) on 127.0.0.1 and a free
// port. The caller must Close it.
func Listen(target string) (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, lis: lis, done: make(chan struct{})}
	p.wg.Add(1)
	// Owner: the Proxy. Exit: Accept fails once Close closes the listener.
	go p.accept()
	return p, nil
}

// Addr is the address clients dial to reach the target through the proxy.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Cut closes every connection the proxy carries, as a network failure
// would; both ends see the connection closed. New connections are carried
// as before.
func (p *Proxy) Cut() {
	p.mu.Lock()
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

// SetRefusing makes the proxy close every new connection as soon as it
// is accepted, as an unreachable service would, or, with false, carry
// new connections again. Connections already carried are left alone.
func (p *Proxy) SetRefusing(refusing bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refusing = refusing
}

// Freeze stops carrying anything, either way, on every connection, and
// closes nothing: to each end the other looks as a peer that vanished (a
// closed laptop lid, a lost mobile network) does, with no FIN, no RST and
// nothing answered. Each direction holds at most the one buffer it had
// read; a close by either end is held too. Thaw carries on.
func (p *Proxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed == nil {
		p.thawed = make(chan struct{})
	}
}

// Thaw undoes Freeze: what was held is delivered, and forwarding goes on.
func (p *Proxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.thawed != nil {
		close(p.thawed)
		p.thawed = nil
	}
}

// Close stops the proxy, closes every connection it carries, frozen or
// not, and returns once all its goroutines have ended.
func (p *Proxy) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.done)
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	p.lis.Close()
	for _, c := range conns {
		c.Close()
	}
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		refusing := p.refusing
		p.mu.Unlock()
		if refusing {
			in.Close()
			continue
		}
		out, err := net.DialTimeout("tcp", p.target, dialTimeout)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		if p.closed { // Close has swept the connections already
			p.mu.Unlock()
			in.Close()
			out.Close()
			return
		}
		p.conns = append(p.conns, in, out)
		p.wg.Add(2)
		p.mu.Unlock()
		// Owner: the Proxy. Exit: a read or write fails, at the latest
		// when Cut or Close closes both connections; a frozen one waits
		// for Thaw or Close.
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

// pipe copies src to dst until either fails, then closes both, so that
// the end of one side reaches the other.
func (p *Proxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.gate() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	// A frozen proxy passes on no close either.
	if p.gate() {
		dst.Close()
		src.Close()
	}
}

// gate waits while the proxy is frozen; it reports false once the proxy
// is closed.
func (p *Proxy) gate() bool {
	p.mu.Lock()
	thawed := p.thawed
	p.mu.Unlock()
	if thawed == nil {
		return true
	}
	select {
	case <-thawed:
		return true
	case <-p.done:
		return false
	}
}
