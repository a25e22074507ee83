package password

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
)

// maxEncodedLen is far above the longest hash New can make; anything
// longer is rejected before it is parsed.
const maxEncodedLen = 256

// Strict rejects non-zero padding bits, so that every hash has one
// spelling.
var b64 = base64.RawStdEncoding.Strict()

// encode returns the PHC string $argon2id$v=19$m=...,t=...,p=...$salt$key.
func encode(p Params, salt, key []byte) string {
	return "$argon2id$v=" + strconv.Itoa(argon2.Version) + "$" + costString(p) +
		"$" + b64.EncodeToString(salt) + "$" + b64.EncodeToString(key)
}

func costString(p Params) string {
	return fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Time, p.Threads)
}

// decode parses a PHC string made by encode. It accepts only the
// canonical spelling of each field and only costs within the caps, since
// the string comes from storage that may have been tampered with.
func decode(s string) (Params, []byte, []byte, error) {
	if len(s) > maxEncodedLen {
		return Params{}, nil, nil, fmt.Errorf("%w: longer than %d bytes", ErrMalformedHash, maxEncodedLen)
	}
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, fmt.Errorf("%w: not an argon2id PHC string", ErrMalformedHash)
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return Params{}, nil, nil, fmt.Errorf("%w: unsupported version %q", ErrMalformedHash, parts[2])
	}
	var p Params
	// Sscanf ignores trailing text and accepts signs and leading zeros;
	// formatting the result back catches all of those.
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || costString(p) != parts[3] {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters %q", ErrMalformedHash, parts[3])
	}
	if !p.validCost() {
		return Params{}, nil, nil, fmt.Errorf("%w: parameters out of range %q", ErrMalformedHash, parts[3])
	}
	salt, err := decodeField("salt", parts[4], minSaltLen, maxSaltLen)
	if err != nil {
		return Params{}, nil, nil, err
	}
	key, err := decodeField("key", parts[5], minKeyLen, maxKeyLen)
	if err != nil {
		return Params{}, nil, nil, err
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

func decodeField(name, s string, lo, hi int) ([]byte, error) {
	b, err := b64.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrMalformedHash, name, err)
	}
	if len(b) < lo || len(b) > hi {
		return nil, fmt.Errorf("%w: %s of %d bytes, want %d-%d", ErrMalformedHash, name, len(b), lo, hi)
	}
	return b, nil
}
