package chatload

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// The generator shares the machine with the server it measures, so every
// CPU cycle it spends per delivery is taken from the server. Receivers
// therefore do not unmarshal ChatResponse into Go structs: they keep the
// frame's bytes and walk the few fields they need with protowire, without
// allocating. Requests are marshalled with the ordinary proto codec.

// Field numbers from chat.proto.
const (
	responseEvents  protowire.Number = 1 // ChatResponse.events
	eventOpened     protowire.Number = 1 // Event.opened
	eventMessage    protowire.Number = 2 // Event.message
	messageBody     protowire.Number = 5 // Message.body
	messageClientID protowire.Number = 6 // Message.client_message_id
)

// rawFrame receives a ChatResponse as bytes.
type rawFrame struct{ buf []byte }

// rawCodec marshals proto messages and leaves responses undecoded. It is
// named "proto" so that the wire content type stays application/grpc.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("rawCodec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*rawFrame)
	if !ok {
		return fmt.Errorf("rawCodec: cannot unmarshal into %T", v)
	}
	f.buf = f.buf[:0]
	for _, b := range data {
		f.buf = append(f.buf, b.ReadOnlyData()...)
	}
	return nil
}

// chatStream is a Chat stream whose responses stay encoded.
type chatStream struct {
	grpc.ClientStream
	frame rawFrame
}

func (s *chatStream) send(req *chatv1.ChatRequest) error { return s.SendMsg(req) }

// recv returns the next frame's bytes, valid until the next recv.
func (s *chatStream) recv() ([]byte, error) {
	if err := s.RecvMsg(&s.frame); err != nil {
		return nil, err
	}
	return s.frame.buf, nil
}

func (s *chatStream) walk(frame []byte, onMessage func(id, body []byte)) (bool, error) {
	return walkFrame(frame, onMessage)
}

func newChatStream(ctx context.Context, cc *grpc.ClientConn) (*chatStream, error) {
	desc := &chatv1.ChatService_ServiceDesc.Streams[0]
	cs, err := cc.NewStream(ctx, desc, chatv1.ChatService_Chat_FullMethodName, grpc.ForceCodecV2(rawCodec{}))
	if err != nil {
		return nil, err
	}
	return &chatStream{ClientStream: cs}, nil
}

var errMalformed = errors.New("malformed ChatResponse")

// walkFrame calls onMessage with the client_message_id and body of every
// Message event in a ChatResponse frame and reports whether the frame
// held an Opened event.
func walkFrame(frame []byte, onMessage func(id, body []byte)) (opened bool, err error) {
	for len(frame) > 0 {
		num, typ, n := protowire.ConsumeTag(frame)
		if n < 0 {
			return opened, errMalformed
		}
		frame = frame[n:]
		if num != responseEvents || typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, frame); n < 0 {
				return opened, errMalformed
			}
			frame = frame[n:]
			continue
		}
		ev, n := protowire.ConsumeBytes(frame)
		if n < 0 {
			return opened, errMalformed
		}
		frame = frame[n:]
		for len(ev) > 0 {
			num, typ, n := protowire.ConsumeTag(ev)
			if n < 0 {
				return opened, errMalformed
			}
			ev = ev[n:]
			if typ != protowire.BytesType {
				if n = protowire.ConsumeFieldValue(num, typ, ev); n < 0 {
					return opened, errMalformed
				}
				ev = ev[n:]
				continue
			}
			v, n := protowire.ConsumeBytes(ev)
			if n < 0 {
				return opened, errMalformed
			}
			ev = ev[n:]
			switch num {
			case eventOpened:
				opened = true
			case eventMessage:
				id, body, err := messageFields(v)
				if err != nil {
					return opened, err
				}
				onMessage(id, body)
			}
		}
	}
	return opened, nil
}

func messageFields(m []byte) (id, body []byte, err error) {
	for len(m) > 0 {
		num, typ, n := protowire.ConsumeTag(m)
		if n < 0 {
			return nil, nil, errMalformed
		}
		m = m[n:]
		if typ == protowire.BytesType && (num == messageBody || num == messageClientID) {
			v, n := protowire.ConsumeBytes(m)
			if n < 0 {
				return nil, nil, errMalformed
			}
			m = m[n:]
			if num == messageBody {
				body = v
			} else {
				id = v
			}
			continue
		}
		if n = protowire.ConsumeFieldValue(num, typ, m); n < 0 {
			return nil, nil, errMalformed
		}
		m = m[n:]
	}
	return id, body, nil
}

// parseDec parses a non-negative decimal integer.
func parseDec(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// parseHex parses a hexadecimal integer, ignoring trailing spaces.
func parseHex(b []byte) (int64, bool) {
	for len(b) > 0 && b[len(b)-1] == ' ' {
		b = b[:len(b)-1]
	}
	if len(b) == 0 || len(b) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		switch {
		case c >= '0' && c <= '9':
			n = n<<4 | uint64(c-'0')
		case c >= 'a' && c <= 'f':
			n = n<<4 | uint64(c-'a'+10)
		default:
			return 0, false
		}
	}
	return int64(n), true
}
