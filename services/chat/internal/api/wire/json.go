package wire

import (
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The JSON encoding is that of the WebSocket transport: every frame is the
// protojson form of a proto message, so that one schema (chat.proto)
// describes both transports. A server frame is a ChatResponse,
// {"events":[...]}, whose events are each encoded once (rooms.Event's
// FormatJSON) and shared by every WebSocket of the room, like the
// protobuf encoding's.

// JSON returns ev's protojson encoding as an Event, made on first use and
// shared by every stream. Callers must not modify it.
func JSON(ev *rooms.Event) []byte {
	return ev.Prepared(rooms.FormatJSON, encodeJSON).([]byte)
}

func encodeJSON(ev *rooms.Event) any {
	if ev.Kind == rooms.EventPresence {
		return appendJSONEvents(nil, ev.Batch)
	}
	return mustJSON(Proto(ev))
}

// mustJSON encodes a message built from validated values (valid UTF-8
// strings), which cannot fail to marshal.
func mustJSON(m proto.Message) []byte {
	b, err := protojson.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// AppendJSONFrame appends the protojson form of a ChatResponse holding
// evs to b: their shared encodings, joined. A presence batch is its
// changes, each a Presence event in its own shared encoding (as in
// NewFrame).
func AppendJSONFrame(b []byte, evs []*rooms.Event) []byte {
	b = append(b, `{"events":[`...)
	b = appendJSONEvents(b, evs)
	return append(b, "]}"...)
}

// appendJSONEvents appends the shared encodings of evs, comma-separated,
// with presence batches' changes in their place.
func appendJSONEvents(b []byte, evs []*rooms.Event) []byte {
	start := len(b) // every encoding is non-empty: past start, separate
	for _, ev := range evs {
		if ev.Kind == rooms.EventPresence {
			for _, c := range ev.Batch {
				if len(b) > start {
					b = append(b, ',')
				}
				b = append(b, JSON(c)...)
			}
			continue
		}
		if len(b) > start {
			b = append(b, ',')
		}
		b = append(b, JSON(ev)...)
	}
	return b
}

// DecodeJSON decodes a client's protojson frame into m strictly: unknown
// fields, wrong types, invalid UTF-8 and an empty frame are errors.
func DecodeJSON(b []byte, m proto.Message) error { return protojson.Unmarshal(b, m) }
