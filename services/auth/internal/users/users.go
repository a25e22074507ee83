// Package users holds the account rules of the auth service: what a valid
// user name and password are, the errors callers can act on, and the
// registration and login flows built on a Store, a Hasher and throttles.
package users

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Limits on user names and passwords. Passwords follow NIST SP 800-63B:
// a length range and no composition rules.
const (
	MinNameLen     = 3
	MaxNameLen     = 32
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// Sentinel errors. Transports map them to status codes; every error
// returned by this package and by a Store wraps at most one of them.
var (
	// ErrInvalidName means the user name breaks the naming rules.
	ErrInvalidName = errors.New("invalid user_name")
	// ErrInvalidPassword means the password is too short or too long.
	ErrInvalidPassword = errors.New("invalid password")
	// ErrNameTaken means another account already has the name, in any case.
	ErrNameTaken = errors.New("user name already taken")
	// ErrNotFound means no account has the name.
	ErrNotFound = errors.New("user not found")
	// ErrBadCredentials means the name is unknown or the password is wrong;
	// the two are deliberately indistinguishable.
	ErrBadCredentials = errors.New("invalid user name or password")
	// ErrThrottled means too many recent failed logins; see ThrottledError.
	ErrThrottled = errors.New("too many failed logins")
	// ErrUnavailable means the store cannot be reached or timed out.
	ErrUnavailable = errors.New("storage unavailable")
)

// User is a stored account.
type User struct {
	ID           int64
	Name         string // as the user typed it at registration
	PasswordHash string // PHC string, never leaves the service
	CreatedAt    time.Time
}

// ThrottledError is returned by Login while the throttle refuses the
// attempt (see throttle.Logins). It matches ErrThrottled with errors.Is.
type ThrottledError struct {
	RetryAfter time.Duration
}

// Error says how long to wait; it is for logs, not for clients.
func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s, retry after %s", ErrThrottled, e.RetryAfter)
}

// Is makes errors.Is(err, ErrThrottled) true.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// Key is the case-folded form of a valid name. Uniqueness is enforced on
// it, so "Alice" and "alice" are one account. Names are ASCII only, so
// ASCII lowercasing is a complete case fold.
func Key(name string) string { return strings.ToLower(name) }

// ValidateName checks the naming rules: 3 to 32 ASCII letters, digits,
// '_', '-' or '.'. ASCII only, so no two valid names look alike.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: is required", ErrInvalidName)
	}
	if len(name) < MinNameLen || len(name) > MaxNameLen {
		return fmt.Errorf("%w: must be %d to %d characters", ErrInvalidName, MinNameLen, MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
		if !ok {
			return fmt.Errorf("%w: may contain only ASCII letters, digits, '_', '-' and '.'", ErrInvalidName)
		}
	}
	return nil
}

// ValidatePassword checks the length of a password in bytes.
func ValidatePassword(password string) error {
	if password == "" {
		return fmt.Errorf("%w: is required", ErrInvalidPassword)
	}
	if len(password) < MinPasswordLen || len(password) > MaxPasswordLen {
		return fmt.Errorf("%w: must be %d to %d bytes", ErrInvalidPassword, MinPasswordLen, MaxPasswordLen)
	}
	return nil
}
