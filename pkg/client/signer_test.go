package client_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// The fake services' tokens: HS256 JWTs with the claims the real services
// write (sub, knd, name, room, aud, iss, iat, exp), so that the Client
// reads them as it reads the real ones. Verification is as strict as the
// fake needs: signature, algorithm, kind and expiry (with the services'
// 30 s leeway).

const (
	fakeLeeway   = 30 * time.Second
	fakeUserKind = "grpcchatter/user"
	fakeRoomKind = "grpcchatter/room"
)

type fakeClaims struct {
	jwt.RegisteredClaims
	Kind string `json:"knd"`
	Name string `json:"name"`
	Room string `json:"room,omitempty"`
}

type fakeUser struct {
	ID, Name  string
	ExpiresAt time.Time
}

type fakeRoomToken struct {
	UserID, UserName, Room string
	ExpiresAt              time.Time
}

// fakeSigner issues and verifies the fake services' tokens; now is its
// clock (nil: time.Now).
type fakeSigner struct {
	now func() time.Time
}

func (s *fakeSigner) clock() time.Time {
	if s.now != nil {
		return s.now()
	}
	return time.Now()
}

func (s *fakeSigner) issue(c fakeClaims, subject string, ttl time.Duration) (string, time.Time, error) {
	now := s.clock()
	exp := now.Add(ttl).Truncate(time.Second)
	c.RegisteredClaims = jwt.RegisteredClaims{
		Issuer: "grpcchatter", Subject: subject, Audience: jwt.ClaimStrings{c.Kind},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
	}
	signed, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(testSecret))
	return signed, exp, err
}

func (s *fakeSigner) IssueUser(id, name string, ttl time.Duration) (string, time.Time, error) {
	return s.issue(fakeClaims{Kind: fakeUserKind, Name: name}, id, ttl)
}

func (s *fakeSigner) IssueRoom(userID, userName, room string, ttl time.Duration) (string, time.Time, error) {
	return s.issue(fakeClaims{Kind: fakeRoomKind, Name: userName, Room: room}, userID, ttl)
}

func (s *fakeSigner) verify(raw, kind string) (*fakeClaims, error) {
	var c fakeClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired(), jwt.WithLeeway(fakeLeeway))
	if _, err := p.ParseWithClaims(raw, &c, func(*jwt.Token) (any, error) { return []byte(testSecret), nil }); err != nil {
		return nil, fmt.Errorf("token invalid: %w", err)
	}
	if c.Kind != kind {
		return nil, errors.New("wrong kind of token")
	}
	return &c, nil
}

func (s *fakeSigner) VerifyUser(raw string) (fakeUser, error) {
	c, err := s.verify(raw, fakeUserKind)
	if err != nil {
		return fakeUser{}, err
	}
	return fakeUser{ID: c.Subject, Name: c.Name, ExpiresAt: c.ExpiresAt.Time}, nil
}

func (s *fakeSigner) VerifyRoom(raw string) (fakeRoomToken, error) {
	c, err := s.verify(raw, fakeRoomKind)
	if err != nil {
		return fakeRoomToken{}, err
	}
	return fakeRoomToken{UserID: c.Subject, UserName: c.Name, Room: c.Room, ExpiresAt: c.ExpiresAt.Time}, nil
}
