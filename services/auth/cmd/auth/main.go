// Command auth is the GRPCChatter account service: it registers users and
// logs them in, answering with user tokens signed by the shared SECRET.
//
// Settings come from the environment, optionally preceded by a .env file:
//
//	auth [--config FILE]
//
// See internal/config for every key and its default.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "auth:", err)
		stop()
		os.Exit(1)
	}
}
