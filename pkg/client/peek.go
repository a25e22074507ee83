package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// userKind is the knd claim of a user token (the services' token contract,
// internal/token in this repository).
const userKind = "grpcchatter/user"

// peekedUser is what a user token says about its bearer, read without
// verifying it.
type peekedUser struct {
	Name      string
	ExpiresAt time.Time
}

// peekUser reads a user token's name and expiry without verifying it: the
// Client holds no secret, and needs only to show who it is logged in as
// and to renew before expiry. The services verify every token they are
// given; never base a decision to trust on this.
func peekUser(raw string) (peekedUser, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return peekedUser{}, errors.New("token malformed: not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return peekedUser{}, fmt.Errorf("token malformed: %w", err)
	}
	var c struct {
		Kind string   `json:"knd"`
		Name string   `json:"name"`
		Exp  *float64 `json:"exp"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return peekedUser{}, fmt.Errorf("token malformed: %w", err)
	}
	if c.Kind != userKind {
		return peekedUser{}, fmt.Errorf("wrong kind of token: got %q, want %q", c.Kind, userKind)
	}
	u := peekedUser{Name: c.Name}
	if c.Exp != nil {
		u.ExpiresAt = time.Unix(int64(*c.Exp), 0)
	}
	return u, nil
}
