package natsstore

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// limiterBusyWait is how long a caller is told to wait when a key's
// allowance is taken by attempts still in flight rather than by failures,
// as throttle.Limiter does.
const limiterBusyWait = time.Second

// LimiterConfig configures a Limiter.
type LimiterConfig struct {
	// Bucket is the key-value bucket of this limiter's keys, one per
	// limiter: limiters of different Max or Window must not share one.
	Bucket string
	// Max failures are allowed per key within Window.
	Max    int
	Window time.Duration
	// Hold is how long a reservation counts against the allowance when its
	// Done never comes (its instance crashed); 0 means one minute.
	Hold time.Duration
	// Replicas and Storage of the bucket; 0 replicas means 1, and the
	// zero Storage is file storage.
	Replicas int
	Storage  jetstream.StorageType
}

// Limiter is an api.Limiter on a JetStream key-value bucket, with
// throttle.Limiter's rules: all instances that use the same bucket share
// one budget per key, so that n instances do not allow n times the
// failures. Every change is a compare-and-set on the key's revision.
//
// Windows and reservations are read against the now given to each call,
// not the server's clock. A key whose failures and reservations are all
// settled is deleted; a key left behind (its window over, a reservation
// of a crashed instance) expires with the bucket's MaxAge of
// 2×Window+Hold after its last change, which outlasts anything it holds.
type Limiter struct {
	cfg LimiterConfig
	kv  jetstream.KeyValue
}

// limiterKey is the state of one key: failures counted from Start, and the
// times of the reservations not yet settled.
type limiterKey struct {
	Start    int64   `json:"s,omitempty"` // unix ns
	Failures int     `json:"f,omitempty"`
	Held     []int64 `json:"h,omitempty"` // unix ns, oldest first
}

// NewLimiter creates the limiter's bucket unless it exists (updating its
// settings if they changed) and returns the limiter.
func NewLimiter(ctx context.Context, js jetstream.JetStream, cfg LimiterConfig) (*Limiter, error) {
	if cfg.Bucket == "" || cfg.Max <= 0 || cfg.Window <= 0 || cfg.Hold < 0 {
		return nil, errors.New("natsstore: a limiter needs a bucket, a positive Max and Window, and a Hold not negative")
	}
	if cfg.Hold == 0 {
		cfg.Hold = time.Minute
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         cfg.Bucket,
		Description:    "grpcchatter: failed attempts per key",
		History:        1,
		TTL:            2*cfg.Window + cfg.Hold,
		Replicas:       cfg.Replicas,
		Storage:        cfg.Storage,
		LimitMarkerTTL: kvMarkerTTL,
	})
	if err != nil {
		return nil, kvFailed("limiter bucket "+cfg.Bucket, err)
	}
	return &Limiter{cfg: cfg, kv: kv}, nil
}

// Acquire reserves an attempt for key and returns 0, or returns how long
// the caller must wait and reserves nothing. Every reservation ends with
// exactly one Done, or lapses after Hold.
func (l *Limiter) Acquire(ctx context.Context, key string, now time.Time) (time.Duration, error) {
	var wait time.Duration
	err := l.update(ctx, key, func(k *limiterKey) bool {
		wait = 0
		k.expire(now, l.cfg.Window, l.cfg.Hold)
		if k.Failures+len(k.Held) >= l.cfg.Max {
			wait = limiterBusyWait
			if k.Failures >= l.cfg.Max {
				wait = time.Unix(0, k.Start).Add(l.cfg.Window).Sub(now)
			}
			return false
		}
		k.Held = append(k.Held, now.UnixNano())
		return true
	})
	if err != nil {
		return 0, err
	}
	return wait, nil
}

// Done settles an attempt reserved by Acquire: a failure counts toward
// the limit, a success gives the reservation back.
func (l *Limiter) Done(ctx context.Context, key string, failed bool, now time.Time) error {
	return l.update(ctx, key, func(k *limiterKey) bool {
		if len(k.Held) > 0 {
			k.Held = k.Held[1:]
		}
		if failed {
			if k.Failures == 0 || !now.Before(time.Unix(0, k.Start).Add(l.cfg.Window)) {
				k.Start, k.Failures = now.UnixNano(), 0
			}
			k.Failures++
		}
		return true
	})
}

// Reset forgets key's failures, after a correct password.
func (l *Limiter) Reset(ctx context.Context, key string) error {
	return l.update(ctx, key, func(k *limiterKey) bool {
		if k.Failures == 0 {
			return false
		}
		k.Start, k.Failures = 0, 0
		return true
	})
}

// expire forgets the failures of a window that is over and reservations
// older than hold.
func (k *limiterKey) expire(now time.Time, window, hold time.Duration) {
	if k.Failures > 0 && !now.Before(time.Unix(0, k.Start).Add(window)) {
		k.Start, k.Failures = 0, 0
	}
	n := 0
	for n < len(k.Held) && now.Sub(time.Unix(0, k.Held[n])) >= hold {
		n++
	}
	k.Held = k.Held[n:]
}

