// Command chat is the GRPCChatter chat service.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
)

func main() {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	err := run(sigs, os.Args[1:])
	signal.Stop(sigs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chat:", err)
		os.Exit(1)
	}
}

// run serves until a signal arrives on sigs: the first starts a graceful
// shutdown, a second one during it closes every connection at once.
func run(sigs <-chan os.Signal, args []string) error {
	cfg, err := config.Load(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	force := make(chan struct{})
	done := make(chan struct{})
	defer close(done)
	// Owner: run. Exit: when run returns (done), after at most two signals.
	go func() {
		for i := 0; i < 2; i++ {
			select {
			case <-sigs:
			case <-done:
				return
			}
			if i == 0 {
				cancel()
			} else {
				close(force)
			}
		}
	}()
	return serve(ctx, cfg, options{force: force, logOut: os.Stderr})
}
