package rooms

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
)

// Alphabet is the short-code alphabet: digits and upper-case letters without
// 0, O, 1, I and L, which people confuse when reading a code aloud.
const Alphabet = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"

// NewCode returns n characters drawn uniformly from Alphabet with crypto/rand.
func NewCode(n int) (string, error) {
	// rand.Text-style rejection sampling keeps the distribution uniform:
	// 31 symbols do not divide 256, so bytes >= 248 are drawn again.
	const limit = 256 - 256%len(Alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+8)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("rooms: short code: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, Alphabet[int(b)%len(Alphabet)])
			}
		}
	}
	return string(out), nil
}

// NormalizeCode returns the canonical form of a short code as a user typed
// it: trimmed and upper case. It reports InvalidError for an empty code or
// one with characters outside Alphabet, which cannot name any room.
func NormalizeCode(code string) (string, error) {
	c := strings.ToUpper(strings.TrimSpace(code))
	if c == "" {
		return "", Invalid("short_code", "must not be empty")
	}
	if len(c) > 64 || strings.Trim(c, Alphabet) != "" {
		return "", Invalid("short_code", "is not a short code")
	}
	return c, nil
}

// NewEpoch returns a fresh epoch name: 16 random hex characters. A log
// makes one when its history begins, and keeps it as long as the history.
func NewEpoch() string {
	var e [8]byte
	_, _ = rand.Read(e[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(e[:])
}
