package throttle

import (
	"container/list"
	"sync"
	"time"
)

// LoginConfig sets the limits of Logins. Every limit counts failed logins
// only, within Window; reaching one locks its key for Lockout, doubling
// with each further lockout up to MaxLockout.
type LoginConfig struct {
	// PairFailures limits one client address guessing one account. It is
	// small: this is the limit an attacker meets first, and it locks out
	// nobody else.
	PairFailures int
	// AddressFailures limits one client address across all accounts, so
	// that it cannot try a few passwords on each of many accounts. Every
	// client behind one address shares it, so it must be well above what
	// honest typos from a shared address add up to.
	AddressFailures int
	// AccountFailures limits failures on one account from addresses it
	// has not logged in from (see KnownFor), so that guessing spread over
	// many addresses is slowed too. It must be above PairFailures: one
	// address alone must not reach it.
	AccountFailures int
	Window          time.Duration
	Lockout         time.Duration
	MaxLockout      time.Duration
	// KnownFor is how long an address the account logged in from stays
	// exempt from AccountFailures for that account.
	KnownFor time.Duration
	// MaxEntries bounds each of the four tables.
	MaxEntries int
}

// Outcome is how a login attempt ended, as Logins counts it.
type Outcome int

// The outcomes of an attempt.
const (
	// Failed is a wrong password or an unknown name: it counts toward
	// every limit the attempt was checked against.
	Failed Outcome = iota + 1
	// Succeeded is the right password. It never counts; it forgets the
	// failures of this account from this address and makes the address
	// known for the account.
	Succeeded
	// Aborted is neither (the database failed, the client hung up): the
	// attempt's reservation is released and nothing is counted.
	Aborted
)

// Logins is the login policy: failures are limited per (account, client
// address), per client address across accounts, and per account from
// addresses that account has not logged in from. The last limit is the
// only one that addresses other than the guesser's share, and an account's
// owner logging in from a known address is exempt from it; so no number
// of failures from one address, or from any addresses the owner does not
// use, refuses the owner's correct password from an address they used
// before, and one address alone cannot reach it at all.
//
// Every limit is checked before any password is verified, and attempts in
// flight count toward them (see Table). It is safe for concurrent use.
type Logins struct {
	pairs     *Table
	addresses *Table
	accounts  *Table
	known     *known
	now       func() time.Time
}

// NewLogins returns the policy with empty tables. now is the clock,
// time.Now outside tests.
func NewLogins(cfg LoginConfig, now func() time.Time) *Logins {
	if now == nil {
		now = time.Now
	}
	table := func(max int) *Table {
		return New(Config{
			MaxFailures: max, Window: cfg.Window, Lockout: cfg.Lockout,
			MaxLockout: cfg.MaxLockout, MaxEntries: cfg.MaxEntries,
		}, now)
	}
	return &Logins{
		pairs:     table(cfg.PairFailures),
		addresses: table(cfg.AddressFailures),
		accounts:  table(cfg.AccountFailures),
		known:     newKnown(cfg.KnownFor, cfg.MaxEntries),
		now:       now,
	}
}

// Acquire reserves a login attempt on account (its case-folded name) from
// address (see AddressKey). When the attempt must not go ahead it returns
// how long to wait and reserves nothing. Otherwise wait is 0 and end must
// be called exactly once with the attempt's outcome.
//
// The address is checked first, so that an address over its limit adds
// no entries to the other tables.
func (l *Logins) Acquire(account, address string) (end func(Outcome), wait time.Duration) {
	if wait := l.addresses.Acquire(address); wait > 0 {
		return nil, wait
	}
	pair := pairKey(account, address)
	if wait := l.pairs.Acquire(pair); wait > 0 {
		l.addresses.Done(address, false)
		return nil, wait
	}
	ceiling := !l.known.has(pair, l.now())
	if ceiling {
		if wait := l.accounts.Acquire(account); wait > 0 {
			l.pairs.Done(pair, false)
			l.addresses.Done(address, false)
			return nil, wait
		}
	}
	return func(o Outcome) {
		failed := o == Failed
		l.addresses.Done(address, failed)
		l.pairs.Done(pair, failed)
		if ceiling {
			l.accounts.Done(account, failed)
		}
		if o == Succeeded {
			// The address and account counts stay: an attacker who owns
			// one account must not clear them by logging in to it, and the
			// owner's login must not reopen the account to a botnet.
			l.pairs.Reset(pair)
			l.known.add(pair, l.now())
		}
	}, 0
}

// Len returns the number of keys remembered in each table, for tests.
func (l *Logins) Len() (pairs, addresses, accounts, known int) {
	return l.pairs.Len(), l.addresses.Len(), l.accounts.Len(), l.known.len()
}

// pairKey joins an account and an address; neither a valid user name nor
// an address holds a NUL byte.
func pairKey(account, address string) string { return account + "\x00" + address }

// known remembers, for a while, the (account, address) pairs that logged
// in successfully. It is bounded: when full, the least recently used pair
// goes, which at worst subjects that owner to the account ceiling again.
type known struct {
	ttl        time.Duration
	maxEntries int
	mu         sync.Mutex
	pairs      map[string]*list.Element // of *knownPair
	lru        *list.List               // least recently used at the front
}

type knownPair struct {
	key   string
	until time.Time
}

func newKnown(ttl time.Duration, maxEntries int) *known {
	return &known{ttl: ttl, maxEntries: max(1, maxEntries), pairs: make(map[string]*list.Element), lru: list.New()}
}

func (k *known) has(key string, now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	el, ok := k.pairs[key]
	if !ok {
		return false
	}
	if now.Before(el.Value.(*knownPair).until) {
		return true
	}
	delete(k.pairs, key)
	k.lru.Remove(el)
	return false
}

func (k *known) add(key string, now time.Time) {
	if k.ttl <= 0 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if el, ok := k.pairs[key]; ok {
		el.Value.(*knownPair).until = now.Add(k.ttl)
		k.lru.MoveToBack(el)
		return
	}
	for len(k.pairs) >= k.maxEntries {
		front := k.lru.Front()
		delete(k.pairs, front.Value.(*knownPair).key)
		k.lru.Remove(front)
	}
	k.pairs[key] = k.lru.PushBack(&knownPair{key: key, until: now.Add(k.ttl)})
}

func (k *known) len() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.pairs)
}
