package main

import (
	"context"
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

// usage is `chatter help`; README.md's CLI section shows it verbatim (a
// test keeps them equal).
const usage = `usage: chatter [flags] [command] [args] [flags]

commands:
  register            create the account CHATTER_USER; its new password is typed twice
  login               log in and print a user token for CHATTER_TOKEN
  create-room NAME    create a room and print its code; its new password is typed twice
  join CODE           send stdin's lines to the room, print its messages
  users CODE          list the users online in a room
  delete-room CODE    delete a room you own
  tui                 the full-screen client (the default on a terminal)
  help                print this help

flags, before or after the command:
  --auth-url URL      auth service (CHATTER_AUTH_URL, default http://127.0.0.1:8080)
  --chat-addr ADDRS   chat service (CHATTER_CHAT_ADDR, default 127.0.0.1:5050): host:port, or
                      several instances' host:port separated by commas, one picked at random
                      and the next used when it fails
  --user NAME         user name (CHATTER_USER)
  --json              print JSON on stdout (every command but tui): one object, one per event
                      for join, an array for users
register and create-room:
  --password-stdin    take the new password from stdin's first line instead of a prompt
join:
  --backlog N         first print up to N of the room's latest messages, marked earlier (default 50, 0 for none)
  --wait DURATION     at end of input, wait for the echo of what was sent until none comes for this long (default 10s)

passwords are never flags: the account's comes from CHATTER_PASSWORD, a room's from
CHATTER_ROOM_PASSWORD, or else from a prompt on a terminal, where a new one is typed twice;
scripts set the variable or use --password-stdin, and are not asked twice.
exit codes: 0 ok, 1 runtime error, 2 usage or invalid input, 3 authentication, 4 room not found, 5 name taken,
130 interrupted at a prompt.
`

// run is chatter without the process around it, for tests.
func run(ctx context.Context, args []string, io stdio, env lookupEnv) int {
	a := &app{io: io, env: env, backlog: client.DefaultBacklog}
	err := a.dispatch(ctx, args)
	if err == nil {
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
	// passwordStdin: the new password is stdin's first line.
	passwordStdin bool
	wait          time.Duration
	// backlog is how many earlier messages joining a room shows.
	backlog int
}

func (a *app) getenv(key, def string) string {
	if v, ok := a.env(key); ok && v != "" {
		return v
	}
	return def
}

// command is one of chatter's subcommands.
type command struct {
	name string
	// args names the positional arguments, in order.
	args []string
	// flags adds the command's own flags to the global ones.
	flags func(a *app, fs *flag.FlagSet)
	run   func(ctx context.Context, a *app, args []string) error
}

func passwordStdinFlag(a *app, fs *flag.FlagSet) {
	fs.BoolVar(&a.passwordStdin, "password-stdin", false, "read the new password from stdin's first line")
}

var commands = []command{
	{name: "register", flags: passwordStdinFlag, run: func(ctx context.Context, a *app, _ []string) error { return a.register(ctx) }},
	{name: "login", run: func(ctx context.Context, a *app, _ []string) error { return a.login(ctx) }},
	{name: "create-room", args: []string{"NAME"}, flags: passwordStdinFlag,
		run: func(ctx context.Context, a *app, args []string) error { return a.createRoom(ctx, args[0]) }},
	{name: "delete-room", args: []string{"CODE"}, run: func(ctx context.Context, a *app, args []string) error { return a.deleteRoom(ctx, args[0]) }},
	{name: "users", args: []string{"CODE"}, run: func(ctx context.Context, a *app, args []string) error { return a.users(ctx, args[0]) }},
	{name: "join", args: []string{"CODE"}, flags: func(a *app, fs *flag.FlagSet) {
		fs.DurationVar(&a.wait, "wait", 10*time.Second, "at end of input, wait for the echo of sent lines until none comes for this long")
		fs.IntVar(&a.backlog, "backlog", client.DefaultBacklog, "how many of the room's latest messages to print first")
	}, run: func(ctx context.Context, a *app, args []string) error {
		if a.wait < 0 {
			return usageError{"--wait must not be negative"}
		}
		if a.backlog < 0 {
			return usageError{"--backlog must not be negative"}
		}
		return a.join(ctx, args[0])
	}},
	{name: "tui", run: func(ctx context.Context, a *app, _ []string) error {
		if a.json {
			return usageError{"the full-screen client has no --json output"}
		}
		if !isTerminal(a.io.in) {
			return usageError{"the full-screen client needs a terminal; see `chatter help` for the subcommands"}
		}
		return a.tui(ctx)
	}},
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

// flagSet returns a flag set with the global flags and, for cmd, its own.
func (a *app) flagSet(name string, own ...func(*app, *flag.FlagSet)) *flag.FlagSet {
	fs := flag.NewFlagSet("chatter "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, and reported once by run
	fs.StringVar(&a.authURL, "auth-url", a.getenv("CHATTER_AUTH_URL", client.DefaultAuthURL), "auth service URL")
	fs.StringVar(&a.chatAddr, "chat-addr", a.getenv("CHATTER_CHAT_ADDR", client.DefaultChatAddress), "chat service address(es), comma-separated")
	fs.StringVar(&a.user, "user", a.getenv("CHATTER_USER", ""), "user name")
	fs.BoolVar(&a.json, "json", false, "print JSON")
	for _, f := range own {
		if f != nil {
			f(a, fs)
		}
	}
	return fs
}

// dispatch finds the command among args, wherever the flags are, and runs
// it.
func (a *app) dispatch(ctx context.Context, args []string) error {
	name, rest, err := a.splitCommand(args)
	if errors.Is(err, flag.ErrHelp) {
		name = "help"
	} else if err != nil {
		return err
	}
	switch name {
	case "help":
		fmt.Fprint(a.io.out, usage)
		return nil
	case "":
		if !isTerminal(a.io.in) {
			fmt.Fprint(a.io.err, usage)
			return usageError{"no command given (the list is above)"}
		}
		name = "tui"
	}
	cmd, ok := lookupCommand(name)
	if !ok {
		return usageError{fmt.Sprintf("unknown command %q; see `chatter help`", name)}
	}
	fs := a.flagSet(name, cmd.flags)
	pos, err := parseAnywhere(fs, rest)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(a.io.out, usage)
		return nil
	} else if err != nil {
		return err
	}
	if len(pos) != len(cmd.args) {
		if len(cmd.args) == 0 {
			return usageError{fmt.Sprintf("%s takes no arguments", fs.Name())}
		}
		return usageError{fmt.Sprintf("usage: %s %s [flags]", fs.Name(), strings.Join(cmd.args, " "))}
	}
	return cmd.run(ctx, a, pos)
}

// splitCommand returns the command named in args (the first argument that
// is neither a flag nor a flag's value) and the other arguments in their
// order. The flags of every command are known here, so that a flag's value
// is never taken for the command; the command's own flag set then says
// which of them it accepts.
func (a *app) splitCommand(args []string) (string, []string, error) {
	scratch := &app{env: a.env}
	fs := scratch.flagSet("")
	for _, c := range commands {
		if c.flags == nil {
			continue
		}
		own := flag.NewFlagSet(c.name, flag.ContinueOnError)
		c.flags(scratch, own)
		own.VisitAll(func(f *flag.Flag) {
			if fs.Lookup(f.Name) == nil { // commands may share a flag
				fs.Var(f.Value, f.Name, f.Usage)
			}
		})
	}
	if err := fs.Parse(args); err != nil {
		return "", nil, flagError(err)
	}
	pos := fs.Args()
	if len(pos) == 0 {
		return "", args, nil
	}
	flags := args[:len(args)-len(pos)]
	if n := len(flags); n > 0 && flags[n-1] == "--" {
		// Everything after "--" is an argument, the first one included.
		return "", args, nil
	}
	rest := append(append([]string{}, flags...), pos[1:]...)
	return pos[0], rest, nil
}

// parseAnywhere parses flags that may come before, between or after the
// positional arguments, and returns those.
func parseAnywhere(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, flagError(err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

func flagError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err.Error() + "; see `chatter help`"}
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
