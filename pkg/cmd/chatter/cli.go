package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"golang.org/x/term"
)

// Exit codes, documented in the package comment.
const (
	exitOK       = 0
	exitRuntime  = 1
	exitUsage    = 2
	exitAuth     = 3
	exitNotFound = 4
	exitTaken    = 5
	// exitInterrupted is the shells' code for a process ended by SIGINT.
	exitInterrupted = 130
)

type stdio struct {
	in       io.Reader
	out, err io.Writer
}

type lookupEnv func(string) (string, bool)

// usageError is a mistake in how chatter was called.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

const usage = `usage: chatter [command] [flags] [args]

commands:
  register            create the account (CHATTER_USER, CHATTER_PASSWORD)
  login               log in and print a user token for CHATTER_TOKEN
  create-room NAME    create a room (CHATTER_ROOM_PASSWORD) and print its code
  join CODE           send stdin's lines to the room, print its messages
  users CODE          list the users online in a room
  delete-room CODE    delete a room you own
  tui                 the full-screen client (the default on a terminal)

flags (every command):
  --auth-url URL      auth service (CHATTER_AUTH_URL, default http://127.0.0.1:8080)
  --chat-addr ADDRS   chat service (CHATTER_CHAT_ADDR, default 127.0.0.1:5050): host:port, or
                      several instances' host:port separated by commas, one picked at random
                      and the next used when it fails
  --user NAME         user name (CHATTER_USER)
join flags:
  --json              print one JSON object per event
  --backlog N         first print up to N of the room's latest messages, marked earlier (default 50, 0 for none)
  --wait DURATION     at end of input, wait for the echo of what was sent until none comes for this long (default 10s)

passwords come from CHATTER_PASSWORD and CHATTER_ROOM_PASSWORD, or a prompt on a terminal.
exit codes: 0 ok, 1 runtime error, 2 usage or invalid input, 3 authentication, 4 room not found, 5 name taken,
130 interrupted at a prompt.
`

// run is chatter without the process around it, for tests.
func run(ctx context.Context, args []string, io stdio, env lookupEnv) int {
	cmd := "tui"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	} else if len(args) == 0 && !isTerminal(io.in) {
		fmt.Fprint(io.err, usage)
		return exitUsage
	}
	if cmd == "help" {
		fmt.Fprint(io.out, usage)
		return exitOK
	}
	a := &app{io: io, env: env, backlog: client.DefaultBacklog}
	err := a.dispatch(ctx, cmd, args)
	if err == nil {
		return exitOK
	}
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		fmt.Fprintln(io.err, "chatter: interrupted")
		return exitInterrupted
	}
	fmt.Fprintln(io.err, "chatter:", describe(err))
	return exitCode(err)
}

func exitCode(err error) int {
	var ue usageError
	switch {
	case errors.As(err, &ue), errors.Is(err, client.ErrInvalidArgument):
		return exitUsage
	case errors.Is(err, client.ErrUnauthenticated), errors.Is(err, client.ErrPermissionDenied),
		errors.Is(err, client.ErrRateLimited), errors.Is(err, client.ErrNotLoggedIn):
		return exitAuth
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	case errors.Is(err, client.ErrAlreadyTaken):
		return exitTaken
	}
	return exitRuntime
}

// describe says what went wrong in words a user can act on.
func describe(err error) string {
	switch {
	case errors.Is(err, client.ErrRoomDeleted):
		return "the room was deleted by its owner"
	case errors.Is(err, client.ErrUnavailable):
		return err.Error() + " (is the service running? check --auth-url and --chat-addr)"
	case errors.Is(err, client.ErrRateLimited):
		return err.Error() + "; wait and try again"
	}
	return err.Error()
}

type app struct {
	io  stdio
	env lookupEnv

	authURL, chatAddr, user string
	json                    bool
	wait                    time.Duration
	// backlog is how many earlier messages joining a room shows.
	backlog int
}

func (a *app) getenv(key, def string) string {
	if v, ok := a.env(key); ok && v != "" {
		return v
	}
	return def
}

func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("chatter "+name, flag.ContinueOnError)
	fs.SetOutput(a.io.err)
	fs.Usage = func() { fmt.Fprint(a.io.err, usage) }
	fs.StringVar(&a.authURL, "auth-url", a.getenv("CHATTER_AUTH_URL", client.DefaultAuthURL), "auth service URL")
	fs.StringVar(&a.chatAddr, "chat-addr", a.getenv("CHATTER_CHAT_ADDR", client.DefaultChatAddress), "chat service address(es), comma-separated")
	fs.StringVar(&a.user, "user", a.getenv("CHATTER_USER", ""), "user name")
	return fs
}

// parse parses flags (which may follow the arguments) and checks that
// exactly want arguments remain.
func (a *app) parse(fs *flag.FlagSet, args []string, want int, names string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, usageError{err.Error()}
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
	if len(rest) != want {
		if want == 0 {
			return nil, usageError{fmt.Sprintf("%s takes no arguments", fs.Name())}
		}
		return nil, usageError{fmt.Sprintf("usage: %s [flags] %s", fs.Name(), names)}
	}
	return rest, nil
}

