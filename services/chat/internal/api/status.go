package api

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/grpcchatter/grpcchatter/pkg/token"
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

// codeOf is the one table from sentinel errors to status codes.
var codeOf = []struct {
	err  error
	code codes.Code
}{
	{errNoToken, codes.Unauthenticated},
	{errNoOpenToken, codes.Unauthenticated},
	{token.ErrExpired, codes.Unauthenticated},
	{token.ErrMalformed, codes.Unauthenticated},
	{token.ErrSignature, codes.Unauthenticated},
	{token.ErrWrongKind, codes.Unauthenticated},
	{rooms.ErrWrongRoom, codes.PermissionDenied},
	{errWrongUser, codes.PermissionDenied},
	{rooms.ErrNotOwner, codes.PermissionDenied},
	{rooms.ErrWrongPassword, codes.PermissionDenied},
	{rooms.ErrNotFound, codes.NotFound},
	{rooms.ErrDeleted, codes.NotFound},
	{rooms.ErrSlowConsumer, codes.ResourceExhausted},
	{rooms.ErrTooManyRooms, codes.ResourceExhausted},
	{rooms.ErrTooManyStreams, codes.ResourceExhausted},
	{rooms.ErrReplaced, codes.Aborted},
	{rooms.ErrNoCode, codes.ResourceExhausted},
	{rooms.ErrRoomTokenExpired, codes.Unauthenticated},
	{rooms.ErrMalformed, codes.InvalidArgument},
	{rooms.ErrShuttingDown, codes.Unavailable},
	{errNoOpen, codes.InvalidArgument},
	{errBinaryFrame, codes.InvalidArgument},
	{errClientGone, codes.Canceled},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},
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
	var thr *rooms.ThrottledError
	if errors.As(err, &thr) {
		st := status.New(codes.ResourceExhausted, thr.Error())
		if d, derr := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(thr.RetryAfter)}); derr == nil {
			st = d
		}
		return st, false
	}
	for _, m := range codeOf {
		if errors.Is(err, m.err) {
			return status.New(m.code, err.Error()), false
		}
	}
	// Errors that already carry a status come from gRPC itself, e.g. Recv
	// reporting an over-size message or a cancelled stream.
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown {
		return st, false
	}
	return status.New(codes.Internal, "internal error"), true
}
