package client_test

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/require"
	"golang.org/x/net/dns/dnsmessage"
	"google.golang.org/grpc"
)

// instance is one chat service instance on a loopback TCP port. Instances
// of a test serve the same fakeChat, so they share its rooms, history and
// epoch as the service's instances share them over NATS JetStream; each
// records the Opens it received itself.
type instance struct {
	addr   string
	srv    *grpc.Server
	served chan struct{}
	once   sync.Once

	mu    sync.Mutex
	opens []fakeOpen
}

// startInstance serves chat on a listener at addr ("127.0.0.1:0" for any
// free port) until stop or the end of the test.
func startInstance(t *testing.T, chat *fakeChat, addr string) *instance {
	t.Helper()
	lis, err := net.Listen("tcp", addr)
	require.NoError(t, err)
	return serveInstance(t, chat, lis)
}

func serveInstance(t *testing.T, chat *fakeChat, lis net.Listener) *instance {
	t.Helper()
	in := &instance{addr: lis.Addr().String(), served: make(chan struct{})}
	in.srv = grpc.NewServer(grpc.StreamInterceptor(in.record(chat)))
	chatv1.RegisterChatServiceServer(in.srv, chat)
	go func() { // ends when stop stops the server
		defer close(in.served)
		_ = in.srv.Serve(lis)
	}()
	t.Cleanup(in.stop)
	return in
}

// stop stops the instance at once, as a crash would: the listener is
// closed, so that new connections are refused, and open streams break.
func (in *instance) stop() {
	in.once.Do(func() {
		in.srv.Stop()
		<-in.served
	})
}

// record notes each stream's Open as this instance receives it.
func (in *instance) record(chat *fakeChat) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		user := ""
		if rt, err := chat.room(ss.Context()); err == nil {
			user = rt.UserName
		}
		return handler(srv, &recordingStream{ServerStream: ss, in: in, user: user})
	}
}

type recordingStream struct {
	grpc.ServerStream
	in   *instance
	user string
}

func (s *recordingStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if req, ok := m.(*chatv1.ChatRequest); ok && err == nil && req.GetOpen() != nil {
		s.in.mu.Lock()
		s.in.opens = append(s.in.opens, fakeOpen{user: s.user, open: req.GetOpen()})
		s.in.mu.Unlock()
	}
	return err
}

// opened returns the Opens of user's streams on this instance, in order.
func (in *instance) opened(user string) []*chatv1.Open {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []*chatv1.Open
	for _, o := range in.opens {
		if o.user == user {
			out = append(out, o.open)
		}
	}
	return out
}

// clientAt returns a Client of the fake auth service and the chat
// instances at addrs, over real TCP, closed at the end of the test.
func (e *env) clientAt(addrs []string, opts ...client.Option) *client.Client {
	e.t.Helper()
	base := []client.Option{
		client.WithAuthURL(e.auth.URL),
		client.WithChatAddress(addrs...),
		client.WithBackoff(client.Backoff{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond}),
	}
	c, err := client.New(append(base, opts...)...)
	require.NoError(e.t, err)
	e.t.Cleanup(func() { _ = c.Close() })
	return c
}

// logIn registers name and logs c in as name.
func logIn(t *testing.T, c *client.Client, name string) {
	t.Helper()
	ctx := testCtx(t)
	_, err := c.CreateAccount(ctx, name, "password-"+name)
	require.NoError(t, err)
	_, err = c.LogIn(ctx, name, "password-"+name)
	require.NoError(t, err)
}

// silentAddr returns the address of a listener that accepts connections
// and never answers, as a hung instance, or a black hole, would.
func silentAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	var mu sync.Mutex
	var conns []net.Conn
	go func() { // ends when the cleanup closes the listener
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = lis.Close()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return lis.Addr().String()
}

// refusedAddr returns a loopback address where nothing listens: connecting
// to it is refused, as to an instance that is down.
func refusedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := lis.Addr().String()
	require.NoError(t, lis.Close())
	return addr
}

// startDNS serves DNS over UDP on loopback until the end of the test: it
// answers A queries for name with addrs, and every other query with no
// records. It returns the server's address.
func startDNS(t *testing.T, name string, addrs ...netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	require.NoError(t, err)
	done := make(chan struct{})
	go func() { // ends when the cleanup closes pc
		defer close(done)
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if resp, err := dnsAnswer(buf[:n], name, addrs); err == nil {
				_, _ = pc.WriteTo(resp, from)
			}
		}
	}()
	t.Cleanup(func() {
		_ = pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

func dnsAnswer(query []byte, name string, addrs []netip.Addr) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true,
		RecursionDesired: h.RecursionDesired, RecursionAvailable: true})
	if err := b.StartQuestions(); err != nil {
		return nil, err
	}
	if err := b.Question(q); err != nil {
		return nil, err
	}
	if err := b.StartAnswers(); err != nil {
		return nil, err
	}
	if q.Type == dnsmessage.TypeA && strings.EqualFold(q.Name.String(), name) {
		for _, a := range addrs {
			rh := dnsmessage.ResourceHeader{Name: q.Name, Type: dnsmessage.TypeA, Class: dnsmessage.ClassINET, TTL: 1}
			if err := b.AResource(rh, dnsmessage.AResource{A: a.As4()}); err != nil {
				return nil, err
			}
		}
	}
	return b.Finish()
}

// instancesOnOnePort starts two instances on one port, at 127.0.0.1 and
// 127.0.0.2, as a DNS name's records would point at. It skips the test
// where 127.0.0.2 is not a loopback address (macOS without an alias).
func instancesOnOnePort(t *testing.T, chat *fakeChat) (a, b *instance, port string) {
	t.Helper()
	for range 10 {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		_, port, _ = net.SplitHostPort(first.Addr().String())
		second, err := net.Listen("tcp", net.JoinHostPort("127.0.0.2", port))
		if err != nil {
			_ = first.Close()
			if probe, perr := net.Listen("tcp", "127.0.0.2:0"); perr != nil {
				t.Skipf("127.0.0.2 is not a loopback address here: %v", perr)
			} else {
				_ = probe.Close()
			}
			continue // the port is taken at 127.0.0.2: try another
		}
		return serveInstance(t, chat, first), serveInstance(t, chat, second), port
	}
	t.Fatal("found no port free at both 127.0.0.1 and 127.0.0.2")
	return nil, nil, ""
}

// streamOn returns the instance among ins that user's stream opened on,
// and the others.
func streamOn(t *testing.T, user string, ins ...*instance) (on *instance, others []*instance) {
	t.Helper()
	for _, in := range ins {
		if len(in.opened(user)) > 0 {
			require.Nil(t, on, "%s opened streams on two instances", user)
			on = in
		} else {
			others = append(others, in)
		}
	}
	require.NotNil(t, on, "%s opened no stream", user)
	return on, others
}

// waitConnected waits for c's stream to be open again after a break.
func waitConnected(t *testing.T, c *client.Client) {
	t.Helper()
	for next[*client.Connection](t, c).State != client.Connected {
	}
}

// joinWithin joins the room within d.
func joinWithin(t *testing.T, c *client.Client, code string, d time.Duration) (time.Duration, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	start := time.Now()
	_, err := c.JoinChatRoom(ctx, code, "room-pw")
	return time.Since(start), err
}
