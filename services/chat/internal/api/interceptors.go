package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
)

// requestIDKey is the metadata key of a call's request ID, in the
// response headers and, if the client sets a valid one, in the request.
const requestIDKey = "x-request-id"

// errPanic is what a handler that panicked returns: the client gets
// Internal, the log the panic and its stack.
var errPanic = errors.New("handler panicked")

// callInfo collects what a handler learns about its caller for the access
// log; the interceptor puts it in the context before calling the handler.
type callInfo struct{ user, requestID string }

type callInfoKey struct{}

func noteUser(ctx context.Context, name string) {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		ci.user = name
	}
}

// interceptors are the server's, outermost first: the access log, status
// mapping and metrics (finish), then panic recovery, so that a panic is
// logged with its stack and answered Internal like any internal error
// while the process keeps running.
func (s *Server) interceptors() []grpc.ServerOption {
	rec := recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
		return s.recovered(ctx, p, debug.Stack())
	})
	return []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(s.unaryInterceptor, recovery.UnaryServerInterceptor(rec)),
		grpc.ChainStreamInterceptor(s.streamInterceptor, recovery.StreamServerInterceptor(rec)),
	}
}

// recovered logs a panic with its stack and returns errPanic.
func (s *Server) recovered(ctx context.Context, p any, stack []byte) error {
	s.cfg.Metrics.Panics.Inc()
	var id string
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		id = ci.requestID
	}
	s.cfg.Logger.Error("panic", zap.String("request_id", id), zap.String("panic", fmt.Sprint(p)), zap.ByteString("stack", stack))
	return errPanic
}

// guard runs f, turning a panic into errPanic (logged with its stack) for
// the goroutines a Chat stream starts, which no interceptor covers.
func (s *Server) guard(ctx context.Context, f func()) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = s.recovered(ctx, p, debug.Stack())
		}
	}()
	f()
	return nil
}

// newCall starts a call's bookkeeping: its request ID, taken from the
// client when it sends a sane one so that both sides log the same, and
// sent back in the response headers.
func newCall(ctx context.Context) (*callInfo, metadata.MD) {
	md, _ := metadata.FromIncomingContext(ctx)
	var id string
	if ids := md.Get(requestIDKey); len(ids) == 1 {
		id = ids[0]
	}
	ci := callWithID(id)
	return ci, metadata.Pairs(requestIDKey, ci.requestID)
}

// callWithID starts a call's bookkeeping with the client's request ID if
// it is sane, or a new one.
func callWithID(id string) *callInfo {
	if validRequestID(id) {
		return &callInfo{requestID: id}
	}
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails
	return &callInfo{requestID: hex.EncodeToString(b[:])}
}

// validRequestID accepts 1 to 64 characters of [A-Za-z0-9._-], so that a
// client's ID cannot forge log fields or grow without bound.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range []byte(id) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return false
		}
	}
	return true
}

// unaryInterceptor maps handler errors to statuses, logs and counts each
// call.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	s.calls.Add(1)
	defer s.calls.Add(-1)
	ci, hdr := newCall(ctx)
	start := time.Now()
	_ = grpc.SetHeader(ctx, hdr) // fails only once the call has ended
	resp, err := handler(context.WithValue(ctx, callInfoKey{}, ci), req)
	return resp, s.finish(info.FullMethod, ci, start, err)
}

// streamInterceptor does the same for streams.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	s.calls.Add(1)
	defer s.calls.Add(-1)
	ci, hdr := newCall(ss.Context())
	start := time.Now()
	_ = ss.SetHeader(hdr) // sent with the first frame
	err := handler(srv, &ctxStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callInfoKey{}, ci)})
	return s.finish(info.FullMethod, ci, start, err)
}

// finish is where a handler's error becomes its call's status, through
// the one table (toStatus), and where the call is logged: internal
// errors at error, calls the client ended or had refused (see quiet) at
// debug, the rest at info.
func (s *Server) finish(method string, ci *callInfo, start time.Time, err error) error {
	st, internal := toStatus(err)
	d := time.Since(start)
	s.cfg.Metrics.RPCs.WithLabelValues(method, st.Code().String()).Inc()
	s.cfg.Metrics.RPCSeconds.WithLabelValues(method).Observe(d.Seconds())
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", st.Code().String()),
		zap.Duration("duration", d),
		zap.String("user", ci.user),
		zap.String("request_id", ci.requestID),
	}
	switch {
	case internal:
		s.cfg.Logger.Error("call failed", append(fields, zap.Error(err))...)
	case quiet(st.Code()):
		s.cfg.Logger.Debug("call", fields...)
	default:
		s.cfg.Logger.Info("call", fields...)
	}
	return st.Err()
}

// quiet reports whether calls ending with c are logged at debug only.
// These are the calls a client refuses itself (cancelled, its deadline
// passed) or the service refuses it for its own doing: without a valid
// token, with bad input, a wrong password, an unknown room, over a limit.
// A client makes them as fast as it can send, so at info one attacker
// could write the log at its own pace (685,000 lines in 10 s with rapid
// resets); chat_rpcs_total counts them by method and code instead.
func quiet(c codes.Code) bool {
	switch c {
	case codes.Canceled, codes.DeadlineExceeded, codes.Unauthenticated, codes.InvalidArgument,
		codes.PermissionDenied, codes.NotFound, codes.ResourceExhausted, codes.FailedPrecondition,
		codes.AlreadyExists, codes.OutOfRange:
		return true
	}
	return false
}

// ctxStream overrides a stream's context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }
