package api

import (
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/throttle"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const secret = "test-secret-0123456789abcdef-0123456789"

// opts sizes a test server.
type opts struct {
	queue, history, maxBody int
	openTimeout             time.Duration
	tcp                     bool
	dir                     string
	newCode                 func(int) (string, error)
	maxStreams              int
	maxRooms                int
	// expire, if set, fires every stream's room token expiry; realExpiry
	// uses real timers instead. Without either, tokens never expire.
	expire     chan time.Time
	realExpiry bool
	// hasher, if set, wraps the real hasher.
	hasher func(Hasher) Hasher
	// ephemeral keeps history in memory, not in the database.
	ephemeral bool
	// wrap, if set, wraps the engine the server uses.
	wrap func(Engine) Engine
	// logger, if set, replaces the silent logger.
	logger *zap.Logger
	// wsPing paces WebSocket pings; 0 is the default.
	wsPing time.Duration
	// createBurst and createInterval pace CreateChatRoom per user; 0 is
	// 1000 at once, as good as none.
	createBurst    int
	createInterval time.Duration
	// maxMembers is the engine's MaxRoomMembers; presenceWindow and
	// afterFunc its PresenceWindow and AfterFunc.
	maxMembers     int
	presenceWindow time.Duration
	afterFunc      func(time.Duration, func())
	// send and userSend pace senders; the zero value does not.
	send, userSend SendLimit
}

// harness is a real server with a real generated client.
type harness struct {
	t      testing.TB
	addr   string
	signer *token.Signer
	eng    *engine.Engine
	srv    *Server
	gs     *grpc.Server
	conn   *grpc.ClientConn
	client chatv1.ChatServiceClient
	dial   func() *grpc.ClientConn
}

func newHarness(t testing.TB, o opts) *harness {
	t.Helper()
	if o.queue == 0 {
		o.queue = 256
	}
	if o.history == 0 {
		o.history = 100
	}
	if o.maxBody == 0 {
		o.maxBody = 4096
	}
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	signer, err := token.NewSigner(secret, "")
	require.NoError(t, err)
	retain := engine.Retained(o.history, o.queue)
	st, err := sqlstore.Open(context.Background(), sqlstore.Config{DataDir: o.dir, Retain: retain})
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	var history engine.Log = st
	if o.ephemeral {
		history = memstore.NewLog(retain)
	}
	eng, err := engine.New(engine.Config{
		CodeLength: 6, HistorySize: o.history, QueueSize: o.queue, IdleTTL: time.Hour,
		ReuseAfter: time.Hour + token.Leeway + time.Minute, NewCode: o.newCode,
		MaxRoomsPerUser: o.maxRooms, MaxStreamsPerUser: o.maxStreams,
		MaxRoomMembers: o.maxMembers, PresenceWindow: o.presenceWindow, AfterFunc: o.afterFunc,
		Report: func(err error) { t.Logf("engine: %v", err) },
	}, st, history)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		assert.NoError(t, eng.Close(ctx))
	})
	real, err := password.New(password.Params{MemoryKiB: 64, Time: 1, Threads: 1})
	require.NoError(t, err)
	var hasher Hasher = real
	if o.hasher != nil {
		hasher = o.hasher(hasher)
	}
	var served Engine = eng
	if o.wrap != nil {
		served = o.wrap(eng)
	}
	if o.createBurst == 0 {
		o.createBurst = 1000
	}
	if o.createInterval == 0 {
		o.createInterval = time.Second
	}
	logger := zap.NewNop()
	if o.logger != nil {
		logger = o.logger
	}
	srv, err := New(Config{
		Signer: signer, Hasher: hasher,
		Limiter: throttle.New(5, time.Minute), UserLimiter: throttle.New(20, time.Minute), RoomLimiter: throttle.New(50, time.Minute),
		CreateLimiter: throttle.NewRate(o.createBurst, o.createInterval), Logger: logger, Metrics: metrics.New(func() int { return eng.Len(context.Background()) }),
		MaxBacklog:      retain,
		MaxMessageBytes: o.maxBody, RoomTokenTTL: time.Hour, OpenTimeout: o.openTimeout,
		TokenTimer:     tokenTimer(o.expire, o.realExpiry),
		WSPingInterval: o.wsPing,
		SendLimit:      o.send, UserSendLimit: o.userSend,
	}, served)
	require.NoError(t, err)
	gs, _ := srv.GRPCServer()

	var lis net.Listener
	var dialer grpc.DialOption
	target := "passthrough:///bufnet"
	if o.tcp {
		lis, err = ListenGRPC(context.Background(), "127.0.0.1:0")
		require.NoError(t, err)
		target = lis.Addr().String()
		dialer = grpc.WithTransportCredentials(insecure.NewCredentials())
	} else {
		bl := bufconn.Listen(1 << 20)
		lis = bl
		dialer = grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return bl.DialContext(ctx) })
	}
	serving := make(chan struct{})
	// Owner: the test. Exit: Serve returns after Stop in Cleanup.
	go func() { _ = gs.Serve(lis); close(serving) }()

	h := &harness{t: t, addr: lis.Addr().String(), signer: signer, eng: eng, srv: srv, gs: gs}
	h.dial = func() *grpc.ClientConn {
		c, err := grpc.NewClient(target, dialer, grpc.WithTransportCredentials(insecure.NewCredentials()),
			// A fixed window disables BDP growth, so a stalled reader fills
			// its buffers after a predictable amount of data.
			grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	h.conn = h.dial()
	h.client = chatv1.NewChatServiceClient(h.conn)
	t.Cleanup(func() {
		gs.Stop()
		<-serving
	})
	return h
}

// ctx returns a context that carries tok and ends with the test or after d.
func (h *harness) ctx(tok string, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	h.t.Cleanup(cancel)
	if tok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
	}
	return ctx
}