// update applies change to key's state until its compare-and-set sticks;
// change reports whether it changed anything. A key left with nothing is
// deleted.
func (l *Limiter) update(ctx context.Context, key string, change func(k *limiterKey) bool) error {
	sum := sha256.Sum256([]byte(key)) // any string becomes a valid key
	return kvUpdate(ctx, l.kv, hex.EncodeToString(sum[:]), func(old []byte) ([]byte, bool, error) {
		var k limiterKey
		if old != nil {
			if err := json.Unmarshal(old, &k); err != nil {
				return nil, false, fmt.Errorf("natsstore: limiter %s: %w", l.cfg.Bucket, err)
			}
		}
		if !change(&k) {
			return nil, false, nil
		}
		if k.Failures == 0 && len(k.Held) == 0 {
			return nil, true, nil
		}
		b, err := json.Marshal(&k)
		return b, true, err
	})
}

// The helpers below are shared by the package's key-value stores.

const (
	// kvMarkerTTL is how long a deleted key's marker stays in a bucket.
	// Keys are deleted with a purge that expires, so that the buckets do
	// not keep a marker per key ever used.
	kvMarkerTTL = time.Minute
	// kvAttempts bounds the compare-and-set attempts of one update. Writers
	// of one key are the instances (each serialises its own per room or
	// per request), so a few attempts suffice; the rest is contention that
	// a retry of the whole call resolves better.
	kvAttempts = 16
)

// errKVConflict means another writer changed the key first.
var errKVConflict = errors.New("natsstore: key changed concurrently")

// kvFailed wraps an error of NATS so that it is rooms.ErrUnavailable.
func kvFailed(op string, err error) error {
	return unavailable(fmt.Errorf("natsstore: %s: %w", op, err))
}

// kvRead returns key's value and revision, or nil and 0 when it has none.
func kvRead(ctx context.Context, kv jetstream.KeyValue, key string) ([]byte, uint64, error) {
	e, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, kvFailed("get "+kv.Bucket()+" "+key, err)
	}
	return e.Value(), e.Revision(), nil
}

// kvWrite stores value if key's revision is still rev (0: the key has no
// value), or deletes the key when value is nil. It returns the new
// revision, or errKVConflict.
func kvWrite(ctx context.Context, kv jetstream.KeyValue, key string, value []byte, rev uint64) (uint64, error) {
	var (
		err    error
		newRev uint64
	)
	switch {
	case value == nil && rev == 0:
		return 0, nil
	case value == nil:
		err = kv.Purge(ctx, key, jetstream.LastRevision(rev), jetstream.PurgeTTL(kvMarkerTTL))
	case rev == 0:
		newRev, err = kv.Create(ctx, key, value)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			err = errKVConflict // a delete marker expired while Create looked at it
		}
	default:
		newRev, err = kv.Update(ctx, key, value, rev)
	}
	switch {
	case err == nil:
		return newRev, nil
	case errors.Is(err, errKVConflict), errors.Is(err, jetstream.ErrKeyExists), errors.Is(err, jetstream.ErrKeyRevisionMismatch):
		return 0, errKVConflict
	default:
		return 0, kvFailed("write "+kv.Bucket()+" "+key, err)
	}
}

// kvUpdate applies change to key's value until its compare-and-set
// sticks. change gets nil for a key without value and returns the new
// value (nil deletes the key) and whether to write it at all; it may be
// called several times.
func kvUpdate(ctx context.Context, kv jetstream.KeyValue, key string, change func(old []byte) ([]byte, bool, error)) error {
	for attempt := range kvAttempts {
		old, rev, err := kvRead(ctx, kv, key)
		if err != nil {
			return err
		}
		value, write, err := change(old)
		if err != nil || !write {
			return err
		}
		_, err = kvWrite(ctx, kv, key, value, rev)
		if !errors.Is(err, errKVConflict) {
			return err
		}
		// A little jitter, growing with the attempts, keeps the writers
		// that lost from meeting again at once.
		t := time.NewTimer(rand.N(time.Duration(attempt+1) * time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return kvFailed("update "+kv.Bucket()+" "+key, ctx.Err())
		case <-t.C:
		}
	}
	return kvFailed("update "+kv.Bucket()+" "+key, fmt.Errorf("%w %d times", errKVConflict, kvAttempts))
}

// kvEntries reads every key's latest value in the bucket.
func kvEntries(ctx context.Context, kv jetstream.KeyValue, opts ...jetstream.WatchOpt) ([]jetstream.KeyValueEntry, error) {
	w, err := kv.WatchAll(ctx, append(opts, jetstream.IgnoreDeletes())...)
	if err != nil {
		return nil, kvFailed("list "+kv.Bucket(), err)
	}
	defer func() { _ = w.Stop() }()
	var out []jetstream.KeyValueEntry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return nil, kvFailed("list "+kv.Bucket(), cmp.Or(ctx.Err(), errors.New("watcher closed")))
			}
			if e == nil {
				return out, nil
			}
			out = append(out, e)
		case <-ctx.Done():
			return nil, kvFailed("list "+kv.Bucket(), ctx.Err())
		}
	}
}
