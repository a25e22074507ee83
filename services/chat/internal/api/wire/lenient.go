package wire

import (
	"errors"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

var errBadWire = errors.New("wire: malformed message")

// unmarshalLenient decodes b into m like proto.Unmarshal but keeps string
// fields that are not valid UTF-8 instead of failing. gRPC reports a codec
// failure as Internal, yet invalid UTF-8 is the client's mistake: decoding
// it anyway lets the handler's validation answer InvalidArgument and name
// the field. Repeated and map fields are decoded strictly.
func unmarshalLenient(b []byte, m protoreflect.Message) error {
	fields := m.Descriptor().Fields()
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errBadWire
		}
		l := protowire.ConsumeFieldValue(num, typ, b[n:])
		if l < 0 {
			return errBadWire
		}
		whole, val := b[:n+l], b[n:n+l]
		b = b[n+l:]
		fd := fields.ByNumber(num)
		if fd != nil && typ == protowire.BytesType && !fd.IsList() && !fd.IsMap() {
			inner, k := protowire.ConsumeBytes(val)
			if k < 0 {
				return errBadWire
			}
			switch fd.Kind() {
			case protoreflect.StringKind:
				m.Set(fd, protoreflect.ValueOfString(string(inner)))
				continue
			case protoreflect.MessageKind:
				if err := unmarshalLenient(inner, m.Mutable(fd).Message()); err != nil {
					return err
				}
				continue
			}
		}
		if err := (proto.UnmarshalOptions{Merge: true}).Unmarshal(whole, m.Interface()); err != nil {
			return err
		}
	}
	return nil
}
