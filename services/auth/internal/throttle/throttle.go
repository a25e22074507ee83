// Package throttle counts failures per key and locks a key out once it
// has too many within a window, for longer each time it comes back
// (Table); it combines three such tables into the login policy of the
// auth service (Logins) and limits the rate of registrations per client
// address (Limiter).
//
// An attempt is reserved with Acquire before the expensive work and ended
// with Done, so attempts still in flight count toward the limit: a burst
// of simultaneous attempts cannot overshoot it.
//
// The table lives in memory and is bounded. When it is full, expired
// entries are swept and then the least recently used entry that is
// neither locked nor in flight is dropped, which forgets some failures
// but never lifts a lockout. When every entry is locked or in flight, a
// new key is refused (fail closed) until one frees up.
package throttle

import (
	"container/list"
	"net"
	"sync"
	"time"
)

// Backoff is the wait suggested to an attempt refused because attempts
// already in flight could reach the limit, or because the table is full
// of live entries. It is short: the outcome is known within one hash.
const Backoff = time.Second

// Config sets the limits of a Table.
type Config struct {
	MaxFailures int           // failures within Window that trigger a lockout
	Window      time.Duration // how long a failure counts
	// Lockout is how long a key stays locked the first time. Each further
	// lockout doubles it, up to MaxLockout, until the key has stayed
	// quiet (no lockout) for a whole Window after its last one ended.
	Lockout    time.Duration
	MaxLockout time.Duration // cap of the doubling; below Lockout means Lockout
	MaxEntries int           // bound on the number of keys remembered
}

type entry struct {
	key         string
	failures    int
	inFlight    int
	windowStart time.Time
	lockedUntil time.Time
	strikes     int           // lockouts in a row, for the doubling
	elem        *list.Element // position in Table.lru
}

func (e *entry) locked(now time.Time) bool { return now.Before(e.lockedUntil) }

// expired reports whether the entry carries no information any more: no
// attempt in flight, no failure within the window, and no lockout within
// a window (which would still make the next one longer).
func (e *entry) expired(now time.Time, window time.Duration) bool {
	return e.inFlight == 0 && now.Sub(e.windowStart) >= window && now.Sub(e.lockedUntil) >= window
}

// Table is a failure counter keyed by string. It is safe for concurrent use.
type Table struct {
	cfg       Config
	now       func() time.Time
	mu        sync.Mutex
	entries   map[string]*entry
	lru       *list.List // of *entry, least recently used at the front
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
	if cfg.MaxFailures < 1 {
		cfg.MaxFailures = 1
	}
	if cfg.MaxLockout < cfg.Lockout {
		cfg.MaxLockout = cfg.Lockout
	}
	return &Table{cfg: cfg, now: now, entries: make(map[string]*entry), lru: list.New()}
}

// Acquire reserves one attempt for key. It returns 0 when the attempt may
// go ahead, and then the caller must call Done(key, ...) exactly once.
// Otherwise it returns how long to wait and nothing is reserved: the rest
// of the lockout, or Backoff when the failures so far plus the attempts in
// flight already reach the limit or the table has no room.
func (t *Table) Acquire(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	e, ok := t.entries[key]
	if !ok {
		if !t.makeRoom(now) {
			return Backoff
		}
		e = &entry{key: key, windowStart: now}
		e.elem = t.lru.PushBack(e)
		t.entries[key] = e
	}
	t.lru.MoveToBack(e.elem)
	if d := e.lockedUntil.Sub(now); d > 0 {
		return d
	}
	if now.Sub(e.windowStart) >= t.cfg.Window {
		e.failures, e.windowStart = 0, now
	}
	if e.failures+e.inFlight >= t.cfg.MaxFailures {
		return Backoff
	}
	e.inFlight++
	return 0
}

// Done ends an attempt reserved with Acquire. failed records it as a
// failure, which locks key once the limit is reached.
func (t *Table) Done(key string, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if !ok {
		return // forgotten by Reset; nothing in flight is ever evicted
	}
	if e.inFlight > 0 {
		e.inFlight--
	}
	if !failed {
		return
	}
	now := t.now()
	if now.Sub(e.windowStart) >= t.cfg.Window {
		e.failures, e.windowStart = 0, now
	}
	e.failures++
	if e.failures >= t.cfg.MaxFailures && !e.locked(now) {
		if now.Sub(e.lockedUntil) >= t.cfg.Window {
			e.strikes = 0 // quiet for a whole window since the last lockout
		}
		e.lockedUntil = now.Add(t.lockout(e.strikes))
		e.strikes++
		// A new window starts with the lockout, so one more failure
		// after it ends does not lock again at once.
		e.failures, e.windowStart = 0, now
	}
}

// lockout is the length of a key's lockout after strikes earlier ones in
// a row: Lockout doubled that many times, at most MaxLockout.
func (t *Table) lockout(strikes int) time.Duration {
	d := t.cfg.Lockout
	for range strikes {
		if d >= t.cfg.MaxLockout {
			break
		}
		d *= 2
	}
	return min(d, t.cfg.MaxLockout)
}

// Blocked returns how long key stays locked out, or 0 if it is not.
func (t *Table) Blocked(key string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if !ok {
		return 0
	}
	return max(0, e.lockedUntil.Sub(t.now()))
}

// Reset forgets the failures and lockouts of key, after a successful
// login. Attempts still in flight stay reserved.
func (t *Table) Reset(key string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.entries[key]
	if !ok {
		return
	}
	if e.inFlight > 0 {
		e.failures, e.lockedUntil, e.strikes = 0, time.Time{}, 0
		return
	}
	t.remove(e)
}

// Len returns the number of keys remembered.
func (t *Table) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.entries)
}

func (t *Table) remove(e *entry) {
	t.lru.Remove(e.elem)
	delete(t.entries, e.key)
}

// makeRoom keeps the table under MaxEntries and reports whether there is
// room for one more key. A full sweep of expired entries costs O(n), so it
// runs at most once per Window/10; otherwise the least recently used entry
// that is neither locked nor in flight goes. Locked entries are never
// dropped, so a flood of new keys cannot lift a lockout.
func (t *Table) makeRoom(now time.Time) bool {
	if len(t.entries) < t.cfg.MaxEntries {
		return true
	}
	if now.Sub(t.lastSweep) >= t.cfg.Window/10 {
		t.lastSweep = now
		for _, e := range t.entries {
			if e.expired(now, t.cfg.Window) {
				t.remove(e)
			}
		}
	}
	for el := t.lru.Front(); el != nil && len(t.entries) >= t.cfg.MaxEntries; {
		e := el.Value.(*entry)
		el = el.Next()
		if e.inFlight == 0 && !e.locked(now) {
			t.remove(e)
		}
	}
	return len(t.entries) < t.cfg.MaxEntries
}

// AddressKey is the throttling key of a client IP address: the address
// itself for IPv4, its /64 network for IPv6, because one client commonly
// holds a whole /64 and could otherwise rotate through it freely.
func AddressKey(ip string) string {
	parsed := net.ParseIP(ip)
	if parsed == nil || parsed.To4() != nil {
		return ip
	}
	return parsed.Mask(net.CIDRMask(64, 128)).String() + "/64"
}
