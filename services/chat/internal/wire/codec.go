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

// Unmarshal decodes requests with the proto codec, falling back to a
// lenient decode for strings that are not valid UTF-8 (see unmarshalLenient).
// A *Raw receives the bytes as they are.
func (c *Codec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*Raw); ok {
		*r = data.Materialize()
		return nil
	}
	err := c.proto.Unmarshal(data, v)
	if m, ok := v.(proto.Message); ok && isUTF8Error(err) {
		proto.Reset(m)
		return unmarshalLenient(data.Materialize(), m.ProtoReflect())
	}
	return err
}

// Decode decodes b into m as Unmarshal does: strictly, but keeping string
// fields that are not valid UTF-8 for the handler to reject.
func Decode(b []byte, m proto.Message) error {
	err := proto.Unmarshal(b, m)
	if isUTF8Error(err) {
		proto.Reset(m)
		return unmarshalLenient(b, m.ProtoReflect())
	}
	return err
}

// Name keeps the standard content subtype, so clients see plain proto.
func (c *Codec) Name() string { return "proto" }
