package api

import (
	"context"
	"errors"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// errNoToken means the call carried no token in its metadata.
var errNoToken = errors.New("missing token: send `authorization: Bearer <jwt>` or `token: <jwt>`")

// errNoOpenToken means an Open on a transport without call metadata
// carried no room token.
var errNoOpenToken = errors.New("missing token: send the room token in Open.token")

// errNoOpen means the first Chat frame was not Open, or did not come in time.
var errNoOpen = errors.New("first message must be Open")

// errWrongUser means a Refresh carried a room token for another user.
var errWrongUser = errors.New("room token is for another user")

// errorDomain is the google.rpc.ErrorInfo domain of the service's errors.
const errorDomain = "grpcchatter.chat.v1"

// The google.rpc.ErrorInfo reasons, which tell a client what to do about
// a refusal (the README's "Status codes"): every RESOURCE_EXHAUSTED has
// one, so that a client never has to guess from the code alone.
const (
	// reasonSlowConsumer: the stream's queue overflowed; resume at once.
	reasonSlowConsumer = "SLOW_CONSUMER"
	// reasonRateLimited: a throttle refused; retry after the RetryInfo.
	reasonRateLimited = "RATE_LIMITED"
	// reasonStreamLimit: MAX_STREAMS_PER_USER streams are open; retry
	// after the RetryInfo, by when a vanished one has been dropped.
	reasonStreamLimit = "STREAM_LIMIT"
	// reasonRoomLimit: MAX_ROOMS_PER_USER rooms owned; delete one first.
	reasonRoomLimit = "ROOM_LIMIT"
	// reasonNoCode: no free short code; retry after the RetryInfo.
	reasonNoCode = "NO_CODE"
	// reasonRoomFull: the room has as many members as allowed; retry
	// after the RetryInfo.
	reasonRoomFull = "ROOM_FULL"
	// reasonStreamReplaced (with ABORTED): a newer stream of the same
	// user took this one's place; do not reconnect it.
	reasonStreamReplaced = "STREAM_REPLACED"
)

// streamLimitRetry is how long a client refused for MAX_STREAMS_PER_USER
// is asked to wait: by then a stream of its own that vanished without a
// word has missed its keepalive and been dropped (see KeepaliveTime).
const streamLimitRetry = KeepaliveTime + KeepaliveTimeout

// noCodeRetry is how long a client refused for want of a free short code
// is asked to wait. Codes come free as rooms are deleted or go idle and
// their tombstones expire; a retry draws new random codes anyway.
const noCodeRetry = 30 * time.Second

// roomFullRetry is how long a client refused because the room has
// MAX_ROOM_MEMBERS users online is asked to wait: places come free as
// members leave, and spreading the retries of a reconnect storm over
// seconds keeps a full room from being hammered.
const roomFullRetry = 10 * time.Second

// codeOf is the one table from sentinel errors to the status a client
// sees: the code, and for a refusal a client must act on, the ErrorInfo
// reason and the RetryInfo delay. An error that carries its own delay
// (retryDelayer, e.g. *rooms.ThrottledError) overrides the row's.
// The first row whose error matches (errors.Is) wins.
var codeOf = []struct {
	err    error
	code   codes.Code
	reason string        // ErrorInfo reason; "" adds no ErrorInfo
	retry  time.Duration // RetryInfo delay; 0 adds no RetryInfo
}{
	{errNoToken, codes.Unauthenticated, "", 0},
	{errNoOpenToken, codes.Unauthenticated, "", 0},
	{token.ErrExpired, codes.Unauthenticated, "", 0},
	{token.ErrMalformed, codes.Unauthenticated, "", 0},
	{token.ErrSignature, codes.Unauthenticated, "", 0},
	{token.ErrWrongKind, codes.Unauthenticated, "", 0},
	{rooms.ErrWrongRoom, codes.PermissionDenied, "", 0},
	{errWrongUser, codes.PermissionDenied, "", 0},
	{rooms.ErrNotOwner, codes.PermissionDenied, "", 0},
	{rooms.ErrWrongPassword, codes.PermissionDenied, "", 0},
	{rooms.ErrNotFound, codes.NotFound, "", 0},
	{rooms.ErrDeleted, codes.NotFound, "", 0},
	{rooms.ErrSlowConsumer, codes.ResourceExhausted, reasonSlowConsumer, 0},
	{rooms.ErrThrottled, codes.ResourceExhausted, reasonRateLimited, 0}, // the delay is the error's
	{rooms.ErrTooManyRooms, codes.ResourceExhausted, reasonRoomLimit, 0},
	{rooms.ErrTooManyStreams, codes.ResourceExhausted, reasonStreamLimit, streamLimitRetry},
	{rooms.ErrReplaced, codes.Aborted, reasonStreamReplaced, 0},
	{rooms.ErrNoCode, codes.ResourceExhausted, reasonNoCode, noCodeRetry},
	{rooms.ErrRoomFull, codes.ResourceExhausted, reasonRoomFull, roomFullRetry},
	{rooms.ErrRoomTokenExpired, codes.Unauthenticated, "", 0},
	{rooms.ErrMalformed, codes.InvalidArgument, "", 0},
	{rooms.ErrShuttingDown, codes.Unavailable, "", 0},
	{errNoOpen, codes.InvalidArgument, "", 0},
	{errBinaryFrame, codes.InvalidArgument, "", 0},
	{errClientGone, codes.Canceled, "", 0},
	{context.Canceled, codes.Canceled, "", 0},
	{context.DeadlineExceeded, codes.DeadlineExceeded, "", 0},
}

// retryDelayer is an error that knows when a retry may succeed, such as
// a throttle's refusal.
type retryDelayer interface {
	RetryDelay() time.Duration
}

// toStatus maps an error from a handler to the status the client sees. It
// reports internal=true for errors that are not the client's doing; those
// are answered with a generic message and must be logged by the caller.
func toStatus(err error) (st *status.Status, internal bool) {
	if err == nil {
		return status.New(codes.OK, ""), false
	}
	if errors.Is(err, rooms.ErrUnavailable) {
		// A store failed: the client may retry, and learns nothing of the
		// store (its address is in the cause), which is logged.
		return status.New(codes.Unavailable, rooms.ErrUnavailable.Error()), true
	}
	var inv *rooms.InvalidError
	if errors.As(err, &inv) {
		return status.New(codes.InvalidArgument, inv.Error()), false
	}
	for _, m := range codeOf {
		if !errors.Is(err, m.err) {
			continue
		}
		retry := m.retry
		var rd retryDelayer
		if errors.As(err, &rd) {
			retry = rd.RetryDelay()
		}
		return withDetails(status.New(m.code, err.Error()), m.reason, retry), false
	}
	// Errors that already carry a status come from gRPC itself, e.g. Recv
	// reporting an over-size message or a cancelled stream.
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st, false
	}
	return status.New(codes.Internal, "internal error"), true
}

// withDetails adds an ErrorInfo of reason, if any, and a RetryInfo of
// retry, if positive.
func withDetails(st *status.Status, reason string, retry time.Duration) *status.Status {
	var details []protoadapt.MessageV1
	if reason != "" {
		details = append(details, &errdetails.ErrorInfo{Reason: reason, Domain: errorDomain})
	}
	if retry > 0 {
		details = append(details, &errdetails.RetryInfo{RetryDelay: durationpb.New(retry)})
	}
	if len(details) == 0 {
		return st
	}
	d, err := st.WithDetails(details...)
	if err != nil { // only for an OK status, which has no details
		return st
	}
	return d
}
