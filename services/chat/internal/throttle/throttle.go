// Package throttle limits wrong room passwords per user and room.
package throttle

import (
	"sync"
	"time"
)

// Limiter allows Max failures per key within Window; after that the key is
// blocked until the window that started with its first failure ends.
type Limiter struct {
	max    int
	window time.Duration

	mu   sync.Mutex
	keys map[string]*entry
}

type entry struct {
	start    time.Time
	failures int
}

// New returns a Limiter of max failures per window.
func New(max int, window time.Duration) *Limiter {
	return &Limiter{max: max, window: window, keys: make(map[string]*entry)}
}

// Check returns how long key must wait before trying again, or 0.
func (l *Limiter) Check(key string, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.keys[key]
	if !ok {
		return 0
	}
	end := e.start.Add(l.window)
	if !now.Before(end) {
		delete(l.keys, key)
		return 0
	}
	if e.failures >= l.max {
		return end.Sub(now)
	}
	return 0
}

// Fail records a failure for key.
func (l *Limiter) Fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Sweep expired windows when the map grows, so that an attacker cycling
	// through rooms cannot grow it without bound; amortised O(1).
	if len(l.keys) >= 1024 && len(l.keys)%1024 == 0 {
		for k, e := range l.keys {
			if !now.Before(e.start.Add(l.window)) {
				delete(l.keys, k)
			}
		}
	}
	e, ok := l.keys[key]
	if !ok || !now.Before(e.start.Add(l.window)) {
		l.keys[key] = &entry{start: now, failures: 1}
		return
	}
	e.failures++
}

// Reset forgets key, after a correct password.
func (l *Limiter) Reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.keys, key)
}
