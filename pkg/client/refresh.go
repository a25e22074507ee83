package client

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
)

// refreshLoop renews the stream's room token in-band until the stream
// ends: at two thirds of the token's remaining life, which leaves a third
// of it for the join and the round trip, it joins the room again for a new
// token and hands it to the writer as a Refresh, then waits for the
// service's Refreshed to schedule the next one. The stream carries on
// throughout: no reconnection, no presence change.
//
// Only a service that tells when the stream's token expires (Opened's
// token_expires_at) knows Refresh. For any other, and whenever a refresh
// fails, the loop gives up and the session falls back on what it does
// anyway: the service ends the stream when its token expires, and run
// joins again and resumes on a new stream.
func (s *session) refreshLoop(cn *conn) {
	// Not the stream's own context, which carries its room token as
	// metadata that a join must not send; but one that ends with it.
	ctx, cancel := context.WithCancel(s.ctx)
	defer cancel()
	defer context.AfterFunc(cn.stream.Context(), cancel)()
	var exp time.Time
	if at := cn.opened.GetTokenExpiresAt(); at != nil {
		exp = at.AsTime()
	}
	for !exp.IsZero() {
		left := time.Until(exp)
		if left <= 0 {
			// By the Client's clock the token already expired: the
			// clocks disagree by more than its life, or the service
			// did not extend it. Refreshing would only loop.
			s.log.Info("room token expiry already past; not refreshing in-band", slog.Time("expires_at", exp))
			return
		}
		t := time.NewTimer(left * 2 / 3)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return
		}
		jctx, jcancel := context.WithTimeout(ctx, s.c.cfg.openTimeout)
		adm, err := s.renewRoomToken(jctx)
		jcancel()
		if err != nil {
			if ctx.Err() == nil {
				s.log.Info("renewing the room token failed; the stream will be reopened when it expires", slog.Any("error", err))
			}
			return
		}
		select {
		case <-cn.refreshed: // one nobody asked for must not pass as the answer
		default:
		}
		cn.refreshing.Store(true)
		select {
		case cn.refreshes <- adm.token:
		case <-ctx.Done():
			return
		}
		var next time.Time
		select {
		case next = <-cn.refreshed:
		case <-ctx.Done():
			return
		}
		cn.refreshing.Store(false)
		if next.IsZero() {
			next = adm.expiresAt
		}
		if !next.After(exp) {
			s.log.Info("Refreshed did not extend the stream's room token; not refreshing in-band", slog.Time("expires_at", next))
			return
		}
		s.log.Debug("stream's room token refreshed", slog.Time("expires_at", next))
		exp = next
	}
}

// refreshRefused is why a stream ended, as run should see it. A service
// that refuses a Refresh ends the stream as Unauthenticated, or as
// PermissionDenied for a token of another room or user; since the Client
// sent a token for its own room and user, that too is a refusal to handle
// as an expired token, by joining again and reopening the stream, rather
// than as the end of the session. Should the user have lost the room, the
// join says so.
func refreshRefused(cn *conn, err error) error {
	if !cn.refreshing.Load() || !errors.Is(err, ErrPermissionDenied) {
		return err
	}
	var e *Error
	msg := err.Error()
	if errors.As(err, &e) {
		msg = e.Message
	}
	return &Error{Kind: ErrUnauthenticated, Message: "the service refused the stream's new room token: " + msg, Code: codes.Unauthenticated}
}
