// Package rooms holds the chat domain: rooms, their rules and sentinel
// errors, and the bounded per-stream queue that every engine delivers into.
package rooms

import "time"

// Room is a chat room as the registry stores and persists it.
type Room struct {
	// Code is the canonical (upper-case) short code.
	Code string `json:"short_code"`
	// Name is the display name.
	Name string `json:"name"`
	// PasswordHash is an argon2id PHC string; the password itself is never kept.
	PasswordHash string `json:"password_hash"`
	// OwnerID is the user ID of the creator, the only one who may delete it.
	OwnerID string `json:"owner_id"`
	// CreatedAt is when the room was created.
	CreatedAt time.Time `json:"created_at"`
	// IdleSince is when the room last had activity (its last stream
	// closed, or a user joined), so that a restart does not reset the idle
	// clock. Zero in files written before it was kept.
	IdleSince time.Time `json:"idle_since,omitzero"`
}

// Tombstone is the short code of a deleted room, kept so that the code is
// not given to a new room while room tokens for the old one may still be
// valid: a room token names its room only by code.
type Tombstone struct {
	Code      string    `json:"short_code"`
	DeletedAt time.Time `json:"deleted_at"`
}

// Registry is everything that survives a restart.
type Registry struct {
	Rooms      []Room
	Tombstones []Tombstone
}

// Member identifies the user behind a stream.
type Member struct {
	ID   string
	Name string
}

// User is one user online in a room.
type User struct {
	Name string
	// Streams is how many Chat streams the user has open in the room.
	Streams uint32
}

// Open is what a stream asks for when it opens.
type Open struct {
	// Resume, if not nil, asks to replay what the stream missed.
	Resume *Resume
	// Backlog asks a stream that does not resume for up to this many of
	// the room's latest messages, capped at the room's history.
	Backlog int
}

// Resume is a stream's request to replay what it missed.
type Resume struct {
	Epoch string
	After uint64
}

// Recovery tells how a Resume request was met.
type Recovery int

// Recovery outcomes, mirroring the API's enum.
const (
	RecoveryNotRequested Recovery = iota + 1
	RecoveryComplete
	RecoveryFailed
)

// Opened describes the room at the moment a stream joined it.
type Opened struct {
	Code     string
	Name     string
	Epoch    string
	Head     uint64
	Recovery Recovery
	// Backlog is how many earlier messages the stream gets before live
	// events: the replay of a resume, or the backlog asked for in Open.
	Backlog int
	Users   []User
}
