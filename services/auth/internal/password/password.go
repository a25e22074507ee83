// Package password hashes passwords with argon2id and stores them in the
// PHC string format ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so the
// parameters travel with each hash and can be raised later.
//
// Argon2id is deliberately expensive in memory and CPU. A Hasher therefore
// runs at most a fixed number of hashes at once (by default one per CPU)
// so that a flood of logins queues instead of exhausting memory; a caller
// whose context ends while queued gets ErrBusy.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
)

// Sentinel errors.
var (
	// ErrBusy means the caller's context ended while it waited for a
	// hashing slot.
	ErrBusy = errors.New("password hashing busy")
	// ErrMalformedHash means a stored hash is not an argon2id PHC string.
	ErrMalformedHash = errors.New("malformed password hash")
)

// Params are the argon2id cost parameters.
type Params struct {
	MemoryKiB uint32
	Time      uint32
	Threads   uint8
	SaltLen   uint32
	KeyLen    uint32
}

// DefaultParams returns parameters that meet the OWASP minimum for
// argon2id (19 MiB, t=2, p=1).
func DefaultParams() Params {
	return Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// MaxMemoryKiB (1 GiB) caps the memory of new hashes and of stored ones,
// so that a corrupted or planted row cannot make one verification
// allocate more than that.
const MaxMemoryKiB = 1024 * 1024

// weakerThan reports whether hashes made with p are cheaper to attack
// than hashes made with q. Threads only spread the work, so they don't count.
func (p Params) weakerThan(q Params) bool {
	return p.MemoryKiB < q.MemoryKiB || p.Time < q.Time || p.KeyLen < q.KeyLen || p.SaltLen < q.SaltLen
}

// Hasher hashes and verifies passwords. It is safe for concurrent use.
type Hasher struct {
	params  Params
	slots   chan struct{}
	observe func(op string, d time.Duration)
}

// Option adjusts a Hasher.
type Option func(*Hasher)

// WithConcurrency sets how many hashes may run at once (default
// GOMAXPROCS / Threads, at least 1).
func WithConcurrency(n int) Option {
	return func(h *Hasher) {
		if n > 0 {
			h.slots = make(chan struct{}, n)
		}
	}
}

// WithObserver receives the duration of every hash and verification, op
// being "hash" or "verify"; used for metrics.
func WithObserver(f func(op string, d time.Duration)) Option {
	return func(h *Hasher) { h.observe = f }
}

// New returns a Hasher that makes new hashes with params.
func New(params Params, opts ...Option) (*Hasher, error) {
	if params.MemoryKiB < 8*uint32(params.Threads) || params.MemoryKiB > MaxMemoryKiB || params.Time < 1 || params.Threads < 1 {
		return nil, fmt.Errorf("password: invalid argon2id parameters m=%d t=%d p=%d", params.MemoryKiB, params.Time, params.Threads)
	}
	if params.SaltLen < 8 || params.KeyLen < 16 {
		return nil, fmt.Errorf("password: salt (%d) or key length (%d) too short", params.SaltLen, params.KeyLen)
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

// Hash returns the PHC string of password with a fresh random salt.
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
// time, and whether encoded was made with weaker parameters than h uses
// now (stale) and should be replaced after a successful login.
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

var b64 = base64.RawStdEncoding

func encode(p Params, salt, key []byte) string {
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrMalformedHash)
	}
	var version int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q: %v", ErrMalformedHash, parts[3], err)
	}
	if p.Time < 1 || p.Threads < 1 || p.MemoryKiB < 8*uint32(p.Threads) || p.MemoryKiB > MaxMemoryKiB {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters out of range %q", ErrMalformedHash, parts[3])
	}
	salt, err := b64.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, fmt.Errorf("%w: salt: %v", ErrMalformedHash, err)
	}
	key, err := b64.DecodeString(parts[5])
	if err != nil || len(key) == 0 {
		return Params{}, nil, nil, fmt.Errorf("%w: hash: %v", ErrMalformedHash, err)
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}
