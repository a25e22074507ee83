package api

import (
	"context"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Engine is the room registry, message sequencing, history and fan-out
// behind the gRPC transport. The in-memory engine serves one instance; an
// engine shared by several instances (e.g. over NATS JetStream) must fit
// the same contract:
//
//   - Codes are canonical (upper case); unknown or deleted rooms give
//     rooms.ErrNotFound, DeleteRoom by anyone but the owner rooms.ErrNotOwner.
//     Rooms survive a restart of the service. Every registry change is
//     durable before it takes effect: a failed write changes nothing.
//   - The code of a deleted room is not given to a new room for longer than
//     a room token lives, so an old token never opens someone else's room.
//   - A room with no open subscription and no Touch (a join) for the idle
//     TTL is deleted, and the idle clock survives a restart.
//   - CreateRoom gives rooms.ErrTooManyRooms past the per-user limit and
//     rooms.ErrNoCode when it finds no free code; Subscribe gives
//     rooms.ErrTooManyStreams past the per-user stream limit of a room.
//   - Publish assigns each message of a room the next sequence, strictly
//     increasing from 1 without gaps within an epoch, and every
//     subscription of the room receives the room's events in that one
//     order, the sender's own subscriptions included. A non-empty client
//     message ID that the same user ID gave a message still in the room's
//     history makes Publish a no-op (nothing recorded or delivered, no
//     error) returning that message's sequence, so resends are safe.
//   - Subscribe registers the subscription and snapshots the replay
//     atomically: with Resume from the current epoch and a point still in
//     history the subscription holds every later message exactly once
//     (rooms.RecoveryComplete), otherwise it reports rooms.RecoveryFailed
//     and carries on live. Opened.Head is the last sequence before live
//     delivery starts.
//   - Delivery never blocks the publisher: a subscription whose queue
//     overflows ends with rooms.ErrSlowConsumer. Deleting a room ends its
//     subscriptions with a RoomDeleted event and rooms.ErrDeleted.
//   - Presence counts open subscriptions per user ID: a JOINED event when a
//     user's first one opens, LEFT when its last one is closed; Users
//     lists users with at least one, sorted by name.
//   - Events are encoded once per room (wire.Event) and shared by all
//     subscriptions; the transport sends them without re-marshalling.
type Engine interface {
	CreateRoom(ctx context.Context, name, passwordHash, ownerID string) (rooms.Room, error)
	Room(ctx context.Context, code string) (rooms.Room, error)
	Touch(ctx context.Context, code string) error
	DeleteRoom(ctx context.Context, code, ownerID string) error
	Subscribe(ctx context.Context, code string, member rooms.Member, resume *rooms.Resume) (*rooms.Subscription, error)
	Publish(ctx context.Context, code string, sender rooms.Member, clientID, body string) (uint64, error)
	Users(ctx context.Context, code string) ([]rooms.User, error)
}
