package rooms

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors of the chat domain. The transport maps each to one status
// code in a single table.
var (
	// ErrNotFound means no room has the given short code.
	ErrNotFound = errors.New("room not found")
	// ErrNotOwner means someone other than the owner tried to delete a room.
	ErrNotOwner = errors.New("only the room's owner may delete it")
	// ErrWrongRoom means a room token was presented for another room.
	ErrWrongRoom = errors.New("room token is for another room")
	// ErrWrongPassword means the room password did not match.
	ErrWrongPassword = errors.New("wrong room password")
	// ErrSlowConsumer means a stream fell further behind than its queue allows.
	ErrSlowConsumer = errors.New("stream fell too far behind; resume from the last sequence received")
	// ErrDeleted means the room was deleted while the stream was open.
	ErrDeleted = errors.New("room deleted")
	// ErrShuttingDown means the service is stopping; clients should reconnect.
	ErrShuttingDown = errors.New("service shutting down; reconnect and resume")
	// ErrNoCode means no free short code was found: the code space is
	// (nearly) exhausted.
	ErrNoCode = errors.New("no free short code; try again later")
	// ErrTooManyRooms means the user owns as many rooms as allowed.
	ErrTooManyRooms = errors.New("too many rooms owned by this user; delete one first")
	// ErrTooManyStreams means the user has as many streams open in the
	// room as allowed.
	ErrTooManyStreams = errors.New("too many open streams for this user in this room")
	// ErrRoomFull means the room has as many users online as allowed
	// (MAX_ROOM_MEMBERS): a user not online there yet may retry once some
	// have left.
	ErrRoomFull = errors.New("room full; try again later")
	// ErrReplaced ends a stream that a newer stream of the same user in
	// the same room replaced, because the user had as many streams open
	// there as allowed: the user opened the room elsewhere, so the client
	// should not reconnect.
	ErrReplaced = errors.New("stream replaced by a newer stream of the same user in this room")
	// ErrRoomTokenExpired ends a stream whose room token has expired.
	ErrRoomTokenExpired = errors.New("room token expired; join again")
	// ErrCodeTaken means a short code names a room, or a room deleted too
	// recently for its code to be given out again.
	ErrCodeTaken = errors.New("short code taken")
	// ErrSeqConflict means a message log refused an append whose sequence
	// does not follow the room's head: another writer appended first.
	ErrSeqConflict = errors.New("message sequence conflict")
	// ErrUnavailable means a store the service depends on failed; the call
	// may succeed later.
	ErrUnavailable = errors.New("chat storage unavailable; try again later")
	// ErrMalformed means a request could not be decoded.
	ErrMalformed = errors.New("malformed request")
	// ErrThrottled is what every *ThrottledError matches.
	ErrThrottled = errors.New("throttled")
)

// InvalidError reports a bad input field.
type InvalidError struct {
	Field  string
	Reason string
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Reason }

// Invalid returns an *InvalidError for field.
func Invalid(field, format string, args ...any) error {
	return &InvalidError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// ThrottledError means a throttle refused the call: too many wrong
// passwords, or rooms created too fast. A retry after RetryAfter may
// succeed.
type ThrottledError struct {
	// What was tried too often, for the message: "wrong room passwords".
	What       string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	// Whole seconds, rounded up: "retry in 0s" would invite a retry that
	// is refused again.
	secs := max(1, (e.RetryAfter+time.Second-1)/time.Second)
	return fmt.Sprintf("too many %s; retry in %s", e.What, secs*time.Second)
}

// Unwrap makes every ThrottledError match ErrThrottled.
func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// RetryDelay is how long the caller should wait before trying again.
func (e *ThrottledError) RetryDelay() time.Duration { return e.RetryAfter }