func (h *harness) userToken(id, name string) string {
	tok, _, err := h.signer.IssueUser(id, name, time.Hour)
	require.NoError(h.t, err)
	return tok
}

// room creates a room owned by owner and returns its code.
func (h *harness) room(ownerTok, name, pw string) string {
	res, err := h.client.CreateChatRoom(h.ctx(ownerTok, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: name, Password: pw})
	require.NoError(h.t, err)
	return res.ShortCode
}

// join returns a room token for the user.
func (h *harness) join(userTok, code, pw string) string {
	res, err := h.client.JoinChatRoom(h.ctx(userTok, 5*time.Second), &chatv1.JoinChatRoomRequest{ShortCode: code, Password: pw})
	require.NoError(h.t, err)
	return res.Token
}

// member is a user admitted to a room, with its room token.
func (h *harness) member(code, id, name string) string {
	return h.join(h.userToken(id, name), code, "pw")
}

// stream is a client Chat stream with a buffer of received events.
type stream struct {
	t       testing.TB
	c       chatv1.ChatService_ChatClient
	cancel  context.CancelFunc
	pending []*chatv1.Event
	opened  *chatv1.Opened
}

// open starts a Chat stream with a room token and reads its Opened event.
func (h *harness) open(client chatv1.ChatServiceClient, roomTok string, resume *chatv1.Resume) *stream {
	h.t.Helper()
	return h.openWith(client, roomTok, &chatv1.Open{Resume: resume})
}

// openWith starts a Chat stream with open and reads its Opened event.
func (h *harness) openWith(client chatv1.ChatServiceClient, roomTok string, open *chatv1.Open) *stream {
	h.t.Helper()
	s := h.start(client, roomTok, 20*time.Second)
	require.NoError(h.t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: open}}))
	ev := s.next()
	require.NotNil(h.t, ev.GetOpened(), "first event must be Opened, got %v", ev)
	s.opened = ev.GetOpened()
	return s
}

// start begins a Chat stream without sending anything.
func (h *harness) start(client chatv1.ChatServiceClient, roomTok string, d time.Duration) *stream {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	h.t.Cleanup(cancel)
	if roomTok != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "token", roomTok)
	}
	c, err := client.Chat(ctx)
	require.NoError(h.t, err)
	return &stream{t: h.t, c: c, cancel: cancel}
}

func (s *stream) send(clientID, body string) {
	s.t.Helper()
	require.NoError(s.t, s.c.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{ClientMessageId: clientID, Body: body}}}))
}

// next returns the next event, failing the test if the stream ends.
func (s *stream) next() *chatv1.Event {
	s.t.Helper()
	ev, err := s.recv()
	require.NoError(s.t, err)
	return ev
}

func (s *stream) recv() (*chatv1.Event, error) {
	for len(s.pending) == 0 {
		res, err := s.c.Recv()
		if err != nil {
			return nil, err
		}
		s.pending = res.Events
	}
	ev := s.pending[0]
	s.pending = s.pending[1:]
	return ev, nil
}

// nextMessage skips presence events.
func (s *stream) nextMessage() *chatv1.Message {
	s.t.Helper()
	for {
		ev := s.next()
		if m := ev.GetMessage(); m != nil {
			return m
		}
	}
}

// nextPresence skips messages.
func (s *stream) nextPresence() *chatv1.Presence {
	s.t.Helper()
	for {
		ev := s.next()
		if p := ev.GetPresence(); p != nil {
			return p
		}
	}
}

// end reads until the stream ends and returns its status code.
func (s *stream) end() codes.Code {
	s.t.Helper()
	for {
		if _, err := s.recv(); err != nil {
			if errors.Is(err, io.EOF) {
				return codes.OK
			}
			return status.Code(err)
		}
	}
}

func statusCode(err error) codes.Code { return status.Code(err) }

// newHarnessB is a TCP harness for benchmarks. Senders are paced, at a
// rate no benchmark reaches, so that the pacing's cost is measured
// without its waits.
func newHarnessB(b *testing.B) *harness {
	unreached := SendLimit{Rate: 1e9, Burst: 1}
	return newHarness(b, opts{tcp: true, send: unreached, userSend: unreached})
}

// tokenTimer is a room token timer that fires when the test sends on
// expire, or never if expire is nil.
func tokenTimer(expire chan time.Time, real bool) func(time.Time, func()) func() {
	if real {
		return nil // the server's default
	}
	return func(_ time.Time, f func()) func() {
		if expire == nil {
			return func() {}
		}
		stop := make(chan struct{})
		// Owner: the stream, which calls the stop function when it ends.
		// Exit: the test sends on expire, or the stream ends.
		go func() {
			select {
			case <-expire:
				f()
			case <-stop:
			}
		}()
		return func() { close(stop) }
	}
}
