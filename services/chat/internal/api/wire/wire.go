// Package wire is the gRPC transport's encoding of the chat core's domain
// events: each event is encoded once and sent pre-encoded to every stream.
//
// ChatResponse is nothing but `repeated Event events = 1`, so the protobuf
// encoding of a frame is the concatenation of its encoded events fields
// (tag 0x0a, varint length, marshalled Event). A rooms.Event is therefore
// encoded once, by the first stream that sends it (rooms.Event.Prepared),
// and a frame for any member of the room is a list of those shared,
// immutable byte slices. Codec passes such frames to the transport without
// copying or re-marshalling them.
package wire

import (
	"fmt"
	"time"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// eventsField is the field number of ChatResponse.events.
const eventsField protowire.Number = 1

// Event is one encoded ChatResponse.events field. Its bytes are shared by
// every stream that receives it and must never be modified.
type Event struct {
	// buf holds the encoded field. It is stored as a mem.Buffer interface
	// value once, so that building a frame does not allocate per event.
	buf mem.Buffer
}

// Len is the encoded size in bytes.
func (e Event) Len() int {
	if e.buf == nil {
		return 0
	}
	return e.buf.Len()
}

// Bytes returns the encoded field. Callers must not modify it.
func (e Event) Bytes() []byte {
	if e.buf == nil {
		return nil
	}
	return e.buf.ReadOnlyData()
}

// Of returns ev's encoding, made on first use and shared by every stream.
func Of(ev *rooms.Event) Event {
	return ev.Prepared(rooms.FormatProtobuf, encode).(Event)
}

// encode encodes a domain event: messages by hand (see Message), a
// presence batch as its changes' shared encodings joined (frames take
// them one by one instead, see NewFrame), the rarer kinds through their
// proto form.
func encode(ev *rooms.Event) any {
	switch ev.Kind {
	case rooms.EventMessage:
		return Message(&ev.Message)
	case rooms.EventPresence:
		var b []byte
		for _, c := range ev.Batch {
			b = append(b, Of(c).Bytes()...)
		}
		return Event{buf: mem.SliceBuffer(b)}
	}
	return mustEncode(Proto(ev))
}

// Proto returns a domain event as the API's Event: the one place that
// maps the domain's events to the API's, for every encoding. A presence
// batch is no one Event but its changes, each mapped on its own.
func Proto(ev *rooms.Event) *chatv1.Event {
	switch ev.Kind {
	case rooms.EventMessage:
		m := &ev.Message
		return &chatv1.Event{Kind: &chatv1.Event_Message{Message: &chatv1.Message{
			Sequence: m.Seq, Epoch: m.Epoch, SentAt: timestamppb.New(m.SentAt),
			Sender: m.Sender, Body: m.Body, ClientMessageId: m.ClientID,
		}}}
	case rooms.EventJoined:
		return presence(chatv1.PresenceKind_PRESENCE_KIND_JOINED, ev.User, ev.At)
	case rooms.EventLeft:
		return presence(chatv1.PresenceKind_PRESENCE_KIND_LEFT, ev.User, ev.At)
	case rooms.EventRoomDeleted:
		return &chatv1.Event{Kind: &chatv1.Event_RoomDeleted{RoomDeleted: &chatv1.RoomDeleted{
			At: timestamppb.New(ev.At),
		}}}
	case rooms.EventRefreshed:
		return &chatv1.Event{Kind: &chatv1.Event_Refreshed{Refreshed: &chatv1.Refreshed{
			ExpiresAt: timestamppb.New(ev.At),
		}}}
	default:
		panic(fmt.Sprintf("wire: unknown event kind %d", ev.Kind))
	}
}

// mustEncode encodes an event built from validated values, which cannot
// fail to marshal.
func mustEncode(ev *chatv1.Event) Event {
	e, err := Encode(ev)
	if err != nil {
		panic(err)
	}
	return e
}

// Encode marshals ev as one ChatResponse.events field.
func Encode(ev *chatv1.Event) (Event, error) {
	size := proto.Size(ev)
	b := make([]byte, 0, 1+protowire.SizeVarint(uint64(size))+size)
	b = protowire.AppendTag(b, eventsField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b, err := proto.MarshalOptions{UseCachedSize: true}.MarshalAppend(b, ev)
	if err != nil {
		return Event{}, fmt.Errorf("wire: encode event: %w", err)
	}
	return Event{buf: mem.SliceBuffer(b)}, nil
}

// Field numbers of Event.message, Message and google.protobuf.Timestamp,
// for Message's hand encoding.
const (
	eventMessage    protowire.Number = 2
	msgSequence     protowire.Number = 1
	msgEpoch        protowire.Number = 2
	msgSentAt       protowire.Number = 3
	msgSender       protowire.Number = 4
	msgBody         protowire.Number = 5
	msgClientID     protowire.Number = 6
	timestampSecond protowire.Number = 1
	timestampNanos  protowire.Number = 2
)

// Message builds and encodes a chat message event. It is encoded by hand,
// into one exactly sized buffer, since a room encodes one per message:
// the bytes are those proto.Marshal gives for the same chatv1.Event (a
// test holds them to it), at a fraction of its cost and allocations.
//
// The strings must be valid UTF-8, as proto3 requires: body and clientID
// are checked by rooms.ValidateSend before a message reaches the room, the
// sender comes from a signed token and the epoch is hex. Checking them
// again here would scan every body a second time.
func Message(m *rooms.Message) Event {
	seq, epoch, at, sender, body, clientID := m.Seq, m.Epoch, m.SentAt, m.Sender, m.Body, m.ClientID
	secs, nanos := uint64(at.Unix()), uint64(at.Nanosecond())
	tsLen := 0
	if secs != 0 {
		tsLen += 1 + protowire.SizeVarint(secs)
	}
	if nanos != 0 {
		tsLen += 1 + protowire.SizeVarint(nanos)
	}
	msgLen := 1 + protowire.SizeBytes(tsLen) // sent_at is always present
	if seq != 0 {
		msgLen += 1 + protowire.SizeVarint(seq)
	}
	for _, s := range [...]string{epoch, sender, body, clientID} {
		if s != "" {
			msgLen += 1 + protowire.SizeBytes(len(s))
		}
	}
	evLen := 1 + protowire.SizeBytes(msgLen)
	b := make([]byte, 0, 1+protowire.SizeVarint(uint64(evLen))+evLen)
	b = protowire.AppendTag(b, eventsField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(evLen))
	b = protowire.AppendTag(b, eventMessage, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(msgLen))
	if seq != 0 {
		b = protowire.AppendTag(b, msgSequence, protowire.VarintType)
		b = protowire.AppendVarint(b, seq)
	}
	b = appendString(b, msgEpoch, epoch)
	b = protowire.AppendTag(b, msgSentAt, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsLen))
	if secs != 0 {
		b = protowire.AppendTag(b, timestampSecond, protowire.VarintType)
		b = protowire.AppendVarint(b, secs)
	}
	if nanos != 0 {
		b = protowire.AppendTag(b, timestampNanos, protowire.VarintType)
		b = protowire.AppendVarint(b, nanos)
	}
	b = appendString(b, msgSender, sender)
	b = appendString(b, msgBody, body)
	b = appendString(b, msgClientID, clientID)
	return Event{buf: mem.SliceBuffer(b)}
}

// appendString appends a proto3 string field, which is omitted when empty.
func appendString(b []byte, num protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendString(b, s)
}

// presence builds a presence event.
func presence(kind chatv1.PresenceKind, user string, at time.Time) *chatv1.Event {
	return &chatv1.Event{Kind: &chatv1.Event_Presence{Presence: &chatv1.Presence{
		Kind:     kind,
		UserName: user,
		At:       timestamppb.New(at),
	}}}
}

// Frame is a pre-encoded ChatResponse: send it with grpc.ServerStream.SendMsg
// on a server that uses Codec.
type Frame struct {
	events mem.BufferSlice
	// one backs events for the common single-event frame, so that such a
	// frame costs one allocation.
	one [1]mem.Buffer
}

// NewFrame makes a frame of domain events, each in its shared encoding.
// A presence batch becomes its changes, each a Presence event in its own
// shared encoding, so that clients see the events they always did and a
// batch sent to many streams is neither encoded nor copied per stream.
func NewFrame(events []*rooms.Event) *Frame {
	f := &Frame{}
	n := 0
	for _, e := range events {
		if e.Kind == rooms.EventPresence {
			n += len(e.Batch)
		} else {
			n++
		}
	}
	if n == 1 {
		f.events = f.one[:0]
	} else {
		f.events = make(mem.BufferSlice, 0, n)
	}
	for _, e := range events {
		if e.Kind != rooms.EventPresence {
			f.events = append(f.events, Of(e).buf)
			continue
		}
		for _, c := range e.Batch {
			f.events = append(f.events, Of(c).buf)
		}
	}
	return f
}
