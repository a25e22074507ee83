// Package api is the chat service's transports over an Engine: gRPC, and
// for browsers the Chat stream over WebSocket and the unary calls over
// HTTP/JSON. They share authentication, validation, the one status table
// and the stream core (conn, writer), so a browser's stream behaves as a
// gRPC one does.
package api

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/h2guard"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/metrics"
)

// Config holds the server's dependencies and limits.
type Config struct {
	Signer *token.Signer
	Hasher Hasher
	// Limiter counts wrong passwords per user and room; UserLimiter
	// wrong passwords and unknown codes per user, across rooms;
	// RoomLimiter wrong passwords per room, across users but its owner.
	Limiter     Limiter
	UserLimiter Limiter
	RoomLimiter Limiter
	// CreateLimiter paces CreateChatRoom per user.
	CreateLimiter RateLimiter
	Logger        *zap.Logger
	Metrics       *metrics.Metrics

	// MaxMessageBytes bounds a message body.
	MaxMessageBytes int
	// MaxBacklog caps the earlier messages a new stream may ask for in
	// Open: the rooms' history size.
	MaxBacklog int
	// DrainGrace is how long Drain lets a stream write what is queued for
	// it before it ends the stream regardless; 0 means DefaultDrainGrace.
	DrainGrace time.Duration
	// RoomTokenTTL is the lifetime of a room token.
	RoomTokenTTL time.Duration
	// OpenTimeout is how long a Chat stream may take to send Open.
	OpenTimeout time.Duration
	// MaxFrameEvents and MaxFrameBytes cap one ChatResponse frame.
	MaxFrameEvents int
	MaxFrameBytes  int
	// WriterLinger is how long a stream's writer goroutine waits for more
	// events once its queue is empty before it exits (up to twice that
	// after the last event); 0 means the default, negative not at all.
	// A writer lingers only when the events that started it came less
	// than WriterLinger after the previous ones: sparser events would not
	// come within the linger, so waiting would cost CPU for nothing.
	WriterLinger time.Duration
	// SendLimit paces the frames a Chat stream's client sends after Open;
	// UserSendLimit paces those of all a user's streams on this instance
	// together (see sendrate.go). A zero Rate means no limit.
	SendLimit     SendLimit
	UserSendLimit SendLimit
	// WSPingInterval is how often a WebSocket stream is pinged; one that
	// answers no ping within as long again is dropped. 0 means
	// DefaultWSPingInterval.
	WSPingInterval time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// TokenTimer replaces the timer that ends a Chat stream when its room
	// token expires, for tests: it calls expire once at at, unless the
	// function it returns, which releases the timer, is called first.
	// expire does not block.
	TokenTimer func(at time.Time, expire func()) (stop func())
}

// Limiter counts failed attempts per key (throttle.Limiter in one
// instance; one shared by instances holds across them). Its rules, which
// internal/contract checks:
//
//   - Acquire reserves an attempt and returns 0, or returns how long the
//     caller must wait and reserves nothing: once max failures have been
//     settled within the window that began with the first of them, until
//     that window ends; or while failures and attempts still reserved
//     together reach max, briefly, so that parallel guesses get no more
//     than max verifications.
//   - Done settles a reservation: failed counts it as a failure, otherwise
//     it is given back. Reset forgets a key's failures.
//   - Keys are independent.
type Limiter interface {
	Acquire(ctx context.Context, key string, now time.Time) (time.Duration, error)
	Done(ctx context.Context, key string, failed bool, now time.Time) error
	Reset(ctx context.Context, key string) error
}

// RateLimiter paces an action per key (throttle.Rate): Allow takes one
// action and returns 0, or returns how long the caller must wait and
// takes nothing.
type RateLimiter interface {
	Allow(ctx context.Context, key string, now time.Time) (time.Duration, error)
}

// Hasher hashes room passwords and checks them against stored hashes
// (internal/password.Hasher). Verify's stale is ignored: a room's hash is
// kept as it was made, since rewriting the registry on a join is not
// worth it for a room password.
type Hasher interface {
	Hash(ctx context.Context, pw string) (string, error)
	Verify(ctx context.Context, pw, encoded string) (ok, stale bool, err error)
}

// Server implements chatv1.ChatServiceServer.
type Server struct {
	chatv1.UnimplementedChatServiceServer

	cfg    Config
	engine Engine

	streams openStreams  // the Chat streams that Drain ends
	users   userStreams  // the subscribed Chat streams by user
	flow    flow         // the senders' pacing (sendrate.go)
	calls   atomic.Int64 // gRPC handlers running (see Calls)

	// resetLog logs connections refused for resetting too many streams,
	// sampled: each costs its client a connection, but clients may have
	// many.
	resetLog *zap.Logger
}

