package password

import "fmt"

// The OWASP minimum for argon2id (19 MiB, two passes). New accepts
// cheaper parameters so that tests can hash quickly; a service's
// configuration should refuse to start below these.
const (
	MinMemoryKiB = 19 * 1024
	MinTime      = 2
)

// MaxMemoryKiB (1 GiB) and MaxTime (16 passes) bound the cost of new
// hashes and of stored ones, so that a corrupted or planted hash cannot
// make one verification allocate or run without limit. A configuration
// that reads the cost from its settings should enforce them too, so that
// it fails at start rather than at the first hash.
const (
	MaxMemoryKiB = 1 << 20
	MaxTime      = 16
)

// Salt and key lengths in bytes: the defaults for new hashes, and the
// range that New and Verify accept.
const (
	defaultSaltLen = 16
	defaultKeyLen  = 32
	minSaltLen     = 8
	minKeyLen      = 16
	maxSaltLen     = 64
	maxKeyLen      = 64
)

// Params are the argon2id cost parameters of new hashes. Verify reads
// the parameters of a stored hash from the hash itself, so raising them
// leaves old hashes verifiable (and reported stale).
type Params struct {
	MemoryKiB uint32 // memory per hash, at least 8 KiB per thread
	Time      uint32 // passes over the memory
	Threads   uint8  // lanes computed in parallel, each on its own CPU
	SaltLen   uint32 // bytes of random salt, 8-64; zero means 16
	KeyLen    uint32 // bytes of derived key, 16-64; zero means 32
}

// DefaultParams returns the OWASP minimum for argon2id (19 MiB, t=2, p=1)
// with a 16-byte salt and a 32-byte key.
func DefaultParams() Params {
	return Params{MemoryKiB: MinMemoryKiB, Time: MinTime, Threads: 1, SaltLen: defaultSaltLen, KeyLen: defaultKeyLen}
}

// withDefaults fills in the lengths a caller left zero.
func (p Params) withDefaults() Params {
	if p.SaltLen == 0 {
		p.SaltLen = defaultSaltLen
	}
	if p.KeyLen == 0 {
		p.KeyLen = defaultKeyLen
	}
	return p
}

// validCost reports whether argon2id accepts the cost and it is within
// the caps. Argon2 needs at least 8 KiB of memory per thread.
func (p Params) validCost() bool {
	return p.Time >= 1 && p.Time <= MaxTime && p.Threads >= 1 &&
		p.MemoryKiB >= 8*uint32(p.Threads) && p.MemoryKiB <= MaxMemoryKiB
}

func (p Params) validate() error {
	if !p.validCost() {
		return fmt.Errorf("password: invalid argon2id parameters m=%d t=%d p=%d (want t 1-%d, p at least 1, m %d KiB per thread to %d)",
			p.MemoryKiB, p.Time, p.Threads, MaxTime, 8, MaxMemoryKiB)
	}
	if p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen || p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen {
		return fmt.Errorf("password: salt length %d or key length %d out of range (want %d-%d and %d-%d bytes)",
			p.SaltLen, p.KeyLen, minSaltLen, maxSaltLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// weakerThan reports whether hashes made with p are cheaper to attack
// than hashes made with q. Threads only spread the work, so they don't count.
func (p Params) weakerThan(q Params) bool {
	return p.MemoryKiB < q.MemoryKiB || p.Time < q.Time || p.KeyLen < q.KeyLen || p.SaltLen < q.SaltLen
}
