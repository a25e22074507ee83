package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/term"
)

// maxPasswordBytes bounds a password read from standard input; the
// services have their own, smaller limits.
const maxPasswordBytes = 4096

// secret reads a password from the environment or, on a terminal, a prompt
// without echo. An interrupt (ctx done) ends the prompt with ctx's error.
func (a *app) secret(ctx context.Context, envKey, prompt string) (string, error) {
	if v, ok := a.env(envKey); ok && v != "" {
		return v, nil
	}
	if !isTerminal(a.io.in) {
		return "", usageError{fmt.Sprintf("no password: set %s (passwords are never taken as flags)", envKey)}
	}
	return a.prompt(ctx, prompt)
}

// newSecret reads a password being set, an account's or a room's: stdin's
// first line with --password-stdin, else the environment, else typed twice
// at a prompt, which must agree. Only a person typing is asked twice.
func (a *app) newSecret(ctx context.Context, envKey, prompt string) (string, error) {
	if a.passwordStdin {
		return a.stdinSecret()
	}
	if v, ok := a.env(envKey); ok && v != "" {
		return v, nil
	}
	if !isTerminal(a.io.in) {
		return "", usageError{fmt.Sprintf("no password: set %s or use --password-stdin (passwords are never taken as flags)", envKey)}
	}
	pw, err := a.prompt(ctx, prompt)
	if err != nil {
		return "", err
	}
	again, err := a.prompt(ctx, "type it again: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", usageError{"the two passwords differ; nothing was changed"}
	}
	return pw, nil
}

// stdinSecret reads a password from standard input's first line.
func (a *app) stdinSecret() (string, error) {
	r := bufio.NewReader(io.LimitReader(a.io.in, maxPasswordBytes+2)) // room for "\r\n"
	line, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the password from standard input: %w", err)
	}
	pw := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	switch {
	case len(pw) > maxPasswordBytes:
		return "", usageError{fmt.Sprintf("the password on standard input is longer than %d bytes", maxPasswordBytes)}
	case pw == "":
		return "", usageError{"--password-stdin: standard input has no password on its first line"}
	}
	return pw, nil
}

// prompt reads a line without echo from the terminal on standard input.
func (a *app) prompt(ctx context.Context, prompt string) (string, error) {
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
	// The reader reads through a descriptor of its own, which it closes
	// when done: one left reading after an interrupt must not, once
	// standard input is closed and its number reused, read what is typed
	// into another file.
	rfd, release, err := ownFD(fd)
	if err != nil {
		return "", fmt.Errorf("reading password: %w", err)
	}
	read := make(chan result, 1)
	// The reader ends when a line or an error comes in. A read from a
	// terminal cannot be cancelled, so on an interrupt it is left behind
	// (chatter exits right after); the terminal's echo is restored here.
	go func() {
		defer release()
		pw, err := term.ReadPassword(rfd)
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
	if r.err != nil {
		return "", fmt.Errorf("reading password: %w", r.err)
	}
	if len(r.pw) == 0 {
		return "", usageError{"empty password"}
	}
	return string(r.pw), nil
}
