// Package throttle counts failures per key (an account or a client
// address) and locks a key out once it has too many within a window.
//
// The table lives in memory and is bounded: entries expire once their
// window and lockout are over, and when the table is full the expired
// entries are swept and, if that is not enough, an arbitrary entry is
// dropped. Dropping forgets some failures; it never locks anyone out who
// should not be.
package throttle

import (
	"sync"
	"time"
)

// Config sets the limits of a Table.
type Config struct {
	MaxFailures int           // failures within Window that trigger a lockout
	Window      time.Duration // how long a failure counts
	Lockout     time.Duration // how long a key stays locked
	MaxEntries  int           // bound on the number of keys remembered
}

type entry struct {
	failures    int
	windowStart time.Time
	lockedUntil time.Time
}

// expired reports whether the entry carries no information any more.
func (e *entry) expired(now time.Time, window time.Duration) bool {
	return now.After(e.lockedUntil) && now.Sub(e.windowStart) >= window
}

// Table is a failure counter keyed by string. It is safe for concurrent use.
type Table struct {
	cfg       Config
	now       func() time.Time
	mu        sync.Mutex
	entries   map[string]*entry
	lastSweep time.Time
}

// New returns an empty Table. now is the clock, time.Now outside tests.
func New(cfg Config, now func() time.Time) *Table {
	if now == nil {
		now = time.Now
	}
	if cfg.MaxEntries < 1 {
		cfg.MaxEntries = 1
	}
	return &Table{cfg: cfg, now: now, entries: make(map[string]*entry)}
}

// Blocked returns how long key stays locked out, or 0 if it is not.
func (t *Table) Blocked(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if !ok {
		return 0
	}
	if d := e.lockedUntil.Sub(t.now()); d > 0 {
		return d
	}
	return 0
}

// Fail records a failure for key and locks it when the limit is reached.
func (t *Table) Fail(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e, ok := t.entries[key]
	if !ok {
		t.makeRoom(now)
		e = &entry{windowStart: now}
		t.entries[key] = e
	}
	if now.Sub(e.windowStart) >= t.cfg.Window {
		e.failures, e.windowStart = 0, now
	}
	e.failures++
	if e.failures >= t.cfg.MaxFailures {
		e.lockedUntil = now.Add(t.cfg.Lockout)
		// A new window starts with the lockout, so one more failure
		// after it ends does not lock again at once.
		e.failures, e.windowStart = 0, now
	}
}

// Reset forgets key, after a successful login.
func (t *Table) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.entries, key)
}

// Len returns the number of keys remembered.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

// makeRoom keeps the table under MaxEntries. A full sweep costs O(n), so
// it runs at most once per Window/10; in between, a full table drops an
// arbitrary entry (Go's map order is randomised).
func (t *Table) makeRoom(now time.Time) {
	if len(t.entries) < t.cfg.MaxEntries {
		return
	}
	if now.Sub(t.lastSweep) >= t.cfg.Window/10 {
		t.lastSweep = now
		for k, e := range t.entries {
			if e.expired(now, t.cfg.Window) {
				delete(t.entries, k)
			}
		}
	}
	for k := range t.entries {
		if len(t.entries) < t.cfg.MaxEntries {
			break
		}
		delete(t.entries, k)
	}
}
