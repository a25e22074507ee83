package client

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
)

// login is what LogIn was given, kept so that the Client can log in again
// when its user token runs out. It is zero after UseToken and Close.
type login struct {
	userName string
	password string
}

// renewal is a login in flight, shared by every caller that needs a new
// user token meanwhile so that they cause one login, not one each.
type renewal struct {
	done chan struct{} // closed once err is set
	err  error
}

// setCreds replaces the user's credentials. c.mu must be held.
func (c *Client) setCreds(creds Credentials, l login) {
	c.creds = creds
	c.login = l
	c.credsTTL = 0
	if !creds.ExpiresAt.IsZero() {
		c.credsTTL = max(time.Until(creds.ExpiresAt), 0)
	}
	// A login in flight for the old credentials must not overwrite these.
	c.credsGen++
}

// userToken returns a user token to use now. A Client that logged in with
// LogIn logs in again when, by its own clock, the token is about to
// expire: it does not wait for the chat service to refuse it, since the
// service tolerates some clock skew past a token's expiry. A Client given
// its token with UseToken can only report it expired.
func (c *Client) userToken(ctx context.Context) (string, error) {
	if c.chat == nil {
		return "", ErrNotCreated
	}
	c.mu.Lock()
	closed, tok, exp, ttl, canRenew := c.closed, c.creds.Token, c.creds.ExpiresAt, c.credsTTL, c.login.password != ""
	c.mu.Unlock()
	switch {
	case closed:
		return "", ErrClosed
	case tok == "":
		return "", ErrNotLoggedIn
	case exp.IsZero() || time.Until(exp) > refreshWindow(ttl):
		return tok, nil
	case !canRenew && time.Now().After(exp):
		return "", &Error{Kind: ErrUnauthenticated, Message: "user token expired; log in again"}
	case !canRenew:
		return tok, nil
	}
	fresh, err := c.renewUserToken(ctx, tok)
	if err != nil && !errors.Is(err, ErrUnauthenticated) && ctx.Err() == nil && time.Now().Before(exp) {
		// The auth service is down or throttling, but the token still
		// works: use it, and try again on the next call.
		c.cfg.logger.Info("logging in again failed; using the current user token until it expires", slog.Any("error", err))
		return tok, nil
	}
	return fresh, err
}

// withUserToken calls call with a user token. Should the service refuse the
// token although the Client believes it valid (it was revoked, or the
// clocks disagree), a Client that can log in again does so and calls once
// more.
func (c *Client) withUserToken(ctx context.Context, call func(token string) error) error {
	tok, err := c.userToken(ctx)
	if err != nil {
		return err
	}
	err = call(tok)
	var e *Error
	if !errors.As(err, &e) || e.Code != codes.Unauthenticated || !c.canLogInAgain() {
		return err
	}
	if tok, err = c.renewUserToken(ctx, tok); err != nil {
		return err
	}
	return call(tok)
}

func (c *Client) canLogInAgain() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.login.password != ""
}

// renewUserToken logs in again with the saved credentials, unless stale is
// no longer the current token (another caller renewed it meanwhile), and
// returns the new token.
//
// A refusal (401: the password changed or the account is gone) makes the
// Client forget the password, so that it does not count against the
// account's failed logins again and again; the error matches
// ErrUnauthenticated. A 429 comes back as ErrRateLimited with the delay the
// service asked for.
func (c *Client) renewUserToken(ctx context.Context, stale string) (string, error) {
	for {
		c.mu.Lock()
		switch {
		case c.closed:
			c.mu.Unlock()
			return "", ErrClosed
		case c.creds.Token != stale && c.creds.Token != "":
			tok := c.creds.Token
			c.mu.Unlock()
			return tok, nil
		case c.login.password == "":
			c.mu.Unlock()
			return "", &Error{Kind: ErrUnauthenticated, Message: "user token expired or refused; log in again"}
		case c.renewing != nil:
			r := c.renewing
			c.mu.Unlock()
			select {
			case <-r.done:
			case <-ctx.Done():
				return "", ctx.Err()
			}
			// The caller that logged in may have given up on its own
			// context; only its other errors are ours too.
			if r.err != nil && !errors.Is(r.err, context.Canceled) && !errors.Is(r.err, context.DeadlineExceeded) {
				return "", r.err
			}
			continue
		}
		r := &renewal{done: make(chan struct{})}
		c.renewing = r
		l, gen := c.login, c.credsGen
		c.mu.Unlock()

		creds, err := c.logInRPC(ctx, l.userName, l.password)

		c.mu.Lock()
		current := c.credsGen == gen && !c.closed
		switch {
		case !current:
			// LogIn, UseToken or Close replaced what this login was for.
		case err == nil:
			c.setCreds(creds, l)
		case errors.Is(err, ErrUnauthenticated):
			c.login = login{}
		}
		c.renewing = nil
		r.err = err
		close(r.done)
		hook := c.cfg.credentialsHook
		c.mu.Unlock()

		if err != nil {
			c.cfg.logger.Info("logging in again failed", slog.String("user", l.userName), slog.Any("error", err))
			return "", c.closedOr(err)
		}
		if !current {
			continue
		}
		c.cfg.logger.Info("logged in again", slog.String("user", creds.UserName), slog.Time("expires_at", creds.ExpiresAt))
		if hook != nil {
			hook(creds)
		}
		return creds.Token, nil
	}
}
