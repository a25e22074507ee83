package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Errors of the Client itself, returned when a method is called in the wrong
// state.
var (
	// ErrNotLoggedIn means the method needs a user token: call LogIn first.
	ErrNotLoggedIn = errors.New("client: not logged in")
	// ErrNotJoined means the method needs an open room: call JoinChatRoom
	// first (for the Client's own Send, Receive, ListChatRoomUsers and
	// Disconnect), or the Room was left already, or was not returned by
	// the Client.
	ErrNotJoined = errors.New("client: not joined to a chat room")
	// ErrAlreadyJoined means JoinChatRoom was called while its room is
	// open (Disconnect first), or JoinRoom or JoinChatRoom for a room the
	// Client is in already.
	ErrAlreadyJoined = errors.New("client: already joined to a chat room")
	// ErrDisconnected is returned by Receive and Send once the room was
	// left (Room.Leave, Disconnect) or the Client closed.
	ErrDisconnected = errors.New("client: disconnected")
	// ErrClosed is returned by every method once Close was called.
	ErrClosed = errors.New("client: closed")
	// ErrNotCreated is returned by every method of a Client that New did not
	// return, such as the zero value.
	ErrNotCreated = errors.New("client: not created with client.New")
)

// Errors reported by the services. The *Error values that carry them match
// with errors.Is.
var (
	// ErrUnauthenticated means bad credentials, or an invalid or expired token.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrNotFound means the room does not exist or was deleted.
	ErrNotFound = errors.New("not found")
	// ErrRoomDeleted ends a session whose room its owner deleted. It also
	// matches ErrNotFound.
	ErrRoomDeleted = fmt.Errorf("room deleted: %w", ErrNotFound)
	// ErrPermissionDenied means the caller may not do this (e.g. delete a room
	// it does not own).
	ErrPermissionDenied = errors.New("permission denied")
	// ErrAlreadyTaken means the user name is already registered.
	ErrAlreadyTaken = errors.New("already taken")
	// ErrInvalidArgument means the request was rejected as malformed: an empty
	// or too long name, password or message.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrRateLimited means too many attempts (wrong passwords, logins, rooms
	// created), or the chat service found no free room code for now (Reason
	// ReasonNoCode); Error.RetryAfter tells how long to wait when the
	// service said so.
	ErrRateLimited = errors.New("rate limited")
	// ErrSlowConsumer is the Err of a *Connection event when the service
	// dropped the stream because the Client fell too far behind reading it:
	// the network did not carry the room's events as fast as they came.
	// (An application that does not call Receive does not cause it: see
	// WithEventBuffer.) The Client resumes by itself.
	ErrSlowConsumer = errors.New("stream fell too far behind")
	// ErrRoomLimit means the user owns as many rooms as the chat service
	// allows (MAX_ROOMS_PER_USER): CreateChatRoom succeeds again once the
	// user deletes one. Waiting does not help, and the Client does not
	// retry.
	ErrRoomLimit = errors.New("room limit reached")
	// ErrStreamLimit means the user has as many streams open in the room as
	// the chat service allows (MAX_STREAMS_PER_USER), none of which it could
	// replace. JoinRoom and JoinChatRoom return it, with the RetryAfter
	// the service asked for; a session reopening its stream waits that
	// long and tries again (a *Connection event whose Err matches it), by
	// when a stream of the user's that vanished has been dropped.
	ErrStreamLimit = errors.New("stream limit reached")
	// ErrRoomFull means the room has as many members online as the chat
	// service allows. JoinRoom and JoinChatRoom return it, with
	// RetryAfter; a session reopening its stream waits that long and
	// tries again.
	ErrRoomFull = errors.New("room full")
	// ErrReplaced ends a session whose stream the chat service closed
	// because a newer stream of the same user took its place (the user
	// joined the room elsewhere, at its stream limit). The Client does not
	// reconnect it: that would replace the newer stream in turn.
	ErrReplaced = errors.New("stream replaced by a newer one of the same user")
	// ErrUnavailable means the service is down, shutting down or overloaded.
	ErrUnavailable = errors.New("service unavailable")
	// ErrServer is any other failure on the service's side.
	ErrServer = errors.New("server error")
)

// Error is a failure reported by a service.
type Error struct {
	// Kind is one of the sentinel errors above; errors.Is matches it.
	Kind error
	// Message is the service's explanation.
	Message string
	// HTTPStatus is the auth service's status code, 0 for gRPC errors.
	HTTPStatus int
	// Code is the chat service's status code, codes.OK for HTTP errors.
	Code codes.Code
	// RetryAfter is how long the service asked to wait, 0 when unknown.
	RetryAfter time.Duration
	// Reason is the chat service's reason for the error (its
	// google.rpc.ErrorInfo), one of the Reason constants, or "" when it
	// gave none. Kind already reflects it.
	Reason string
}

// The reasons the chat service gives for a refusal (Error.Reason).
const (
	// ReasonSlowConsumer: the stream fell too far behind (ErrSlowConsumer).
	ReasonSlowConsumer = "SLOW_CONSUMER"
	// ReasonRateLimited: a throttle refused (ErrRateLimited).
	ReasonRateLimited = "RATE_LIMITED"
	// ReasonStreamLimit: too many streams of the user (ErrStreamLimit).
	ReasonStreamLimit = "STREAM_LIMIT"
	// ReasonRoomLimit: too many rooms owned by the user (ErrRoomLimit).
	ReasonRoomLimit = "ROOM_LIMIT"
	// ReasonNoCode: no free room code for now (ErrRateLimited).
	ReasonNoCode = "NO_CODE"
	// ReasonRoomFull: the room is full (ErrRoomFull).
	ReasonRoomFull = "ROOM_FULL"
	// ReasonStreamReplaced: a newer stream replaced this one (ErrReplaced).
	ReasonStreamReplaced = "STREAM_REPLACED"
)

