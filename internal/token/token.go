// Package token is the JWT contract shared by the GRPCChatter services.
//
// The auth service issues user tokens; the chat service verifies them and
// issues room tokens. Both kinds are HS256 JWTs signed with the shared
// SECRET, and a token of one kind is never accepted as the other: each kind
// has its own audience and an explicit kind claim, and both are checked.
//
// The algorithm is pinned to HS256, so "none", other HMAC sizes and
// asymmetric algorithms (and with them key-confusion attacks) are rejected
// before any signature work. Every token must carry exp and iat, as JSON
// numbers (exp, nbf and iat given as strings are malformed); iss and aud
// are checked. A previous secret may be configured for verification only so
// that the signing secret can be rotated without logging everybody out.
package token

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MinSecretBytes is the shortest secret accepted for signing or verifying.
// HS256 keys shorter than the hash output weaken the MAC.
const MinSecretBytes = 32

// Leeway is the clock skew tolerated between the issuing and the verifying
// process when checking exp and iat.
const Leeway = 30 * time.Second

// Issuer is the iss claim of every GRPCChatter token.
const Issuer = "grpcchatter"

// Kind tells a user token from a room token.
type Kind string

// The two kinds of token. Their values double as the tokens' audiences.
const (
	KindUser Kind = "grpcchatter/user"
	KindRoom Kind = "grpcchatter/room"
)

// Sentinel errors returned by the Verify methods. Transports map them to
// their status codes; every verification error wraps exactly one of them.
var (
	// ErrExpired means the token's exp lies in the past (beyond Leeway).
	ErrExpired = errors.New("token expired")
	// ErrMalformed means the token cannot be parsed or lacks a required claim.
	ErrMalformed = errors.New("token malformed")
	// ErrSignature means the signature or algorithm is not the one expected.
	ErrSignature = errors.New("token signature invalid")
	// ErrWrongKind means a valid token of the other kind was presented.
	ErrWrongKind = errors.New("wrong kind of token")
	// ErrInvalidSecret is returned by CheckSecret and NewSigner for a
	// missing or short secret.
	ErrInvalidSecret = errors.New("invalid secret")
)

// User is what a user token says about its bearer.
type User struct {
	ID        string
	Name      string
	ExpiresAt time.Time
}

// Room is what a room token says: the bearer is admitted to one room.
type Room struct {
	UserID    string
	UserName  string
	Room      string
	ExpiresAt time.Time
}

// claims is the wire form of both kinds of token.
type claims struct {
	jwt.RegisteredClaims
	Kind Kind   `json:"knd"`
	Name string `json:"name"`
	Room string `json:"room,omitempty"`
}

// Signer issues and verifies tokens. It is safe for concurrent use.
type Signer struct {
	current  []byte
	previous []byte
	now      func() time.Time
}

// Option adjusts a Signer.
type Option func(*Signer)

// WithClock replaces time.Now, for tests.
func WithClock(now func() time.Time) Option {
	return func(s *Signer) { s.now = now }
}

// NewSigner returns a Signer that signs with secret and verifies with secret
// or, when it is not empty, previous. Both must pass CheckSecret.
func NewSigner(secret, previous string, opts ...Option) (*Signer, error) {
	if err := CheckSecret(secret); err != nil {
		return nil, fmt.Errorf("SECRET: %w", err)
	}
	if previous != "" {
		if err := CheckSecret(previous); err != nil {
			return nil, fmt.Errorf("SECRET_PREVIOUS: %w", err)
		}
	}
	s := &Signer{current: []byte(secret), now: time.Now}
	if previous != "" && previous != secret {
		s.previous = []byte(previous)
	}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// IssueUser returns a user token for the account id and name, valid for ttl.
func (s *Signer) IssueUser(id, name string, ttl time.Duration) (string, time.Time, error) {
	if id == "" || name == "" {
		return "", time.Time{}, errors.New("token: user id and name are required")
	}
	return s.issue(claims{Kind: KindUser, Name: name}, id, ttl)
}

// IssueRoom returns a room token admitting the user to room, valid for ttl.
func (s *Signer) IssueRoom(userID, userName, room string, ttl time.Duration) (string, time.Time, error) {
	if userID == "" || userName == "" || room == "" {
		return "", time.Time{}, errors.New("token: user id, user name and room are required")
	}
	return s.issue(claims{Kind: KindRoom, Name: userName, Room: room}, userID, ttl)
}

func (s *Signer) issue(c claims, subject string, ttl time.Duration) (string, time.Time, error) {
	if ttl <= 0 {
		return "", time.Time{}, errors.New("token: ttl must be positive")
	}
	now := s.now()
	exp := now.Add(ttl).Truncate(time.Second)
	c.RegisteredClaims = jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   subject,
		Audience:  jwt.ClaimStrings{string(c.Kind)},
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.current)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token: sign: %w", err)
	}
	return signed, exp, nil
}

