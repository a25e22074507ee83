package token

import (
	"errors"
	"fmt"
	"strings"
)

// ErrWeakSecret is returned by CheckSecret for a secret that is long enough
// but obviously not random, such as a value copied from an example file.
var ErrWeakSecret = errors.New("secret looks like a placeholder")

// placeholderWords mark values copied from documentation or example files.
var placeholderWords = []string{"replace", "changeme", "change-me", "example", "secret-here"}

// CheckSecret reports whether secret may sign tokens: at least
// MinSecretBytes long and not an obvious stand-in (one repeated character,
// or a placeholder word). Services call it at start for SECRET and, when
// set, SECRET_PREVIOUS, and name the key in the error they report.
func CheckSecret(secret string) error {
	if len(secret) < MinSecretBytes {
		return fmt.Errorf("%w: must be at least %d bytes, got %d", ErrInvalidSecret, MinSecretBytes, len(secret))
	}
	if strings.Count(secret, secret[:1]) == len(secret) {
		return fmt.Errorf("%w: one repeated character; generate one with: openssl rand -hex 32", ErrWeakSecret)
	}
	lower := strings.ToLower(secret)
	for _, w := range placeholderWords {
		if strings.Contains(lower, w) {
			return fmt.Errorf("%w: contains %q; generate one with: openssl rand -hex 32", ErrWeakSecret, w)
		}
	}
	return nil
}
