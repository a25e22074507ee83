package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// The --json output of the commands other than join, one object (an array
// for users) on standard output. README.md documents these shapes: a field
// is never left out, and one added later does not change the others.
type (
	registeredJSON struct {
		UserName string `json:"user_name"`
	}
	loggedInJSON struct {
		UserName  string    `json:"user_name"`
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	roomCreatedJSON struct {
		ShortCode string `json:"short_code"`
		Name      string `json:"name"`
	}
	roomDeletedJSON struct {
		ShortCode string `json:"short_code"`
		Deleted   bool   `json:"deleted"`
	}
	userJSON struct {
		UserName string `json:"user_name"`
		Streams  int    `json:"streams"`
	}
)

// printJSON writes v as one line of JSON on standard output.
func (a *app) printJSON(v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(a.io.out, "%s\n", b)
	return err
}

func (a *app) register(ctx context.Context) error {
	if err := a.requireUser(); err != nil {
		return err
	}
	pw, err := a.newSecret(ctx, "CHATTER_PASSWORD", "new password for "+a.user+": ")
	if err != nil {
		return err
	}
	c, err := a.newClient()
	if err != nil {
		return err
	}
	defer c.Close()
	acct, err := c.CreateAccount(ctx, a.user, pw)
	if err != nil {
		return fmt.Errorf("register %q: %w", a.user, err)
	}
	if a.json {
		return a.printJSON(registeredJSON{UserName: acct.UserName})
	}
	_, err = fmt.Fprintf(a.io.out, "registered %s\n", acct.UserName)
	return err
}

// loggedIn returns a client logged in with CHATTER_TOKEN, or with the user
// name and password.
func (a *app) loggedIn(ctx context.Context) (*client.Client, error) {
	if tok, ok := a.env("CHATTER_TOKEN"); ok && tok != "" {
		c, err := a.newClient()
		if err != nil {
			return nil, err
		}
		if _, err := c.UseToken(tok); err != nil {
			c.Close()
			return nil, fmt.Errorf("CHATTER_TOKEN: %w", err)
		}
		return c, nil
	}
	c, _, err := a.passwordLogIn(ctx)
	return c, err
}

// passwordLogIn returns a client logged in with the user name and the
// password from CHATTER_PASSWORD or a prompt.
func (a *app) passwordLogIn(ctx context.Context) (*client.Client, client.Credentials, error) {
	if err := a.requireUser(); err != nil {
		return nil, client.Credentials{}, err
	}
	pw, err := a.secret(ctx, "CHATTER_PASSWORD", "password for "+a.user+": ")
	if err != nil {
		return nil, client.Credentials{}, err
	}
	c, err := a.newClient()
	if err != nil {
		return nil, client.Credentials{}, err
	}
	creds, err := c.LogIn(ctx, a.user, pw)
	if err != nil {
		c.Close()
		return nil, client.Credentials{}, fmt.Errorf("log in as %q: %w", a.user, err)
	}
	return c, creds, nil
}

func (a *app) login(ctx context.Context) error {
	c, creds, err := a.passwordLogIn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if a.json {
		return a.printJSON(loggedInJSON{UserName: creds.UserName, Token: creds.Token, ExpiresAt: creds.ExpiresAt.UTC()})
	}
	fmt.Fprintln(a.io.out, creds.Token)
	fmt.Fprintf(a.io.err, "logged in as %s until %s\n", creds.UserName, creds.ExpiresAt.Local().Format(time.DateTime))
	return nil
}

func (a *app) createRoom(ctx context.Context, name string) error {
	c, err := a.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	pw, err := a.newSecret(ctx, "CHATTER_ROOM_PASSWORD", "new password for room "+name+": ")
	if err != nil {
		return err
	}
	code, err := c.CreateChatRoom(ctx, name, pw)
	if err != nil {
		return fmt.Errorf("create room %q: %w", name, err)
	}
	if a.json {
		return a.printJSON(roomCreatedJSON{ShortCode: code, Name: name})
	}
	_, err = fmt.Fprintln(a.io.out, code)
	return err
}

func (a *app) deleteRoom(ctx context.Context, code string) error {
	c, err := a.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.DeleteChatRoom(ctx, code); err != nil {
		return fmt.Errorf("delete room %s: %w", code, err)
	}
	if a.json {
		return a.printJSON(roomDeletedJSON{ShortCode: code, Deleted: true})
	}
	fmt.Fprintf(a.io.err, "deleted room %s\n", code)
	return nil
}

func (a *app) users(ctx context.Context, code string) error {
	c, err := a.loggedIn(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	pw, err := a.secret(ctx, "CHATTER_ROOM_PASSWORD", "password for room "+code+": ")
	if err != nil {
		return err
	}
	users, err := c.PeekChatRoomUsers(ctx, code, pw)
	if err != nil {
		return fmt.Errorf("list users of room %s: %w", code, err)
	}
	list := usersJSON(users)
	if a.json {
		return a.printJSON(list)
	}
	for _, u := range list {
		if _, err := fmt.Fprintln(a.io.out, u.UserName); err != nil {
			return err
		}
	}
	return nil
}

// usersJSON is users sorted by name, never nil: an empty room is [].
func usersJSON(users []client.User) []userJSON {
	out := make([]userJSON, 0, len(users))
	for _, u := range users {
		out = append(out, userJSON{UserName: u.Name, Streams: u.Streams})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserName < out[j].UserName })
	return out
}
