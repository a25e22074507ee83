package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Account is a registered user.
type Account struct {
	ID        string
	UserName  string
	CreatedAt time.Time
}

// CreateAccount registers a user with the auth service. It does not log in.
// A name already taken (compared case-insensitively) gives ErrAlreadyTaken.
func (c *Client) CreateAccount(ctx context.Context, userName, password string) (Account, error) {
	var out struct {
		ID        json.RawMessage `json:"id"` // a number or a string, kept as text
		CreatedAt time.Time       `json:"created_at"`
		UserName  string          `json:"user_name"`
	}
	if err := c.postAuth(ctx, "/register", userName, password, &out); err != nil {
		return Account{}, err
	}
	id := string(out.ID)
	var s string
	if json.Unmarshal(out.ID, &s) == nil {
		id = s
	}
	return Account{ID: id, UserName: out.UserName, CreatedAt: out.CreatedAt}, nil
}

// LogIn logs the user in; later calls use the user token it returns. Bad
// credentials give ErrUnauthenticated, too many attempts ErrRateLimited.
//
// The Client keeps userName and password in memory (never logging them,
// and forgetting them on Close or UseToken) to log in again by itself when
// the user token is about to expire or the chat service refuses it, so that
// a session outlives its user token; see the package documentation.
func (c *Client) LogIn(ctx context.Context, userName, password string) (Credentials, error) {
	creds, err := c.logInRPC(ctx, userName, password)
	if err != nil {
		return Credentials{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Credentials{}, ErrClosed
	}
	c.setCreds(creds, login{userName: userName, password: password})
	return creds, nil
}

// logInRPC asks the auth service for a user token.
func (c *Client) logInRPC(ctx context.Context, userName, password string) (Credentials, error) {
	var out struct {
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	if err := c.postAuth(ctx, "/login", userName, password, &out); err != nil {
		return Credentials{}, err
	}
	if out.Token == "" {
		return Credentials{}, &Error{Kind: ErrServer, Message: "login response has no token"}
	}
	creds := Credentials{UserName: userName, Token: out.Token, ExpiresAt: out.ExpiresAt}
	if u, err := peekUser(out.Token); err == nil {
		if u.Name != "" {
			creds.UserName = u.Name
		}
		if creds.ExpiresAt.IsZero() {
			creds.ExpiresAt = u.ExpiresAt
		}
	}
	return creds, nil
}

// UseToken logs in with a user token obtained earlier (e.g. printed by
// `chatter login`). The token is not verified here, only read for its user
// name and expiry; the chat service verifies it on use. Without a password
// the Client cannot renew the token: once it expires, calls and the open
// session fail with ErrUnauthenticated.
func (c *Client) UseToken(raw string) (Credentials, error) {
	if err := c.usable(); err != nil {
		return Credentials{}, err
	}
	u, err := peekUser(raw)
	if err != nil {
		return Credentials{}, &Error{Kind: ErrUnauthenticated, Message: err.Error()}
	}
	creds := Credentials{UserName: u.Name, Token: raw, ExpiresAt: u.ExpiresAt}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return Credentials{}, ErrClosed
	}
	// A token given by hand comes without a password: the Client cannot
	// renew it, and a session ends when it expires.
	c.setCreds(creds, login{})
	return creds, nil
}

// Credentials returns the logged-in user's credentials, or ErrNotLoggedIn.
func (c *Client) Credentials() (Credentials, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.creds.Token == "" {
		return Credentials{}, ErrNotLoggedIn
	}
	return c.creds, nil
}

func (c *Client) postAuth(ctx context.Context, path, userName, password string, out any) error {
	if err := c.usable(); err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"user_name": userName, "password": password})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.cfg.authURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("client: auth URL %q: %w", c.cfg.authURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.cfg.httpClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.closedOr(fmt.Errorf("%w: %w", ErrUnavailable, err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return fromHTTP(resp)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return &Error{Kind: ErrServer, HTTPStatus: resp.StatusCode, Message: "decoding response: " + err.Error()}
	}
	return nil
}
