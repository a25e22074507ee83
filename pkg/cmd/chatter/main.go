// Command chatter is the GRPCChatter command-line client.
//
// With no arguments on a terminal it starts a full-screen client: log in or
// register, create or join a room, and chat. Subcommands serve scripts and
// pipes:
//
//	chatter register                 create the account CHATTER_USER
//	chatter login                    print a user token (export it as CHATTER_TOKEN)
//	chatter create-room NAME         create a room, print its short code
//	chatter join CODE                send stdin's lines, print the room's messages
//	chatter users CODE               list who is online in a room
//	chatter delete-room CODE         delete a room you own
//	chatter tui                      the full-screen client
//
// Every command takes --auth-url (env CHATTER_AUTH_URL, default
// http://127.0.0.1:8080), --chat-addr (CHATTER_CHAT_ADDR, default
// 127.0.0.1:5050), --user (CHATTER_USER) and, but tui, --json (JSON on
// standard output, in the shapes README.md lists); flags go before or
// after the command. --chat-addr may list the instances of a chat service
// separated by commas (10.0.0.1:5050,10.0.0.2:5050): chatter connects to
// one picked at random, and when it fails, to the next, resuming the room
// where it left off. A DNS name with a record per instance does the same. Passwords are never
// flags: the account password comes from CHATTER_PASSWORD and a room
// password from CHATTER_ROOM_PASSWORD, or else from a prompt without echo
// when standard input is a terminal. A new password (register, create-room)
// typed at a prompt is typed twice; --password-stdin takes it from standard
// input's first line instead. A user token in CHATTER_TOKEN (from
// `chatter login`) is used instead of logging in.
//
// join prints each message as "sender: body" on standard output, or one JSON
// object per event with --json; presence and connection changes go to
// standard error as "* ..." lines in plain mode. It first prints up to
// --backlog (default 50, 0 for none) of the room's latest messages, sent
// before it joined, each marked "[earlier] " (faint on a terminal), or with
// "earlier":true in JSON; the live messages follow. At the end of standard
// input it waits (up to --wait) until the room has echoed every line it sent,
// then leaves and exits 0.
//
// A line the room cannot take (longer than the chat service's limit, which
// it advertises, or not UTF-8) stops join: it waits for the echo of the
// lines before it, then exits 2 naming the line.
//
// Exit codes: 0 success; 1 runtime error (service unreachable, unexpected
// failure); 2 usage error (bad flags or arguments, missing password without
// a terminal, input the service rejects as invalid such as a malformed room
// code or an empty password); 3 authentication failure (bad credentials, expired token,
// wrong room password, throttled); 4 room not found or deleted; 5 name
// already taken; 130 interrupted at a password prompt.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], stdio{in: os.Stdin, out: os.Stdout, err: os.Stderr}, os.LookupEnv)
	stop()
	os.Exit(code)
}
