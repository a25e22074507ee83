package api

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
)

// rawMsg is a request the test encodes by hand, e.g. with invalid UTF-8
// that a generated client refuses to marshal.
type rawMsg []byte

// rawCodec sends rawMsg as is and decodes replies with the proto codec.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(rawMsg); ok {
		return mem.BufferSlice{mem.SliceBuffer(r)}, nil
	}
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2("proto").Unmarshal(data, v)
}

func (rawCodec) Name() string { return "proto" }

// rawStrings encodes string fields 1..n of a message; values may be any bytes.
func rawStrings(values ...string) []byte {
	var b []byte
	for i, v := range values {
		b = protowire.AppendTag(b, protowire.Number(i+1), protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

// invokeRaw calls a unary method with a hand-encoded request.
func invokeRaw(ctx context.Context, cc *grpc.ClientConn, method string, req []byte, reply any) error {
	return cc.Invoke(ctx, method, rawMsg(req), reply, grpc.ForceCodecV2(rawCodec{}))
}

// openRaw starts a Chat stream that sends hand-encoded requests.
func openRaw(ctx context.Context, cc *grpc.ClientConn) (grpc.ClientStream, error) {
	return cc.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true, ClientStreams: true},
		"/grpcchatter.chat.v1.ChatService/Chat", grpc.ForceCodecV2(rawCodec{}))
}
