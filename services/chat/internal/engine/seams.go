package engine

import (
	"context"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The engine stands on three seams, each small enough to be implemented by
// an in-memory type, a SQL database (internal/sqlstore) or a store shared
// by several instances. internal/contract holds one test suite per seam
// that every implementation must pass; the rules below are what it checks.

// CreateRules are the registry's conditions for a new room.
type CreateRules struct {
	// MaxOwned bounds the rooms one owner may have; 0 is unlimited.
	MaxOwned int
	// ReuseAfter is how long the code of a deleted room stays unused: room
	// tokens name their room only by code, so it must exceed the room
	// token lifetime (plus clock leeway).
	ReuseAfter time.Duration
}

// Registry keeps the rooms and the codes of deleted ones.
//
//   - Codes are canonical (upper case) and compared exactly.
//   - Every change is durable when the call returns; a call that fails
//     changes nothing.
//   - Create fails with rooms.ErrCodeTaken when r.Code names a room or a
//     room deleted less than rules.ReuseAfter before r.CreatedAt, and with
//     rooms.ErrTooManyRooms when r.OwnerID owns rules.MaxOwned rooms
//     already. Both checks and the insert are atomic: concurrent Creates
//     never exceed the limit or share a code.
//   - Room, Touch and Delete give rooms.ErrNotFound for an unknown code;
//     Delete gives rooms.ErrNotOwner unless ownerID owns the room.
//   - Touch moves the room's IdleSince forward to at, never back.
//   - DeleteIdle deletes the room only if its IdleSince is before
//     idleBefore (atomically with the check) and reports whether it did.
//   - A deleted room is gone from Room, Idle and Count at once, and its
//     code is tombstoned at the deletion time.
type Registry interface {
	Create(ctx context.Context, r rooms.Room, rules CreateRules) error
	Room(ctx context.Context, code string) (rooms.Room, error)
	Touch(ctx context.Context, code string, at time.Time) error
	Delete(ctx context.Context, code, ownerID string, at time.Time) error
	DeleteIdle(ctx context.Context, code string, idleBefore, at time.Time) (bool, error)
	// Idle lists the codes of the rooms whose IdleSince is before t.
	Idle(ctx context.Context, before time.Time) ([]string, error)
	// Count is the number of rooms.
	Count(ctx context.Context) (int, error)
	// Owned is the number of rooms ownerID owns: what Create's MaxOwned
	// check counts, read without it, so that a caller can refuse a room
	// before paying for its password hash. Create stays the authority.
	Owned(ctx context.Context, ownerID string) (int, error)
}

// Log is the rooms' message history.
//
//   - Epoch names the history: it stays the same for as long as the log
//     keeps its messages, across restarts of the service. A log whose
//     history does not survive (the in-memory one) has a new epoch each
//     time it is made, so that clients can tell their sequences are void.
//   - Append stores msgs, all in the log's epoch, durably before it
//     returns. The messages of one room within a call are consecutive, and
//     the first of each room follows that room's head; otherwise Append
//     fails with rooms.ErrSeqConflict and stores nothing of that room. A
//     failed Append stores nothing of any room, but for a log shared by
//     instances, which cannot be atomic across rooms: it stores each
//     room's run entirely or not at all, and the engine reads back what a
//     failed call may have stored.
//   - Every field of a Message round-trips exactly, SentAt to the
//     microsecond, SenderID and ClientID included, so that an engine can
//     recognise a repeated client message ID after a restart.
//   - Head is the room's last sequence (0 when it has none, or after Drop).
//   - Since returns the room's messages after `after`, oldest first, at
//     most limit (0: no limit). The log keeps at least the latest Retain
//     messages of each room (its constructor's setting) and may drop older
//     ones: a caller tells that something is gone from the first sequence
//     it gets.
//   - Drop forgets a room's messages.
type Log interface {
	Epoch() string
	Append(ctx context.Context, msgs []rooms.Message) error
	Head(ctx context.Context, code string) (uint64, error)
	Since(ctx context.Context, code string, after uint64, limit int) ([]rooms.Message, error)
	Drop(ctx context.Context, code string) error
}

// JoinLimits are the bounds a Presence Join checks; 0 is unlimited.
type JoinLimits struct {
	// Streams bounds one user's open streams in a room.
	Streams int
	// Members bounds the users online in a room.
	Members int
}

// Presence counts each user's open streams per room, for every instance
// that shares it. Each instance (holder) counts its own streams under a
// lease: counts whose holder has not renewed within the implementation's
// TTL no longer count, so the streams of an instance that crashed
// disappear within the TTL.
//
//   - Join counts one more stream of m in the room and reports whether it
//     is m's only one there now. It fails, counting nothing, with
//     rooms.ErrTooManyStreams when m has lim.Streams streams there
//     already, and with rooms.ErrRoomFull when m has none there and
//     lim.Members users have (each check across holders, atomically with
//     the count, and only when its limit is above 0). An implementation
//     may count among the members users whose holder's lease has lapsed
//     and who are not forgotten yet: the bound is then approximate, never
//     exceeded.
//   - Leave uncounts one of this holder's streams of m and reports whether
//     m has none left in the room; leaving a stream never joined does
//     nothing and reports false.
//   - Users lists the room's users with at least one counted stream,
//     sorted by name, with their stream counts.
//   - Renew extends the lease of all of this holder's counts.
//
// The engine calls Join and Leave with the room's lock held, so that
// presence events keep the room's order: they must not wait long.
type Presence interface {
	Join(ctx context.Context, room string, m rooms.Member, lim JoinLimits) (first bool, err error)
	Leave(ctx context.Context, room string, m rooms.Member) (last bool, err error)
	Users(ctx context.Context, room string) ([]rooms.User, error)
	Renew(ctx context.Context) error
}
