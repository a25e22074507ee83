// Command baseline serves the minimal broadcast ChatService that the load
// generator measures the chat service against. It listens on
// GRPC_SERVER_ADDRESS:GRPC_SERVER_PORT (default 127.0.0.1:9090) and stops
// on SIGINT or SIGTERM.
package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"

	"google.golang.org/grpc"

	"github.com/grpcchatter/grpcchatter/bench/internal/baseline"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "baseline:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	host, port := getenv("GRPC_SERVER_ADDRESS"), getenv("GRPC_SERVER_PORT")
	if host == "" {
		host = "127.0.0.1"
	}
	if port == "" {
		port = "9090"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, port))
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	chatv1.RegisterChatServiceServer(srv, baseline.New())
	// Owned by run; ends when the context is cancelled.
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	return srv.Serve(l)
}
