// Package password hashes passwords with argon2id and stores them in the
// PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so the
// parameters travel with each hash and can be raised later: Verify
// checks a hash with its own parameters and reports it stale when the
// Hasher's are stronger, so the caller can store a fresh hash.
//
// Argon2id is deliberately expensive in memory and CPU. A Hasher therefore
// runs a bounded number of hashes at once (by default enough to fill the
// CPUs) so that a flood of logins queues instead of exhausting memory; a
// caller whose context ends while queued gets ErrBusy.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/argon2"
)

// Sentinel errors.
var (
	// ErrBusy means the caller's context ended before a hashing slot came
	// free. The error also wraps the context's cause, so
	// errors.Is(err, context.DeadlineExceeded) tells a timeout from a
	// caller that went away.
	ErrBusy = errors.New("password hashing busy")
	// ErrMalformedHash means a stored hash is not an argon2id PHC string
	// that this package would make, or its cost is above the caps.
	ErrMalformedHash = errors.New("malformed password hash")
)

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params  Params
	slots   chan struct{}
	observe func(op string, d time.Duration)
}

// Option adjusts a Hasher.
type Option func(*Hasher)

// WithConcurrency sets how many hashes may run at once; n < 1 keeps the
// default of GOMAXPROCS / Threads, at least 1.
func WithConcurrency(n int) Option {
	return func(h *Hasher) {
		if n > 0 {
			h.slots = make(chan struct{}, n)
		}
	}
}

// WithObserver receives the duration of every argon2id run, op being
// "hash" or "verify"; meant for metrics. It is called while the run still
// holds its slot, so it should return quickly.
func WithObserver(f func(op string, d time.Duration)) Option {
	return func(h *Hasher) {
		if f != nil {
			h.observe = f
		}
	}
}

// New returns a Hasher that makes new hashes with params. It refuses
// parameters that argon2id rejects or that exceed MaxMemoryKiB or
// MaxTime, but not ones below MinMemoryKiB and MinTime, which are for
// configurations to enforce.
func New(params Params, opts ...Option) (*Hasher, error) {
	params = params.withDefaults()
	if err := params.validate(); err != nil {
		return nil, err
	}
	h := &Hasher{
		params: params,
		// Each hash keeps Threads CPUs busy, so this many fill the CPUs.
		slots:   make(chan struct{}, max(1, runtime.GOMAXPROCS(0)/int(params.Threads))),
		observe: func(string, time.Duration) {},
	}
	for _, o := range opts {
		o(h)
	}
	return h, nil
}

// Slots returns how many hashes may run at once.
func (h *Hasher) Slots() int { return cap(h.slots) }

// Hash returns the PHC string of password with a fresh random salt,
// waiting for a free slot until ctx ends (then it returns ErrBusy).
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("password: salt: %w", err)
	}
	key, err := h.derive(ctx, "hash", password, salt, h.params)
	if err != nil {
		return "", err
	}
	return encode(h.params, salt, key), nil
}

// Verify reports whether password matches encoded, comparing in constant
// time with the parameters recorded in encoded, and whether encoded was
// made with weaker parameters than h uses now (stale), so that the caller
// should store a fresh Hash after a successful login; stale is never true
// when ok is false. A malformed encoded gives ErrMalformedHash; ctx ending
// before a slot comes free gives ErrBusy.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, stale bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	got, err := h.derive(ctx, "verify", password, salt, p)
	if err != nil {
		return false, false, err
	}
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p.weakerThan(h.params), nil
}

// derive runs argon2id once a slot is free.
func (h *Hasher) derive(ctx context.Context, op, password string, salt []byte, p Params) ([]byte, error) {
	// Checked first because select picks at random among ready cases,
	// and a caller that has already given up should not start a hash.
	if ctx.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
	select {
	case h.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
	defer func() { <-h.slots }()
	start := time.Now()
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
	h.observe(op, time.Since(start))
	return key, nil
}