func (a *app) dispatch(ctx context.Context, cmd string, args []string) error {
	fs := a.flags(cmd)
	switch cmd {
	case "register":
		if _, err := a.parse(fs, args, 0, ""); err != nil {
			return err
		}
		return a.register(ctx)
	case "login":
		if _, err := a.parse(fs, args, 0, ""); err != nil {
			return err
		}
		return a.login(ctx)
	case "create-room":
		rest, err := a.parse(fs, args, 1, "NAME")
		if err != nil {
			return err
		}
		return a.createRoom(ctx, rest[0])
	case "delete-room":
		rest, err := a.parse(fs, args, 1, "CODE")
		if err != nil {
			return err
		}
		return a.deleteRoom(ctx, rest[0])
	case "users":
		fs.BoolVar(&a.json, "json", false, "print JSON")
		rest, err := a.parse(fs, args, 1, "CODE")
		if err != nil {
			return err
		}
		return a.users(ctx, rest[0])
	case "join":
		fs.BoolVar(&a.json, "json", false, "print one JSON object per event")
		fs.DurationVar(&a.wait, "wait", 10*time.Second, "at end of input, wait for the echo of sent lines until none comes for this long")
		fs.IntVar(&a.backlog, "backlog", client.DefaultBacklog, "how many of the room's latest messages to print first")
		rest, err := a.parse(fs, args, 1, "CODE")
		if err != nil {
			return err
		}
		if a.wait < 0 {
			return usageError{"--wait must not be negative"}
		}
		if a.backlog < 0 {
			return usageError{"--backlog must not be negative"}
		}
		return a.join(ctx, rest[0])
	case "tui":
		if _, err := a.parse(fs, args, 0, ""); err != nil {
			return err
		}
		if !isTerminal(a.io.in) {
			return usageError{"the full-screen client needs a terminal; see `chatter help` for the subcommands"}
		}
		return a.tui(ctx)
	}
	return usageError{fmt.Sprintf("unknown command %q; see `chatter help`", cmd)}
}

func (a *app) newClient() (*client.Client, error) {
	return client.New(client.WithAuthURL(a.authURL), client.WithChatAddress(chatAddresses(a.chatAddr)...), client.WithBacklog(a.backlog))
}

// chatAddresses splits a comma-separated list of chat addresses, spaces
// around them allowed. An empty item is kept, for client.New to refuse
// with its position, rather than silently dropped.
func chatAddresses(list string) []string {
	addrs := strings.Split(list, ",")
	for i, a := range addrs {
		addrs[i] = strings.TrimSpace(a)
	}
	return addrs
}

func (a *app) requireUser() error {
	if a.user == "" {
		return usageError{"no user name: set --user or CHATTER_USER"}
	}
	return nil
}

// secret reads a password from the environment or, on a terminal, a prompt
// without echo. An interrupt (ctx done) ends the prompt with ctx's error.
func (a *app) secret(ctx context.Context, envKey, prompt string) (string, error) {
	if v, ok := a.env(envKey); ok && v != "" {
		return v, nil
	}
	if !isTerminal(a.io.in) {
		return "", usageError{fmt.Sprintf("no password: set %s (passwords are never taken as flags)", envKey)}
	}
	fd := int(a.io.in.(*os.File).Fd())
	saved, err := term.GetState(fd)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	fmt.Fprint(a.io.err, prompt)
	type result struct {
		pw  []byte
		err error
	}
	read := make(chan result, 1)
	// The reader ends when a line or an error comes in. A read from a
	// terminal cannot be cancelled, so on an interrupt it is left behind
	// (chatter exits right after); the terminal's echo is restored here.
	go func() {
		pw, err := term.ReadPassword(fd)
		read <- result{pw, err}
	}()
	var r result
	select {
	case r = <-read:
	case <-ctx.Done():
		_ = term.Restore(fd, saved)
		fmt.Fprintln(a.io.err)
		return "", ctx.Err()
	}
	fmt.Fprintln(a.io.err)
	b, err := r.pw, r.err
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	if len(b) == 0 {
		return "", usageError{"empty password"}
	}
	return string(b), nil
}

func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// colorful tells whether w is a terminal that may be styled: the user did
// not opt out with NO_COLOR.
func (a *app) colorful(w io.Writer) bool {
	if v, ok := a.env("NO_COLOR"); ok && v != "" {
		return false
	}
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func (a *app) register(ctx context.Context) error {
	if err := a.requireUser(); err != nil {
		return err
	}
	pw, err := a.secret(ctx, "CHATTER_PASSWORD", "new password for "+a.user+": ")
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
	fmt.Fprintf(a.io.out, "registered %s\n", acct.UserName)
	return nil
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
	pw, err := a.secret(ctx, "CHATTER_ROOM_PASSWORD", "password for room "+name+": ")
	if err != nil {
		return err
	}
	code, err := c.CreateChatRoom(ctx, name, pw)
	if err != nil {
		return fmt.Errorf("create room %q: %w", name, err)
	}
	fmt.Fprintln(a.io.out, code)
	return nil
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
	w := bufio.NewWriter(a.io.out)
	enc := json.NewEncoder(w)
	for _, u := range users {
		if a.json {
			_ = enc.Encode(map[string]any{"user_name": u.Name, "streams": u.Streams})
		} else {
			fmt.Fprintln(w, u.Name)
		}
	}
	return w.Flush()
}
