package throttle

import (
	"context"
	"sync"
	"time"
)

// Rate paces an action per key, a token bucket: a key may act burst
// times at once, and regains one action every interval up to burst.
// Unlike Limiter it counts every action, not failures: it bounds how fast
// one user can create rooms, each of which costs a password hash.
//
// It keeps, per key, the time at which its bucket is full again (the
// generic cell rate algorithm's "theoretical arrival time"): a key whose
// bucket is full holds nothing, so the table only holds keys that acted
// within the last burst × interval.
type Rate struct {
	interval time.Duration
	burst    int

	mu   sync.Mutex
	full map[string]time.Time // when the key's bucket is full again
}

// NewRate returns a Rate of burst actions at once and one more per
// interval. burst and interval must be positive.
func NewRate(burst int, interval time.Duration) *Rate {
	return &Rate{interval: interval, burst: burst, full: make(map[string]time.Time)}
}

// Allow takes one action for key and returns 0, or returns how long the
// caller must wait until the key may act again and takes nothing.
// It never fails: the ctx and error are those of the seam it implements
// (api.RateLimiter), which a rate shared by instances would need.
func (r *Rate) Allow(_ context.Context, key string, now time.Time) (time.Duration, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	full, ok := r.full[key]
	if !ok {
		r.sweep(now) // only a new key grows the table
	}
	if full.Before(now) {
		full = now
	}
	next := full.Add(r.interval)
	// The bucket holds burst actions: it may be emptied by up to
	// burst × interval ahead of now, no further.
	if over := next.Sub(now) - time.Duration(r.burst)*r.interval; over > 0 {
		return over, nil
	}
	r.full[key] = next
	return 0, nil
}

// sweep drops keys whose buckets are full again when the table grows, so
// that an attacker cycling through keys cannot grow it without bound;
// amortised O(1), as Limiter's.
func (r *Rate) sweep(now time.Time) {
	if len(r.full) < 1024 || len(r.full)%1024 != 0 {
		return
	}
	for k, full := range r.full {
		if !full.After(now) {
			delete(r.full, k)
		}
	}
}
