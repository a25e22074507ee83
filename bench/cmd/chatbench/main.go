// Command chatbench is the GRPCChatter load generator. It builds the chat
// and auth services and the baseline broadcast server, starts them as
// processes, drives them over loopback and writes a report: a table on
// stdout, a JSON file and docs/BENCHMARKS.md with plots in docs/img/.
//
//	go run ./bench/cmd/chatbench -out docs
//
// Run `go run ./bench/cmd/chatbench -h` for the sizes that can be raised.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "chatbench:", err)
		os.Exit(1)
	}
}

// run parses args, runs every benchmark and writes the report.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parseConfig(args, stderr)
	if err != nil {
		return err
	}
	b, err := newBench(ctx, cfg, stderr)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.runAll(ctx)
	if err != nil {
		return err
	}
	return b.write(rep, stdout)
}
