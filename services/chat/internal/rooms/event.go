package rooms

import (
	"sync"
	"time"
)

// Message is a chat message as a room records it.
type Message struct {
	// Room is the canonical short code of the room.
	Room string
	// Seq is the message's place in the room, from 1 within an epoch.
	Seq uint64
	// Epoch names the history the sequence belongs to.
	Epoch string
	// SentAt is when the service accepted the message.
	SentAt time.Time
	// SenderID and Sender are the user ID and name of the sender.
	SenderID string
	Sender   string
	// Body is the text, valid UTF-8.
	Body string
	// ClientID is the sender's own ID for the message, unique per user and
	// room while the message is retained; empty when none was given.
	ClientID string
}

// EventKind tells the kinds of Event apart.
type EventKind uint8

// The kinds of Event.
const (
	// EventMessage carries a Message.
	EventMessage EventKind = iota + 1
	// EventJoined and EventLeft tell that a user opened its first stream in
	// the room, or closed its last: User names the user.
	EventJoined
	EventLeft
	// EventRoomDeleted is the last event of a deleted room's streams.
	EventRoomDeleted
	// EventRefreshed is sent to one stream only: its credential was
	// renewed and now lasts until At.
	EventRefreshed
	// EventPresence is a batch of presence changes, Batch: the
	// EventJoined and EventLeft events of one coalescing window, in the
	// order they happened. Transports send it as those events, each in its
	// own shared encoding, so a batch costs a stream one queue entry
	// however many changes it holds, and no encoding of its own.
	EventPresence
)

// Event is one thing that happened in a room, as plain values: engines
// publish it, and every transport encodes it in its own format.
//
// An Event is published as a pointer and shared, immutable, by every
// stream that receives it. Prepared keeps one encoding per Format, made by
// the first stream that needs it and reused by all the others, so a room
// of n members encodes each event once per format, not n times.
type Event struct {
	Kind EventKind
	// Message is set for EventMessage.
	Message Message
	// User is the user concerned by EventJoined and EventLeft.
	User string
	// At is when a presence change or the deletion happened, or when a
	// refreshed credential expires; for a message it is Message.SentAt;
	// for a presence batch, its last change's.
	At time.Time
	// Batch holds an EventPresence's changes, each an EventJoined or
	// EventLeft event. Batches of the same window share the events and
	// their backing array: a batch never changes once made.
	Batch []*Event

	// size caches Size for a batch, which sums its changes.
	size     int
	prepared [numFormats]prepared
}

// Format names one wire encoding of events, shared by every stream that
// speaks it.
type Format uint8

// The encodings the service speaks.
const (
	// FormatProtobuf is the gRPC transport's pre-encoded protobuf field.
	FormatProtobuf Format = iota
	// FormatJSON is for transports that speak JSON (WebSocket).
	FormatJSON
	numFormats
)

type prepared struct {
	once sync.Once
	v    any
}

// Prepared returns ev's encoding in format f, which encode makes on the
// first call for that format; later calls, from any goroutine, return the
// same value. encode must not fail: an event is made of values that the
// service has already validated.
func (ev *Event) Prepared(f Format, encode func(*Event) any) any {
	p := &ev.prepared[f]
	p.once.Do(func() { p.v = encode(ev) })
	return p.v
}

// Size estimates the event's encoded size in bytes, for bounding frames
// without encoding them.
func (ev *Event) Size() int {
	const overhead = 64 // field tags, sequence, epoch, timestamps
	switch ev.Kind {
	case EventMessage:
		m := &ev.Message
		return overhead + len(m.Epoch) + len(m.Sender) + len(m.Body) + len(m.ClientID)
	case EventJoined, EventLeft:
		return overhead + len(ev.User)
	case EventPresence:
		return ev.size
	default:
		return overhead
	}
}

// NewMessageEvent returns the event of m.
func NewMessageEvent(m Message) *Event {
	return &Event{Kind: EventMessage, Message: m, At: m.SentAt}
}

// NewPresenceBatch returns the EventPresence event of changes, EventJoined
// and EventLeft events in the order they happened; it keeps the slice,
// which must not change afterwards. changes must not be empty.
func NewPresenceBatch(changes []*Event) *Event {
	size := 0
	for _, c := range changes {
		size += c.Size()
	}
	return &Event{Kind: EventPresence, Batch: changes, At: changes[len(changes)-1].At, size: size}
}
