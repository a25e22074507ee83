package throttle

import (
	"container/list"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a token bucket per key (a client address), for requests that
// are expensive whether they succeed or not, such as registrations. It is
// bounded like Table: when full, the least recently used bucket goes,
// which at worst refills the bucket of a client that has been idle the
// longest. It is safe for concurrent use.
type Limiter struct {
	every      rate.Limit
	burst      int
	maxEntries int
	now        func() time.Time
	mu         sync.Mutex
	buckets    map[string]*list.Element // of *bucket
	lru        *list.List               // least recently used at the front
}

type bucket struct {
	key string
	lim *rate.Limiter
}

// NewLimiter allows burst requests at once per key, refilled at perHour
// per hour, remembering at most maxEntries keys. now is the clock,
// time.Now outside tests.
func NewLimiter(perHour float64, burst, maxEntries int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		every: rate.Limit(perHour / 3600), burst: max(1, burst), maxEntries: max(1, maxEntries),
		now: now, buckets: make(map[string]*list.Element), lru: list.New(),
	}
}

// Allow takes one token for key. It returns 0 if the request may go ahead,
// else how long until a token is available; a refused request takes none.
func (l *Limiter) Allow(key string) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	el, ok := l.buckets[key]
	if ok {
		l.lru.MoveToBack(el)
	} else {
		for len(l.buckets) >= l.maxEntries {
			front := l.lru.Front()
			delete(l.buckets, front.Value.(*bucket).key)
			l.lru.Remove(front)
		}
		el = l.lru.PushBack(&bucket{key: key, lim: rate.NewLimiter(l.every, l.burst)})
		l.buckets[key] = el
	}
	r := el.Value.(*bucket).lim.ReserveN(now, 1)
	if !r.OK() {
		return time.Hour // burst < 1 cannot happen; refuse rather than panic
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return d
	}
	return 0
}

// Len returns the number of keys remembered.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
