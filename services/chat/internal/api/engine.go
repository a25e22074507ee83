package api

import (
	"context"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Engine is the chat core as the gRPC transport uses it
// (engine.Engine). Its rules are those of the seams it stands on (see
// internal/engine/seams.go) plus these:
//
//   - Codes are canonical (upper case); unknown or deleted rooms give
//     rooms.ErrNotFound, DeleteRoom by anyone but the owner
//     rooms.ErrNotOwner; CreateRoom gives rooms.ErrTooManyRooms past the
//     per-user limit and rooms.ErrNoCode when it finds no free code.
//   - Publish gives each message of a room the next sequence and every
//     subscription of the room receives the room's events in one order,
//     the sender's own included, once the message is in the log. A
//     non-empty client message ID that the same user gave a message still
//     in history makes Publish a no-op returning that message's sequence.
//   - Subscribe registers the subscription and snapshots its replay
//     atomically (see rooms.Open); it gives rooms.ErrTooManyStreams past
//     the per-user stream limit. Opened.Head is the last sequence before
//     live delivery starts.
//   - Delivery never blocks: a subscription whose queue overflows ends with
//     rooms.ErrSlowConsumer; deleting a room ends its subscriptions with a
//     RoomDeleted event and rooms.ErrDeleted.
//   - Presence counts open subscriptions per user ID: a JOINED event when a
//     user's first one opens, LEFT when its last one is closed.
//   - Events are domain values shared by every subscription; the transport
//     encodes each once (wire.Of) and sends the same bytes to all.
type Engine interface {
	// CanCreate gives rooms.ErrTooManyRooms when ownerID owns as many
	// rooms as allowed, without the atomicity of CreateRoom's check: a
	// cheap refusal before the password is hashed.
	CanCreate(ctx context.Context, ownerID string) error
	CreateRoom(ctx context.Context, name, passwordHash, ownerID string) (rooms.Room, error)
	Room(ctx context.Context, code string) (rooms.Room, error)
	Touch(ctx context.Context, code string) error
	DeleteRoom(ctx context.Context, code, ownerID string) error
	Subscribe(ctx context.Context, code string, member rooms.Member, open rooms.Open) (*rooms.Subscription, error)
	Publish(ctx context.Context, code string, sender rooms.Member, clientID, body string) (uint64, error)
	Users(ctx context.Context, code string) ([]rooms.User, error)
	// Flush waits until every message accepted so far has been handed to
	// its room's subscriptions.
	Flush(ctx context.Context) error
}
