package token_test

import (
	"crypto/rand"
	"crypto/rsa"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/token"
)

const (
	secret   = "0123456789abcdef0123456789abcdef-current"
	previous = "0123456789abcdef0123456789abcdef-previous"
	other    = "0123456789abcdef0123456789abcdef-stranger"
)

func newSigner(t *testing.T, cur, prev string, opts ...token.Option) *token.Signer {
	t.Helper()
	s, err := token.NewSigner(cur, prev, opts...)
	require.NoError(t, err)
	return s
}

// forge signs arbitrary claims with any method and key, the way an attacker
// or a foreign issuer would.
func forge(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(m, c).SignedString(key)
	require.NoError(t, err)
	return s
}

func validUserClaims() jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss":  token.Issuer,
		"sub":  "42",
		"aud":  []string{string(token.KindUser)},
		"iat":  now.Unix(),
		"exp":  now.Add(time.Minute).Unix(),
		"knd":  string(token.KindUser),
		"name": "alice",
	}
}

func TestNewSignerRejectsShortSecrets(t *testing.T) {
	tests := []struct {
		name, cur, prev string
	}{
		{"empty", "", ""},
		{"short current", strings.Repeat("x", 31), ""},
		{"short previous", secret, strings.Repeat("x", 31)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := token.NewSigner(tt.cur, tt.prev)
			assert.ErrorIs(t, err, token.ErrInvalidSecret)
		})
	}
	_, err := token.NewSigner(strings.Repeat("xy", 16), "")
	assert.NoError(t, err, "32 bytes is enough")
	// The same rule as the services' configuration (CheckSecret).
	_, err = token.NewSigner(strings.Repeat("x", 32), "")
	assert.ErrorIs(t, err, token.ErrWeakSecret)
	_, err = token.NewSigner(secret, "replace-me-with-a-random-secret-of-32+")
	assert.ErrorIs(t, err, token.ErrWeakSecret)
}

func TestRoundTrip(t *testing.T) {
	s := newSigner(t, secret, "")

	raw, exp, err := s.IssueUser("42", "alice", 15*time.Minute)
	require.NoError(t, err)
	u, err := s.VerifyUser(raw)
	require.NoError(t, err)
	assert.Equal(t, "42", u.ID)
	assert.Equal(t, "alice", u.Name)
	assert.WithinDuration(t, time.Now().Add(15*time.Minute), exp, 2*time.Second)
	assert.True(t, u.ExpiresAt.Equal(exp))

	raw, _, err = s.IssueRoom("42", "alice", "ABC234", time.Hour)
	require.NoError(t, err)
	r, err := s.VerifyRoom(raw)
	require.NoError(t, err)
	assert.Equal(t, token.Room{UserID: "42", UserName: "alice", Room: "ABC234", ExpiresAt: r.ExpiresAt}, r)
}

func TestKindConfusion(t *testing.T) {
	s := newSigner(t, secret, "")
	user, _, err := s.IssueUser("42", "alice", time.Minute)
	require.NoError(t, err)
	room, _, err := s.IssueRoom("42", "alice", "ABC234", time.Minute)
	require.NoError(t, err)

	_, err = s.VerifyRoom(user)
	assert.ErrorIs(t, err, token.ErrWrongKind, "user token as room token")
	_, err = s.VerifyUser(room)
	assert.ErrorIs(t, err, token.ErrWrongKind, "room token as user token")

	// A token whose kind claim and audience disagree is not accepted as either.
	c := validUserClaims()
	c["aud"] = []string{string(token.KindRoom)}
	_, err = s.VerifyUser(forge(t, jwt.SigningMethodHS256, []byte(secret), c))
	assert.ErrorIs(t, err, token.ErrWrongKind)
}

