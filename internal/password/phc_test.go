package password_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/password"
)

// referenceHash is the argon2id test vector of the reference
// implementation (phc-winner-argon2): "password", salt "somesalt",
// m=65536, t=2, p=1, 32-byte key.
const referenceHash = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"

func TestVerifiesTheReferenceVector(t *testing.T) {
	h := newHasher(t, cheap)
	ok, stale, err := h.Verify(t.Context(), "password", referenceHash)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.True(t, stale, "more memory and time than cheap, but an 8-byte salt against its 16")

	ok, _, err = h.Verify(t.Context(), "Password", referenceHash)
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestPHCRoundTrip: a hash records its own parameters, so a Hasher with
// different ones still verifies it.
func TestPHCRoundTrip(t *testing.T) {
	for _, p := range []password.Params{
		{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 8, KeyLen: 16},
		{MemoryKiB: 96, Time: 3, Threads: 3, SaltLen: 64, KeyLen: 64},
		{MemoryKiB: 40, Time: 2, Threads: 5, SaltLen: 17, KeyLen: 33},
	} {
		enc, err := newHasher(t, p).Hash(t.Context(), "pässwörd")
		require.NoError(t, err)
		parts := strings.Split(enc, "$")
		require.Len(t, parts, 6, enc)
		assert.Equal(t, []string{"", "argon2id", "v=19"}, parts[:3])
		assert.Equal(t, fmt.Sprintf("m=%d,t=%d,p=%d", p.MemoryKiB, p.Time, p.Threads), parts[3])
		assert.Len(t, parts[4], int(p.SaltLen*4+2)/3, "unpadded base64 salt")
		assert.Len(t, parts[5], int(p.KeyLen*4+2)/3, "unpadded base64 key")

		ok, _, err := newHasher(t, cheap).Verify(t.Context(), "pässwörd", enc)
		require.NoError(t, err)
		assert.True(t, ok, "%+v", p)
	}
}

func TestVerifyRejectsMalformed(t *testing.T) {
	h := newHasher(t, cheap)
	good, err := h.Hash(t.Context(), "pw")
	require.NoError(t, err)
	parts := strings.Split(good, "$")
	withParams := func(s string) string { return strings.Replace(good, parts[3], s, 1) }
	for name, enc := range map[string]string{
		"empty":              "",
		"plain text":         "pw",
		"bcrypt":             "$2a$10$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
		"argon2i":            strings.Replace(good, "argon2id", "argon2i", 1),
		"old version":        strings.Replace(good, "v=19", "v=16", 1),
		"version with zero":  strings.Replace(good, "v=19", "v=019", 1),
		"leading text":       "x" + good,
		"bad params":         withParams("m=x,t=1,p=1"),
		"params reordered":   withParams("t=1,m=64,p=1"),
		"params with junk":   withParams("m=64,t=1,p=1,x"),
		"params with sign":   withParams("m=+64,t=1,p=1"),
		"params with zero":   withParams("m=064,t=1,p=1"),
		"zero time":          withParams("m=64,t=0,p=1"),
		"time above the cap": withParams("m=64,t=17,p=1"),
		"huge time":          withParams("m=64,t=4294967295,p=1"),
		"zero threads":       withParams("m=64,t=1,p=0"),
		"threads overflow":   withParams("m=64,t=1,p=256"),
		"too little memory":  withParams("m=15,t=1,p=2"),
		"memory above cap":   withParams("m=1048577,t=1,p=1"),
		"memory overflow":    withParams("m=99999999999,t=1,p=1"),
		"bad salt":           strings.Replace(good, parts[4], "!!!", 1),
		"padded salt":        strings.Replace(good, parts[4], parts[4]+"==", 1),
		"empty salt":         strings.Replace(good, "$"+parts[4]+"$", "$$", 1),
		"short salt":         strings.Replace(good, parts[4], "c2FsdA", 1),
		"non-canonical salt": strings.Replace(good, parts[4], "c29tZXNhbHR", 1),
		"short key":          strings.Join(append(parts[:5:5], "a2V5a2V5a2V5"), "$"),
		"long key":           good + strings.Repeat("A", 60),
		"missing key":        strings.Join(parts[:5], "$"),
		"extra segments":     good + "$x",
		"oversized":          good + strings.Repeat("A", 1<<20),
	} {
		t.Run(name, func(t *testing.T) {
			ok, stale, err := h.Verify(t.Context(), "pw", enc)
			assert.ErrorIs(t, err, password.ErrMalformedHash)
			assert.False(t, ok)
			assert.False(t, stale)
		})
	}
}