// VerifyUser checks a user token and returns its bearer.
func (s *Signer) VerifyUser(raw string) (User, error) {
	c, err := s.verify(raw, KindUser)
	if err != nil {
		return User{}, err
	}
	return User{ID: c.Subject, Name: c.Name, ExpiresAt: c.ExpiresAt.Time}, nil
}

// VerifyRoom checks a room token and returns the admission it grants.
func (s *Signer) VerifyRoom(raw string) (Room, error) {
	c, err := s.verify(raw, KindRoom)
	if err != nil {
		return Room{}, err
	}
	if c.Room == "" {
		return Room{}, fmt.Errorf("%w: room claim missing", ErrMalformed)
	}
	return Room{UserID: c.Subject, UserName: c.Name, Room: c.Room, ExpiresAt: c.ExpiresAt.Time}, nil
}

func (s *Signer) verify(raw string, want Kind) (*claims, error) {
	c, err := s.parse(raw, s.current)
	if errors.Is(err, ErrSignature) && s.previous != nil {
		c, err = s.parse(raw, s.previous)
	}
	if err != nil {
		return nil, err
	}
	if c.Kind != want {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrWrongKind, c.Kind, want)
	}
	if len(c.Audience) != 1 || c.Audience[0] != string(want) {
		return nil, fmt.Errorf("%w: audience does not match kind", ErrWrongKind)
	}
	if c.Subject == "" || c.Name == "" {
		return nil, fmt.Errorf("%w: sub and name are required", ErrMalformed)
	}
	return c, nil
}

// parse verifies signature, algorithm and the registered claims. The
// audience is checked by verify, so that a token of the other kind is
// reported as ErrWrongKind rather than as a generic failure.
func (s *Signer) parse(raw string, key []byte) (*claims, error) {
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(Issuer),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(s.now),
		jwt.WithStrictDecoding(),
	)
	var c claims
	tok, err := p.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return key, nil })
	if err != nil {
		return nil, classify(err)
	}
	if err := numericTimes(p, tok.Raw); err != nil {
		return nil, err
	}
	if c.IssuedAt == nil {
		return nil, fmt.Errorf("%w: iat is required", ErrMalformed)
	}
	return &c, nil
}

// numericTimes refuses a token whose exp, nbf or iat is anything but a
// JSON number. RFC 7519 makes them NumericDates, which are numbers, but
// golang-jwt decodes them through json.Number, which also takes a string
// holding digits ("exp":"1999999999"): no issuer of ours writes that, so
// such a token was made by someone else and is refused as malformed.
func numericTimes(p *jwt.Parser, raw string) error {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: not three segments", ErrMalformed)
	}
	payload, err := p.DecodeSegment(parts[1])
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var times struct {
		Exp json.RawMessage `json:"exp"`
		Nbf json.RawMessage `json:"nbf"`
		Iat json.RawMessage `json:"iat"`
	}
	if err := json.Unmarshal(payload, &times); err != nil {
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	for _, t := range []struct {
		name  string
		value json.RawMessage
	}{{"exp", times.Exp}, {"nbf", times.Nbf}, {"iat", times.Iat}} {
		if t.value == nil {
			continue // absent: exp and iat are required elsewhere
		}
		if c := t.value[0]; c != '-' && (c < '0' || c > '9') {
			return fmt.Errorf("%w: %s must be a number, got %.20s", ErrMalformed, t.name, t.value)
		}
	}
	return nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w: %v", ErrExpired, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: %v", ErrSignature, err)
	default:
		return fmt.Errorf("%w: %v", ErrMalformed, err)
	}
}

// Peek reads a user token's name and expiry without verifying it. It is
// for clients, which hold no secret, to show who they are logged in as and
// to renew before expiry; never base a decision to trust on it.
func Peek(raw string) (User, error) {
	var c claims
	if _, _, err := jwt.NewParser().ParseUnverified(raw, &c); err != nil {
		return User{}, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if c.Kind != KindUser {
		return User{}, fmt.Errorf("%w: got %q, want %q", ErrWrongKind, c.Kind, KindUser)
	}
	u := User{ID: c.Subject, Name: c.Name}
	if c.ExpiresAt != nil {
		u.ExpiresAt = c.ExpiresAt.Time
	}
	return u, nil
}