func TestRejections(t *testing.T) {
	s := newSigner(t, secret, "")
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)

	with := func(edit func(jwt.MapClaims)) jwt.MapClaims {
		c := validUserClaims()
		edit(c)
		return c
	}
	tests := []struct {
		name string
		raw  string
		want error
	}{
		{"empty", "", token.ErrMalformed},
		{"garbage", "not.a.jwt", token.ErrMalformed},
		{"alg none", forge(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, validUserClaims()), token.ErrSignature},
		{"HS512", forge(t, jwt.SigningMethodHS512, []byte(secret), validUserClaims()), token.ErrSignature},
		{"RS256", forge(t, jwt.SigningMethodRS256, rsaKey, validUserClaims()), token.ErrSignature},
		{"other secret", forge(t, jwt.SigningMethodHS256, []byte(other), validUserClaims()), token.ErrSignature},
		{"expired", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) {
			c["exp"] = time.Now().Add(-time.Minute).Unix()
		})), token.ErrExpired},
		{"no exp", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "exp") })), token.ErrMalformed},
		{"no iat", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "iat") })), token.ErrMalformed},
		{"iat in the future", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) {
			c["iat"] = time.Now().Add(time.Hour).Unix()
			c["exp"] = time.Now().Add(2 * time.Hour).Unix()
		})), token.ErrMalformed},
		{"wrong issuer", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { c["iss"] = "someone-else" })), token.ErrMalformed},
		{"no audience", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "aud") })), token.ErrWrongKind},
		{"no subject", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "sub") })), token.ErrMalformed},
		{"no name", forge(t, jwt.SigningMethodHS256, []byte(secret), with(func(c jwt.MapClaims) { delete(c, "name") })), token.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.VerifyUser(tt.raw)
			require.Error(t, err)
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

// TestTimesMustBeNumbers: exp, nbf and iat given as JSON strings, which
// golang-jwt's NumericDate would read as numbers, are refused as
// malformed in user and room tokens alike, even when correctly signed and
// otherwise valid; so are other non-numbers.
func TestTimesMustBeNumbers(t *testing.T) {
	s := newSigner(t, secret, "")
	later := time.Now().Add(time.Hour).Unix()
	earlier := time.Now().Add(-time.Minute).Unix()
	roomClaims := func() jwt.MapClaims {
		c := validUserClaims()
		c["aud"] = []string{string(token.KindRoom)}
		c["knd"] = string(token.KindRoom)
		c["room"] = "ABCDEF"
		return c
	}
	kinds := []struct {
		name   string
		claims func() jwt.MapClaims
		verify func(raw string) error
	}{
		{"user", validUserClaims, func(raw string) error { _, err := s.VerifyUser(raw); return err }},
		{"room", roomClaims, func(raw string) error { _, err := s.VerifyRoom(raw); return err }},
	}
	for _, k := range kinds {
		t.Run(k.name, func(t *testing.T) {
			require.NoError(t, k.verify(forge(t, jwt.SigningMethodHS256, []byte(secret), k.claims())), "the valid token verifies")
			withNbf := k.claims()
			withNbf["nbf"] = earlier
			require.NoError(t, k.verify(forge(t, jwt.SigningMethodHS256, []byte(secret), withNbf)), "a numeric nbf is fine")

			for _, tt := range []struct {
				claim string
				value any
			}{
				{"exp", strconv.FormatInt(later, 10)},
				{"exp", "1999999999"},
				{"exp", strconv.FormatInt(later, 10) + ".0"},
				{"iat", strconv.FormatInt(earlier, 10)},
				{"nbf", strconv.FormatInt(earlier, 10)},
				{"exp", true},
				{"exp", []int64{later}},
				{"exp", map[string]int64{"t": later}},
				{"nbf", nil},
			} {
				c := k.claims()
				c[tt.claim] = tt.value
				err := k.verify(forge(t, jwt.SigningMethodHS256, []byte(secret), c))
				assert.ErrorIs(t, err, token.ErrMalformed, "%s = %#v", tt.claim, tt.value)
			}
		})
	}
}

func TestRoomTokenNeedsRoom(t *testing.T) {
	s := newSigner(t, secret, "")
	c := validUserClaims()
	c["aud"] = []string{string(token.KindRoom)}
	c["knd"] = string(token.KindRoom)
	_, err := s.VerifyRoom(forge(t, jwt.SigningMethodHS256, []byte(secret), c))
	assert.ErrorIs(t, err, token.ErrMalformed)
}

func TestLeeway(t *testing.T) {
	now := time.Now()
	issuer := newSigner(t, secret, "", token.WithClock(func() time.Time { return now }))
	raw, _, err := issuer.IssueUser("42", "alice", time.Minute)
	require.NoError(t, err)

	tests := []struct {
		name string
		skew time.Duration
		want error
	}{
		{"verifier clock behind, within leeway", -token.Leeway / 2, nil},
		{"verifier clock behind, beyond leeway", -2 * token.Leeway, token.ErrMalformed},
		{"just expired, within leeway", time.Minute + token.Leeway/2, nil},
		{"expired beyond leeway", time.Minute + 2*token.Leeway, token.ErrExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newSigner(t, secret, "", token.WithClock(func() time.Time { return now.Add(tt.skew) }))
			_, err := v.VerifyUser(raw)
			if tt.want == nil {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, tt.want)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	old := newSigner(t, previous, "")
	rotated := newSigner(t, secret, previous)

	oldToken, _, err := old.IssueUser("42", "alice", time.Minute)
	require.NoError(t, err)
	_, err = rotated.VerifyUser(oldToken)
	assert.NoError(t, err, "tokens signed with the previous secret stay valid")

	newToken, _, err := rotated.IssueUser("42", "alice", time.Minute)
	require.NoError(t, err)
	_, err = old.VerifyUser(newToken)
	assert.ErrorIs(t, err, token.ErrSignature, "new tokens are signed with the current secret")

	stranger := newSigner(t, other, "")
	strangeToken, _, err := stranger.IssueUser("42", "alice", time.Minute)
	require.NoError(t, err)
	_, err = rotated.VerifyUser(strangeToken)
	assert.ErrorIs(t, err, token.ErrSignature)

	// The previous secret never signs: a room token issued after rotation
	// is rejected by a verifier that only knows the old secret.
	room, _, err := rotated.IssueRoom("42", "alice", "ABC234", time.Minute)
	require.NoError(t, err)
	_, err = old.VerifyRoom(room)
	assert.ErrorIs(t, err, token.ErrSignature)
}

func TestIssueValidatesInput(t *testing.T) {
	s := newSigner(t, secret, "")
	_, _, err := s.IssueUser("", "alice", time.Minute)
	assert.Error(t, err)
	_, _, err = s.IssueUser("42", "alice", 0)
	assert.Error(t, err)
	_, _, err = s.IssueRoom("42", "alice", "", time.Minute)
	assert.Error(t, err)
}

func BenchmarkVerifyUser(b *testing.B) {
	s, err := token.NewSigner(secret, previous)
	require.NoError(b, err)
	raw, _, err := s.IssueUser("42", "alice", time.Hour)
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.VerifyUser(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkIssueUser(b *testing.B) {
	s, err := token.NewSigner(secret, "")
	require.NoError(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.IssueUser("42", "alice", time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func TestPeek(t *testing.T) {
	s := newSigner(t, secret, "")
	raw, exp, err := s.IssueUser("42", "alice", time.Minute)
	require.NoError(t, err)
	u, err := token.Peek(raw)
	require.NoError(t, err)
	assert.Equal(t, "alice", u.Name)
	assert.Equal(t, "42", u.ID)
	assert.True(t, exp.Equal(u.ExpiresAt))

	// Peek does not verify: a token signed with another secret still reads.
	other := newSigner(t, "0123456789abcdef0123456789abcdef-stranger", "")
	foreign, _, err := other.IssueUser("7", "bob", time.Minute)
	require.NoError(t, err)
	u, err = token.Peek(foreign)
	require.NoError(t, err)
	assert.Equal(t, "bob", u.Name)

	room, _, err := s.IssueRoom("42", "alice", "ABC234", time.Minute)
	require.NoError(t, err)
	_, err = token.Peek(room)
	assert.ErrorIs(t, err, token.ErrWrongKind)
	_, err = token.Peek("not a token")
	assert.ErrorIs(t, err, token.ErrMalformed)
}
