package api

import (
	"context"
	"time"

	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// callInfo collects what a handler learns about its caller for the access
// log; the interceptor puts it in the context before calling the handler.
type callInfo struct{ user string }

type callInfoKey struct{}

func noteUser(ctx context.Context, name string) {
	if ci, ok := ctx.Value(callInfoKey{}).(*callInfo); ok {
		ci.user = name
	}
}

// unaryInterceptor maps handler errors to statuses and logs each call.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ci := &callInfo{}
	start := time.Now()
	resp, err := handler(context.WithValue(ctx, callInfoKey{}, ci), req)
	return resp, s.finish(info.FullMethod, ci, start, err)
}

// streamInterceptor does the same for streams.
func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ci := &callInfo{}
	start := time.Now()
	err := handler(srv, &ctxStream{ServerStream: ss, ctx: context.WithValue(ss.Context(), callInfoKey{}, ci)})
	return s.finish(info.FullMethod, ci, start, err)
}

// finish is where a handler's error becomes its call's status; a Chat
// stream ended from outside its handler gets the same status from ender,
// through the same table (toStatus).
func (s *Server) finish(method string, ci *callInfo, start time.Time, err error) error {
	st, internal := toStatus(err)
	fields := []zap.Field{
		zap.String("method", method),
		zap.String("code", st.Code().String()),
		zap.Duration("duration", time.Since(start)),
		zap.String("user", ci.user),
	}
	if internal {
		s.cfg.Logger.Error("call failed", append(fields, zap.Error(err))...)
	} else {
		s.cfg.Logger.Info("call", fields...)
	}
	return st.Err()
}

// ctxStream overrides a stream's context.
type ctxStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (c *ctxStream) Context() context.Context { return c.ctx }