// New returns a Server over engine.
func New(cfg Config, engine Engine) (*Server, error) {
	if cfg.Signer == nil || cfg.Hasher == nil || cfg.Limiter == nil || cfg.UserLimiter == nil || cfg.RoomLimiter == nil ||
		cfg.CreateLimiter == nil || cfg.Logger == nil || cfg.Metrics == nil {
		return nil, errors.New("api: signer, hasher, limiters, logger and metrics are required")
	}
	if cfg.MaxMessageBytes <= 0 || cfg.RoomTokenTTL <= 0 {
		return nil, errors.New("api: MaxMessageBytes and RoomTokenTTL must be positive")
	}
	if cfg.MaxBacklog < 0 {
		return nil, errors.New("api: MaxBacklog must not be negative")
	}
	if cfg.DrainGrace <= 0 {
		cfg.DrainGrace = DefaultDrainGrace
	}
	if cfg.OpenTimeout <= 0 {
		cfg.OpenTimeout = 10 * time.Second
	}
	if cfg.MaxFrameEvents <= 0 {
		cfg.MaxFrameEvents = 64
	}
	if cfg.MaxFrameBytes <= 0 {
		cfg.MaxFrameBytes = 1 << 20
	}
	if cfg.WriterLinger == 0 {
		cfg.WriterLinger = DefaultWriterLinger
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenTimer == nil {
		now := cfg.Now
		cfg.TokenTimer = func(at time.Time, expire func()) func() {
			t := time.AfterFunc(at.Sub(now()), expire)
			return func() { t.Stop() }
		}
	}
	fl, err := newFlow(cfg)
	if err != nil {
		return nil, err
	}
	resetLog := cfg.Logger.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, resetLogsPerSecond, 0)
	}))
	return &Server{cfg: cfg, engine: engine, resetLog: resetLog, flow: fl}, nil
}

// DefaultDrainGrace is how long a stream may take, once Drain has ended
// it, to take what is queued for it: a client that reads gets a queue's
// worth within milliseconds, and one that does not would otherwise hold
// the shutdown. Its stream ends then; its client resumes from the last
// message it did read.
const DefaultDrainGrace = time.Second

// resetLogsPerSecond bounds the warnings about connections refused for
// resetting too many streams; chat_grpc_reset_floods_total counts them
// all.
const resetLogsPerSecond = 5

// Drain ends every open Chat stream, and every one opened later, with
// Unavailable, so that clients reconnect to another (or the restarted)
// instance and resume. It first waits, until ctx ends, for the messages
// already accepted to reach their rooms' streams, and each stream gets
// what is queued for it (within DrainGrace) before it ends.
func (s *Server) Drain(ctx context.Context) {
	if err := s.engine.Flush(ctx); err != nil {
		s.cfg.Logger.Warn("drain: messages still pending", zap.Error(err))
	}
	s.streams.drain(s.cfg.DrainGrace)
}

// Calls returns how many gRPC calls have a handler running. After Drain,
// every Chat handler returns within DrainGrace; the shutdown waits for
// this to reach zero before it closes the connections that still hold
// frames they cannot send (see the README's "Shutdown").
func (s *Server) Calls() int64 { return s.calls.Load() }

// DefaultWriterLinger keeps a stream's writer through the gaps of a room
// that sends 20 or more messages a second, so that such a room costs no
// goroutine start per message per stream. While a room is busy, each
// lingering writer's timer fires once a period. Against 10 ms, 50 ms made
// a paced fan-out cost 21-27% less CPU per delivery (BenchmarkPacedFanOut,
// 100 and 1000 members), and rooms with 30 ms between messages, whose
// writers now linger, about 8% more.
const DefaultWriterLinger = 50 * time.Millisecond

// Liveness of gRPC connections (see ListenGRPC and the README's
// "Liveness"): a connection silent for KeepaliveTime gets an HTTP/2 PING,
// and one whose PING, or any data, goes unacknowledged for
// KeepaliveTimeout is closed, so a vanished client leaves its rooms
// within their sum. The PING is data to TCP: a lost packet is sent again
// within a fraction of a second, and only six or so losses in a row of
// the same packet exhaust the timeout (grpc-go makes it the socket's
// TCP_USER_TIMEOUT), where one lost kernel keepalive probe would.
const (
	KeepaliveTime    = 10 * time.Second
	KeepaliveTimeout = 10 * time.Second
)

// ListenGRPC listens for the gRPC transport with the kernel's TCP
// keepalive off. Go turns it on by default, probing every 15 s, and grpc-go
// sets TCP_USER_TIMEOUT to KeepaliveTimeout on every connection: a probe
// is not retransmitted before the next interval, so with both one lost
// probe (or its ACK) aborted an idle connection, and thousands of idle
// connections probed in step lost some of theirs together. The HTTP/2
// PINGs above do the kernel probes' job, retransmitted like any data.
func ListenGRPC(ctx context.Context, addr string) (net.Listener, error) {
	lc := net.ListenConfig{KeepAlive: -1}
	return lc.Listen(ctx, "tcp", addr)
}

// MaxHeaderListSize bounds the metadata of one call, as HTTP/2 counts it
// (each field's name and value plus 32 bytes). Our clients send a JWT of
// under 1 KiB, a request ID and a few short keys, under 2 KiB in all;
// 16 KiB leaves room for what proxies and tracing add. grpc-go's default,
// 16 MiB, let one stream hold 15 MB of heap for as long as it stayed open;
// now a connection holds at most MaxConcurrentStreams × 16 KiB of it. A
// header list over the limit gets its stream reset (FRAME_SIZE_ERROR);
// one sent in further CONTINUATION frames past it closes the connection.
const MaxHeaderListSize = 16 << 10

// Flow-control windows for what clients send. Fixed windows turn off
// grpc-go's bandwidth estimation, which can grow a stream's window to
// 16 MiB: a stream whose handler reads nothing for a while (a paused
// sender) holds at most StreamWindow of its client's data, so a
// connection holds at most MaxConcurrentStreams × StreamWindow (8 MiB).
// Chat requests are small: 64 KiB per round trip is still thousands of
// messages a second on a 100 ms path. The connection's window is returned
// as data arrives, not as handlers read it, so it bounds no memory; 1 MiB
// lets 16 streams send at once at their full window.
const (
	StreamWindow = 64 << 10
	ConnWindow   = 1 << 20
)

// MaxConnectionIdle closes (GOAWAY) a connection that has had no call for
// this long: an idle connection still costs two goroutines, buffers and a
// PING every KeepaliveTime. gRPC clients reconnect on their next call.
//
// MaxConnectionAge is deliberately not set: it would end every Chat
// stream on a connection at that age, and each end costs the client a
// resume and the room a leave and a join. Connections move between
// instances when one drains (deploys, scaling).
const MaxConnectionIdle = 5 * time.Minute

// MaxRecvMsgSize is the transport's limit on a request for a service
// whose bodies are at most maxBody bytes: 4×maxBody + 64 KiB.
func MaxRecvMsgSize(maxBody int) int { return 4*maxBody + 64<<10 }

// GRPCServer returns a gRPC server with the chat, health and reflection
// services registered, and the health server to flip on shutdown. extra
// options come after the server's own; a grpc.Creds among them would
// replace the reset guard's, so TLS, if it comes, goes inside it (see
// h2guard.Credentials).
func (s *Server) GRPCServer(extra ...grpc.ServerOption) (*grpc.Server, *health.Server) {
	byClient := s.cfg.Metrics.StreamResets.WithLabelValues("client")
	byServer := s.cfg.Metrics.StreamResets.WithLabelValues("server")
	opts := []grpc.ServerOption{
		// Every connection's frames pass the rapid-reset guard.
		grpc.Creds(h2guard.Credentials(insecure.NewCredentials(), h2guard.Config{
			Reset: func(client bool) {
				if client {
					byClient.Inc()
				} else {
					byServer.Inc()
				}
			},
			Refused: func(remote net.Addr, last uint32) {
				s.cfg.Metrics.ResetFloods.Inc()
				s.resetLog.Warn("connection reset too many streams: sent GOAWAY and closed it",
					zap.Stringer("remote", remote), zap.Uint32("last_stream_id", last))
			},
		})),
		grpc.ForceServerCodecV2(wire.NewCodec()),
		// Well above the largest valid request (a body, a client ID and
		// framing), so that realistic over-size input reaches validation
		// and gets InvalidArgument naming the field, not the transport's
		// ResourceExhausted, which clients read as "resume".
		grpc.MaxRecvMsgSize(MaxRecvMsgSize(s.cfg.MaxMessageBytes)),
		// Streams per connection; each costs goroutines and a queue.
		grpc.MaxConcurrentStreams(128),
		// The HPACK table a client fills in the server's decoder stays at
		// HTTP/2's 4 KiB (grpc.HeaderTableSize unset): one per connection,
		// enough for the token and the few keys a client repeats.
		grpc.MaxHeaderListSize(MaxHeaderListSize),
		grpc.StaticStreamWindowSize(StreamWindow),
		grpc.StaticConnWindowSize(ConnWindow),
		// Small buffers, and a write buffer shared (released) between
		// writes, keep an idle stream's connection cheap.
		grpc.ReadBufferSize(8 << 10),
		grpc.WriteBufferSize(8 << 10),
		grpc.SharedWriteBuffer(true),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: KeepaliveTime, Timeout: KeepaliveTimeout,
			MaxConnectionIdle: MaxConnectionIdle}),
	}
	opts = append(opts, s.interceptors()...)
	gs := grpc.NewServer(append(opts, extra...)...)
	gs.RegisterService(strictDecoding(&chatv1.ChatService_ServiceDesc), s)
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	hs.SetServingStatus(chatv1.ChatService_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	reflection.Register(gs)
	return gs, hs
}