// errorDomain is the ErrorInfo domain of the chat service's reasons; an
// ErrorInfo of another domain (a proxy's) is not the service's to read.
const errorDomain = "grpcchatter.chat.v1"

// reasonKinds maps the chat service's reasons to sentinels; they take
// precedence over the status code's.
var reasonKinds = map[string]error{
	ReasonSlowConsumer:   ErrSlowConsumer,
	ReasonRateLimited:    ErrRateLimited,
	ReasonStreamLimit:    ErrStreamLimit,
	ReasonRoomLimit:      ErrRoomLimit,
	ReasonNoCode:         ErrRateLimited,
	ReasonRoomFull:       ErrRoomFull,
	ReasonStreamReplaced: ErrReplaced,
}

func (e *Error) Error() string {
	msg := e.Kind.Error()
	if e.Message != "" {
		msg += ": " + e.Message
	}
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.RetryAfter)
	}
	return msg
}

// Unwrap returns Kind so that errors.Is matches the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// RetryAfter returns the delay a rate-limited request asked for, if err
// carries one.
func RetryAfter(err error) (time.Duration, bool) {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter, true
	}
	return 0, false
}

// httpKinds maps the auth service's status codes to sentinels.
var httpKinds = map[int]error{
	http.StatusBadRequest:            ErrInvalidArgument,
	http.StatusUnauthorized:          ErrUnauthenticated,
	http.StatusForbidden:             ErrPermissionDenied,
	http.StatusConflict:              ErrAlreadyTaken,
	http.StatusRequestEntityTooLarge: ErrInvalidArgument,
	http.StatusUnsupportedMediaType:  ErrInvalidArgument,
	http.StatusTooManyRequests:       ErrRateLimited,
	http.StatusBadGateway:            ErrUnavailable,
	http.StatusServiceUnavailable:    ErrUnavailable,
	http.StatusGatewayTimeout:        ErrUnavailable,
}

// fromHTTP turns an unsuccessful auth response into an *Error. It reads (a
// bounded part of) the body for the service's {"error": "..."} message.
func fromHTTP(resp *http.Response) error {
	kind, ok := httpKinds[resp.StatusCode]
	if !ok {
		kind = ErrServer
	}
	e := &Error{Kind: kind, HTTPStatus: resp.StatusCode}
	if resp.StatusCode == http.StatusNotFound && resp.Request != nil {
		// The auth service has no resource that can be missing: a 404 means
		// the URL points elsewhere. It must not read as "room not found".
		e.Message = fmt.Sprintf("%s %s is not an auth service endpoint; check the auth URL", resp.Request.Method, resp.Request.URL)
		return e
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	var payload struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &payload) == nil && payload.Error != "" {
		e.Message = payload.Error
	} else {
		e.Message = strings.TrimSpace(string(body))
		if e.Message == "" {
			e.Message = http.StatusText(resp.StatusCode)
		}
	}
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && secs >= 0 {
			e.RetryAfter = time.Duration(min(secs, int(MaxRetryAfter/time.Second))) * time.Second
		} else if t, err := http.ParseTime(s); err == nil {
			e.RetryAfter = capRetry(time.Until(t))
		}
	}
	return e
}

// grpcKinds maps the chat service's status codes to sentinels.
var grpcKinds = map[codes.Code]error{
	codes.Unauthenticated:    ErrUnauthenticated,
	codes.PermissionDenied:   ErrPermissionDenied,
	codes.NotFound:           ErrNotFound,
	codes.InvalidArgument:    ErrInvalidArgument,
	codes.OutOfRange:         ErrInvalidArgument,
	codes.FailedPrecondition: ErrInvalidArgument,
	codes.AlreadyExists:      ErrAlreadyTaken,
	codes.ResourceExhausted:  ErrRateLimited,
	codes.Unavailable:        ErrUnavailable,
}

// fromGRPC turns a gRPC error into an *Error. Context errors pass through
// unchanged so that callers can test for context.Canceled.
func fromGRPC(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	switch st.Code() {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	e := &Error{Message: st.Message(), Code: st.Code()}
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.RetryInfo:
			if d.GetRetryDelay() != nil {
				e.RetryAfter = capRetry(d.GetRetryDelay().AsDuration())
			}
		case *errdetails.ErrorInfo:
			if d.GetDomain() == errorDomain {
				e.Reason = d.GetReason()
			}
		}
	}
	if e.Kind, ok = reasonKinds[e.Reason]; !ok {
		if e.Kind, ok = grpcKinds[st.Code()]; !ok {
			e.Kind = ErrServer
		}
	}
	return e
}

// MaxRetryAfter bounds a retry delay a service asks for, so that a wrong
// or hostile value cannot stall a Client's reconnection indefinitely.
const MaxRetryAfter = 5 * time.Minute

func capRetry(d time.Duration) time.Duration { return max(0, min(d, MaxRetryAfter)) }
