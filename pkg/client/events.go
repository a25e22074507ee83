package client

import (
	"time"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Event is something Receive returns: *Message, *Presence, *RoomDeleted,
// *Gap, *Connection or *SendFailed. Use a type switch.
type Event interface {
	isEvent()
}

// Message is a chat message as the room recorded it.
type Message struct {
	// Sequence is the message's position in the room, increasing by one
	// within an epoch.
	Sequence uint64
	// Epoch is the room epoch the sequence belongs to. It lasts as long as
	// the chat service's message history, and changes only when that
	// history is lost (an ephemeral service restarting).
	Epoch string
	// Sender is the user who sent it.
	Sender string
	// SentAt is when the service accepted it.
	SentAt time.Time
	// Body is the text.
	Body string
	// ClientMessageID is the ID the sender's Send returned.
	ClientMessageID string
	// Earlier marks a message sent before the caller joined: part of the
	// backlog JoinChatRoom asked for (see WithBacklog). Earlier messages
	// come first, in room order, and the live ones follow them without gap
	// or repeat; Room.Backlog tells how many to expect.
	Earlier bool
}

// PresenceKind tells arrivals from departures.
type PresenceKind int

// The presence kinds.
const (
	// Joined: the user opened its first stream in the room.
	Joined PresenceKind = iota + 1
	// Left: the user closed its last stream in the room.
	Left
)

func (k PresenceKind) String() string {
	switch k {
	case Joined:
		return "joined"
	case Left:
		return "left"
	}
	return "unknown"
}

// Presence reports a user coming online or going offline.
type Presence struct {
	Kind PresenceKind
	User string
	At   time.Time
}

// RoomDeleted says the room's owner deleted the room. It is the last event
// of the session: the next Receive returns ErrRoomDeleted.
type RoomDeleted struct {
	At time.Time
}

// Gap says that messages may have been missed, for one of two reasons.
//
// The service's: after a reconnection it could not replay everything sent
// while the client was away (its history was lost in a restart, or the
// client fell outside it). What the service still holds follows as
// *Message events (after an epoch change, every message of the new epoch
// it keeps), then live events. Dropped is zero.
//
// The application's: it did not call Receive before the room's event
// buffer (WithEventBuffer) was full, and the Client dropped the oldest
// unread events to keep reading the stream (Dropped is not zero; see
// "Unread events" in the package documentation). The events that were
// kept follow, and nothing dropped comes again.
type Gap struct {
	// PreviousEpoch and AfterSequence are the last message delivered before
	// the gap.
	PreviousEpoch string
	AfterSequence uint64
	// Epoch and HeadSequence are, for the service's gap, where the room
	// stood when the stream opened: messages up to HeadSequence that the
	// service still holds come first, then live ones. For the
	// application's, they are the last message dropped (PreviousEpoch and
	// AfterSequence when no message was): the DroppedMessages after
	// AfterSequence up to HeadSequence are missing.
	Epoch        string
	HeadSequence uint64
	// Unconfirmed are the client message IDs of the caller's own messages
	// whose fate the gap hides: sent before it and not seen come back. The
	// Client sent them again, which is safe because the service ignores an
	// ID it already recorded; but for that same reason, those it had
	// recorded during the gap come back as a *Message only if its history
	// still holds them. Only a gap in
	// the same epoch has them: after a restart the Client knows nothing
	// was recorded, sends everything again and tracks it as usual.
	Unconfirmed []string

	// Dropped is how many unread events the Client dropped, the oldest
	// first, because the room's event buffer was full; zero for the
	// service's gap.
	Dropped int
	// DroppedMessages is how many of them were *Message events.
	DroppedMessages int
	// Failed are the *SendFailed events among them, kept because no other
	// event tells of a refused message.
	Failed []*SendFailed
	// ServiceGap tells that a gap of the service's was among them: then
	// messages the Client never received may be missing too, and its
	// Unconfirmed are listed in this Gap's.
	ServiceGap bool
}

// SendFailed reports a message that Send accepted but the service refused
// (it ended the stream as invalid, e.g. for a body over its size limit).
// The message will never come back as a *Message; the messages sent after
// it are sent again and are not affected.
type SendFailed struct {
	// ClientMessageID is the ID Send returned.
	ClientMessageID string
	// Body is the refused text.
	Body string
	// Err is the service's reason; it matches ErrInvalidArgument.
	Err error
}

// ConnectionState is the state of the room's stream.
type ConnectionState int

// The connection states reported by *Connection events.
const (
	// Reconnecting: the stream broke and the Client is reopening it.
	Reconnecting ConnectionState = iota + 1
	// Connected: the stream is open again.
	Connected
)

func (s ConnectionState) String() string {
	switch s {
	case Reconnecting:
		return "reconnecting"
	case Connected:
		return "connected"
	}
	return "unknown"
}

// Connection reports a change in the stream's state after JoinChatRoom.
type Connection struct {
	State ConnectionState
	// Attempt counts the attempts since the stream last stayed open for
	// Backoff.ResetAfter (Reconnecting): 0 after a stable stream broke.
	Attempt int
	// Err is why the stream broke or the last attempt failed (Reconnecting).
	Err error
	// Retry is how long the Client waits before the next attempt (Reconnecting).
	Retry time.Duration
	// Users are the users online once the stream is open again (Connected):
	// presence changes during the break are not replayed.
	Users []User
}

func (*Message) isEvent()     {}
func (*Presence) isEvent()    {}
func (*RoomDeleted) isEvent() {}
func (*Gap) isEvent()         {}
func (*Connection) isEvent()  {}
func (*SendFailed) isEvent()  {}

// User is a user online in a room.
type User struct {
	Name string
	// Streams is how many streams (devices) the user has open in the room.
	Streams int
}

// Room is a room the Client joined with JoinRoom or JoinChatRoom. Its
// fields describe the room as it stood when its stream opened; its
// methods send to it, receive its events and leave it. The methods of a
// Room the Client did not return (a literal, e.g. in a test) return
// ErrNotJoined.
type Room struct {
	ShortCode string
	Name      string
	// Epoch and HeadSequence tell where the room stood when the stream opened.
	Epoch        string
	HeadSequence uint64
	// Backlog is how many earlier messages (Message.Earlier) Receive
	// returns before the live events: those the Client asked for (see
	// WithBacklog), as far as the room's history had them.
	Backlog int
	// Users are the users online when the stream opened, including the
	// caller; ListUsers asks again.
	Users []User

	s *session // nil for a Room the Client did not return
}

func usersFromProto(us []*chatv1.RoomUser) []User {
	out := make([]User, 0, len(us))
	for _, u := range us {
		out = append(out, User{Name: u.GetUserName(), Streams: int(u.GetStreams())})
	}
	return out
}

func messageFromProto(m *chatv1.Message) *Message {
	return &Message{
		Sequence:        m.GetSequence(),
		Epoch:           m.GetEpoch(),
		Sender:          m.GetSender(),
		SentAt:          m.GetSentAt().AsTime(),
		Body:            m.GetBody(),
		ClientMessageID: m.GetClientMessageId(),
	}
}

func presenceFromProto(p *chatv1.Presence) *Presence {
	kind := Joined
	if p.GetKind() == chatv1.PresenceKind_PRESENCE_KIND_LEFT {
		kind = Left
	}
	return &Presence{Kind: kind, User: p.GetUserName(), At: p.GetAt().AsTime()}
}
