// Package throttle limits failed attempts (wrong room passwords, unknown
// codes) per key: a user and room, a user, a room (Limiter); and paces
// actions per key: the rooms a user creates (Rate). Both hold their
// counts in this process.
package throttle

import (
	"context"
	"sync"
	"time"
)

// busyWait is how long a caller is told to wait when the key's allowance is
// taken by attempts still in flight rather than by failures.
const busyWait = time.Second

// Limiter allows Max failures per key within Window; after that the key is
// blocked until the window that started with its first failure ends.
//
// An attempt is reserved with Acquire before any work and settled with
// Done, so attempts in flight count toward the limit: a burst of parallel
// guesses gets no more than Max verifications.
type Limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	start    time.Time // when the window of the first failure began
	failures int
	inflight int
}

// New returns a Limiter of max failures per window.
func New(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, keys: make(map[string]*entry)}
}

// Acquire reserves an attempt for key and returns 0, or returns how long
// the caller must wait and reserves nothing. Every reservation ends with
// exactly one Done.
// It never fails: the ctx and error are those of the seam it implements
// (api.Limiter), which a limiter shared by instances needs.
func (l *Limiter) Acquire(_ context.Context, key string, now time.Time) (time.Duration, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	e, ok := l.keys[key]
	if !ok {
		e = &entry{}
		l.keys[key] = e
	}
	end := e.start.Add(l.window)
	if e.failures > 0 && !now.Before(end) {
		e.failures = 0 // the window is over
	}
	if e.failures+e.inflight >= l.max {
		if e.failures >= l.max {
			return end.Sub(now), nil
		}
		return busyWait, nil
	}
	e.inflight++
	return 0, nil
}

// Done settles an attempt reserved by Acquire: a failure counts toward
// the limit, a success refunds the reservation.
func (l *Limiter) Done(_ context.Context, key string, failed bool, now time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		return nil
	}
	e.inflight = max(0, e.inflight-1)
	if failed {
		if e.failures == 0 || !now.Before(e.start.Add(l.window)) {
			e.start, e.failures = now, 0
		}
		e.failures++
	}
	if e.failures == 0 && e.inflight == 0 {
		delete(l.keys, key)
	}
	return nil
}

// Reset forgets key's failures, after a correct password.
func (l *Limiter) Reset(_ context.Context, key string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e, ok := l.keys[key]; ok {
		e.failures = 0
		if e.inflight == 0 {
			delete(l.keys, key)
		}
	}
	return nil
}

// sweep drops expired windows when the map grows, so that an attacker
// cycling through keys cannot grow it without bound; amortised O(1).
func (l *Limiter) sweep(now time.Time) {
	if len(l.keys) < 1024 || len(l.keys)%1024 != 0 {
		return
	}
	for k, e := range l.keys {
		if e.inflight == 0 && !now.Before(e.start.Add(l.window)) {
			delete(l.keys, k)
		}
	}
}
