package wire

import (
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is a gRPC codec that sends a *Frame as its pre-encoded bytes and
// hands every other message to the proto codec. Install it on a server with
// grpc.ForceServerCodecV2.
type Codec struct {
	proto encoding.CodecV2
}

// NewCodec returns a Codec delegating to the registered proto codec.
func NewCodec() *Codec {
	return &Codec{proto: encoding.GetCodecV2("proto")}
}

// Marshal returns a Frame's buffers as they are. They are immutable slices
// whose Ref and Free are no-ops, so gRPC may hold them as long as it likes.
func (c *Codec) Marshal(v any) (mem.BufferSlice, error) {
	if f, ok := v.(*Frame); ok {
		return f.events, nil
	}
	return c.proto.Marshal(v)
}

// Raw receives a request's bytes undecoded. gRPC reports a codec failure
// as Internal; a handler that receives into a *Raw and decodes it with
// Decode can answer malformed input as the client's mistake instead.
type Raw []byte

// Unmarshal decodes requests as Decode does. A *Raw receives the bytes as
// they are.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*Raw); ok {
		*r = data.Materialize()
		return nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return c.proto.Unmarshal(data, v)
	}
	return Decode(data.Materialize(), m)
}

// Decode decodes b into m strictly, except that string fields that are not
// valid UTF-8 are kept for the handler's validation to reject, naming the
// field. protobuf does not export its UTF-8 error, so any failure of the
// strict decode is retried leniently: input that is malformed otherwise
// fails that too, with the strict decode's error.
func Decode(b []byte, m proto.Message) error {
	err := proto.Unmarshal(b, m)
	if err == nil {
		return nil
	}
	proto.Reset(m)
	if unmarshalLenient(b, m.ProtoReflect()) != nil {
		proto.Reset(m)
		return err
	}
	return nil
}

// Name keeps the standard content subtype, so clients see plain proto.
func (c *Codec) Name() string { return "proto" }
