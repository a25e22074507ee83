package users

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
)

// Store persists accounts. Implementations enforce uniqueness of Key(name)
// and report ErrNameTaken, ErrNotFound and ErrUnavailable.
type Store interface {
	Create(ctx context.Context, name, passwordHash string) (User, error)
	ByName(ctx context.Context, name string) (User, error)
	UpdateHash(ctx context.Context, id int64, passwordHash string) error
}

// Hasher turns passwords into self-describing hashes and checks them.
// Verify reports stale when the hash was made with weaker parameters than
// the Hasher now uses.
type Hasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (ok, stale bool, err error)
}

// Throttle limits failed logins; *throttle.Logins implements it. Acquire
// either says how long to wait, reserving nothing, or reserves the attempt
// (wait 0), which then ends with exactly one call of end.
type Throttle interface {
	Acquire(account, address string) (end func(throttle.Outcome), wait time.Duration)
}

// Service runs registration and login. It is safe for concurrent use.
type Service struct {
	store    Store
	hasher   Hasher
	throttle Throttle
	log      *zap.Logger
	// dummy is verified against for unknown names so that they cost the
	// same time as a wrong password and cannot be told apart.
	dummy string
}

// NewService returns a Service. It hashes one dummy password up front,
// which takes as long as one real hash.
func NewService(ctx context.Context, store Store, hasher Hasher, logins Throttle, log *zap.Logger) (*Service, error) {
	dummy, err := hasher.Hash(ctx, "dummy password for unknown users")
	if err != nil {
		return nil, fmt.Errorf("hash dummy password: %w", err)
	}
	return &Service{store: store, hasher: hasher, throttle: logins, log: log, dummy: dummy}, nil
}

// Register creates an account.
func (s *Service) Register(ctx context.Context, name, password string) (User, error) {
	if err := ValidateName(name); err != nil {
		return User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, err
	}
	return s.store.Create(ctx, name, hash)
}

// Login checks a name and password on behalf of the client at address and
// returns the account. Unknown names and wrong passwords both give
// ErrBadCredentials after the same amount of work. While the throttle
// refuses the attempt it returns a *ThrottledError without hashing
// anything.
//
// The attempt is reserved before any work, so attempts in flight count
// toward the limits and a burst of simultaneous wrong passwords cannot get
// more verifications than the limits allow.
func (s *Service) Login(ctx context.Context, name, password, address string) (User, error) {
	if err := ValidateName(name); err != nil {
		return User{}, err
	}
	if err := ValidatePassword(password); err != nil {
		return User{}, err
	}
	end, wait := s.throttle.Acquire(Key(name), address)
	if wait > 0 {
		return User{}, &ThrottledError{RetryAfter: wait}
	}
	u, err := s.login(ctx, name, password)
	switch {
	case err == nil:
		end(throttle.Succeeded)
	case errors.Is(err, ErrBadCredentials):
		end(throttle.Failed)
	default:
		end(throttle.Aborted)
	}
	return u, err
}

// login is Login without the throttles.
func (s *Service) login(ctx context.Context, name, password string) (User, error) {
	u, err := s.store.ByName(ctx, name)
	switch {
	case errors.Is(err, ErrNotFound):
		if _, _, err := s.hasher.Verify(ctx, password, s.dummy); err != nil {
			return User{}, err
		}
		return User{}, ErrBadCredentials
	case err != nil:
		return User{}, err
	}

	ok, stale, err := s.hasher.Verify(ctx, password, u.PasswordHash)
	if err != nil {
		return User{}, fmt.Errorf("verify password of user %d: %w", u.ID, err)
	}
	if !ok {
		return User{}, ErrBadCredentials
	}
	if stale {
		s.rehash(ctx, u, password)
	}
	return u, nil
}

// rehash upgrades a hash made with weaker parameters. The login has
// already succeeded, so a failure here is logged and the old hash kept.
func (s *Service) rehash(ctx context.Context, u User, password string) {
	hash, err := s.hasher.Hash(ctx, password)
	if err == nil {
		err = s.store.UpdateHash(ctx, u.ID, hash)
	}
	if err != nil {
		s.log.Warn("rehash password", zap.Int64("user_id", u.ID), zap.Error(err))
		return
	}
	s.log.Info("password rehashed with current parameters", zap.Int64("user_id", u.ID))
}
