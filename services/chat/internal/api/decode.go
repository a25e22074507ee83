package api

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api/wire"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// strictDecoding returns a copy of desc whose unary handlers receive the
// request undecoded and decode it themselves, so that a malformed request
// gets InvalidArgument instead of the Internal gRPC gives codec failures.
// The decode happens before interceptors run, so the status is built here.
func strictDecoding(desc *grpc.ServiceDesc) *grpc.ServiceDesc {
	d := *desc
	d.Methods = make([]grpc.MethodDesc, len(desc.Methods))
	for i, m := range desc.Methods {
		h := m.Handler
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
			return h(srv, ctx, func(v any) error {
				var raw wire.Raw
				if err := dec(&raw); err != nil {
					return err
				}
				// Every generated request type is a proto.Message.
				if err := wire.Decode(raw, v.(proto.Message)); err != nil {
					return status.Error(codes.InvalidArgument, fmt.Sprintf("%v: %v", rooms.ErrMalformed, err))
				}
				return nil
			}, ic)
		}
		d.Methods[i] = m
	}
	return &d
}

// recvRequest receives one Chat request, decoding it itself so that
// malformed input ends the stream with InvalidArgument (rooms.ErrMalformed).
func recvRequest(stream grpc.ServerStream) (*chatv1.ChatRequest, error) {
	var raw wire.Raw
	if err := stream.RecvMsg(&raw); err != nil {
		return nil, err
	}
	req := new(chatv1.ChatRequest)
	if err := wire.Decode(raw, req); err != nil {
		return nil, fmt.Errorf("%w: %v", rooms.ErrMalformed, err)
	}
	return req, nil
}
