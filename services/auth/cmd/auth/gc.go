package main

// gcHeadroomHashes is about how many hashes' memory the heap may grow by
// between two collections when GOGC is unset.
//
// Nearly all of the service's garbage is argon2id memory, ARGON2_MEMORY_KIB
// per hash, allocated by golang.org/x/crypto/argon2 on every call. When a
// collection ends, the live heap is about one such buffer per busy hashing
// slot, and Go's default GOGC=100 lets the heap grow by as much again
// before the next one: on 2 slots the collector ran after every one or two
// logins (0.5 cycles per login under load), and its stack scans, which
// must wait for each hashing goroutine to reach a safe point, took ~2.5%
// of the service's CPU in a profile. With this headroom it runs about
// once per six logins.
const gcHeadroomHashes = 6

// gcPercent returns the GOGC to run with: the operator's if set, otherwise
// one that lets the heap grow by about gcHeadroomHashes hashes, since the
// live heap after a collection is about slots hashes. Machines with at
// least that many slots already get the headroom from Go's default of 100.
//
// The price is memory: the heap peaks near (slots + gcHeadroomHashes) ×
// ARGON2_MEMORY_KIB plus the service's own few MiB × (1 + GOGC/100).
func gcPercent(set *int, slots int) int {
	if set != nil {
		return *set
	}
	return max(100, 100*gcHeadroomHashes/max(1, slots))
}
