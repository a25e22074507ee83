package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// CreateChatRoom creates a room owned by the caller. Every refusal comes
// before the password is hashed (argon2id, tens of milliseconds of a
// core): the input, the caller's create rate (CreateLimiter) and the
// rooms it owns (MAX_ROOMS_PER_USER, checked again atomically by the
// store).
func (s *Server) CreateChatRoom(ctx context.Context, req *chatv1.CreateChatRoomRequest) (*chatv1.CreateChatRoomResponse, error) {
	u, err := s.userFrom(ctx)
	if err != nil {
		return nil, err
	}
	name, err := rooms.NormalizeName(req.GetName())
	if err != nil {
		return nil, err
	}
	if err := rooms.ValidatePassword(req.GetPassword()); err != nil {
		return nil, err
	}
	wait, err := s.cfg.CreateLimiter.Allow(ctx, u.ID, s.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("create throttle: %w", err)
	}
	if wait > 0 {
		return nil, &rooms.ThrottledError{What: "rooms created", RetryAfter: wait}
	}
	if err := s.engine.CanCreate(ctx, u.ID); err != nil {
		return nil, err
	}
	hash, err := s.cfg.Hasher.Hash(ctx, req.GetPassword())
	if err != nil {
		return nil, err
	}
	r, err := s.engine.CreateRoom(ctx, name, hash, u.ID)
	if err != nil {
		return nil, err
	}
	return &chatv1.CreateChatRoomResponse{ShortCode: r.Code, Name: r.Name}, nil
}

// JoinChatRoom checks the room password and issues a room token.
//
// Wrong passwords are limited per user and room, per user across rooms
// (unknown codes too, so that codes cannot be probed for free) and per
// room across users, except the room's owner: others' failures must not
// lock the owner out of their own room, so the owner's joins neither
// count toward nor are refused by the per-room limit. The room is looked
// up first, which costs no hash, to know its owner.
func (s *Server) JoinChatRoom(ctx context.Context, req *chatv1.JoinChatRoomRequest) (*chatv1.JoinChatRoomResponse, error) {
	u, err := s.userFrom(ctx)
	if err != nil {
		return nil, err
	}
	code, err := rooms.NormalizeCode(req.GetShortCode())
	if err != nil {
		return nil, err
	}
	if err := rooms.ValidatePassword(req.GetPassword()); err != nil {
		return nil, err
	}
	r, err := s.engine.Room(ctx, code)
	if errors.Is(err, rooms.ErrNotFound) {
		// A throttled user gets RATE_LIMITED whether or not the code
		// exists, so that throttling does not tell codes apart.
		release, lerr := s.acquire(ctx, []limit{{s.cfg.UserLimiter, u.ID}})
		if lerr != nil {
			return nil, lerr
		}
		release(true)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	// Reserve the attempt before hashing, so that guesses in flight count
	// toward the limits and parallel guesses get no more verifications.
	limits := []limit{{s.cfg.Limiter, u.ID + "\x00" + code}, {s.cfg.UserLimiter, u.ID}}
	if u.ID != r.OwnerID {
		limits = append(limits, limit{s.cfg.RoomLimiter, code})
	}
	release, err := s.acquire(ctx, limits)
	if err != nil {
		return nil, err
	}
	ok, _, err := s.cfg.Hasher.Verify(ctx, req.GetPassword(), r.PasswordHash)
	if err != nil {
		release(false)
		return nil, err
	}
	release(!ok)
	if !ok {
		return nil, rooms.ErrWrongPassword
	}
	if err := s.cfg.Limiter.Reset(ctx, u.ID+"\x00"+code); err != nil {
		s.cfg.Logger.Warn("reset join throttle", zap.Error(err))
	}
	if err := s.engine.Touch(ctx, r.Code); err != nil {
		return nil, err
	}
	tok, exp, err := s.cfg.Signer.IssueRoom(u.ID, u.Name, r.Code, s.cfg.RoomTokenTTL)
	if err != nil {
		return nil, err
	}
	return &chatv1.JoinChatRoomResponse{Token: tok, ExpiresAt: timestamppb.New(exp), ShortCode: r.Code, Name: r.Name}, nil
}

// ListChatRoomUsers lists the users with an open stream in the token's room.
func (s *Server) ListChatRoomUsers(ctx context.Context, req *chatv1.ListChatRoomUsersRequest) (*chatv1.ListChatRoomUsersResponse, error) {
	adm, err := s.roomFrom(ctx)
	if err != nil {
		return nil, err
	}
	code, err := rooms.NormalizeCode(req.GetShortCode())
	if err != nil {
		return nil, err
	}
	if code != adm.Room {
		return nil, rooms.ErrWrongRoom
	}
	us, err := s.engine.Users(ctx, code)
	if err != nil {
		return nil, err
	}
	return &chatv1.ListChatRoomUsersResponse{Users: roomUsers(us)}, nil
}

// DeleteChatRoom deletes a room on behalf of its owner.
func (s *Server) DeleteChatRoom(ctx context.Context, req *chatv1.DeleteChatRoomRequest) (*chatv1.DeleteChatRoomResponse, error) {
	u, err := s.userFrom(ctx)
	if err != nil {
		return nil, err
	}
	code, err := rooms.NormalizeCode(req.GetShortCode())
	if err != nil {
		return nil, err
	}
	if err := s.engine.DeleteRoom(ctx, code, u.ID); err != nil {
		return nil, err
	}
	return &chatv1.DeleteChatRoomResponse{}, nil
}

func roomUsers(us []rooms.User) []*chatv1.RoomUser {
	out := make([]*chatv1.RoomUser, len(us))
	for i, u := range us {
		out[i] = &chatv1.RoomUser{UserName: u.Name, Streams: u.Streams}
	}
	return out
}

// limit is one limiter and the key an attempt counts under.
type limit struct {
	l   Limiter
	key string
}

// acquire reserves an attempt under every limit, or none if one refuses.
// release settles them all: failed counts the attempt, otherwise it is
// refunded. A limiter that cannot answer refuses the attempt: guesses
// must not go unlimited while a shared limiter is down.
func (s *Server) acquire(ctx context.Context, limits []limit) (release func(failed bool), err error) {
	now := s.cfg.Now()
	for i, lk := range limits {
		wait, err := lk.l.Acquire(ctx, lk.key, now)
		if err == nil && wait <= 0 {
			continue
		}
		for _, got := range limits[:i] {
			s.settle(got, false, now)
		}
		if err != nil {
			return nil, fmt.Errorf("join throttle: %w", err)
		}
		return nil, &rooms.ThrottledError{What: "wrong room passwords", RetryAfter: wait}
	}
	return func(failed bool) {
		now := s.cfg.Now()
		for _, lk := range limits {
			s.settle(lk, failed, now)
		}
	}, nil
}

// settle ends one reservation; a limiter that fails to record it is
// logged, since the caller's answer does not depend on it.
func (s *Server) settle(lk limit, failed bool, now time.Time) {
	// Detached from the call, so that a client hanging up does not leave
	// a shared limiter's reservation unsettled.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := lk.l.Done(ctx, lk.key, failed, now); err != nil {
		s.cfg.Logger.Warn("settle join throttle", zap.Error(err))
	}
}
