package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// ErrTimeout is wrapped, together with rooms.ErrUnavailable, in the error
// of a call that ran out of Config.Timeout, as opposed to a call whose
// caller's own context ended first.
var ErrTimeout = sqldb.ErrTimeout

// domain are the sentinels that a store method decides itself; they pass
// through classify unchanged.
var domain = []error{rooms.ErrNotFound, rooms.ErrNotOwner, rooms.ErrCodeTaken, rooms.ErrTooManyRooms, rooms.ErrSeqConflict}

// classify maps a database error to what the engine can act on: what
// sqldb.Classify finds to be an outage (our own Config.Timeout, a
// connection, busy or closed database) to rooms.ErrUnavailable, since
// retrying later is the right answer to it. A caller that gave up gets
// its context.Canceled back; anything else is a bug or a broken schema
// and stays an unclassified error. Constraint violations are mapped by
// the callers, with sqldb.Unique, since they know what the constraint
// means.
func classify(ctx context.Context, err error) error {
	for _, d := range domain {
		if errors.Is(err, d) {
			return err
		}
	}
	return unavailable(sqldb.Classify(ctx, err))
}

// unavailable adds rooms.ErrUnavailable to an error that sqldb found to
// mean "try again later".
func unavailable(err error) error {
	if errors.Is(err, sqldb.ErrUnavailable) {
		return fmt.Errorf("%w: %w", rooms.ErrUnavailable, err)
	}
	return err
}
