// Command idleclient holds idle Chat streams open, one connection each,
// with the SDK's keepalive settings, for the end-to-end test of liveness
// under packet loss. It reads room tokens, one per line, from -tokens,
// opens a stream with each, prints "open N" once all have their Opened
// and "local 0 ADDR" (the first connection's local address), then prints
// "end I CODE MESSAGE" for every stream that ends, until SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "idleclient:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	addr := flag.String("addr", "127.0.0.1:5050", "chat's gRPC address")
	file := flag.String("tokens", "", "file of room tokens, one per line")
	parallel := flag.Int("parallel", 16, "streams opened at once")
	flag.Parse()
	b, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	tokens := strings.Fields(string(b))
	var out sync.Mutex
	say := func(format string, args ...any) {
		out.Lock()
		defer out.Unlock()
		fmt.Printf(format+"\n", args...)
	}

	var (
		mu     sync.Mutex
		local0 string
		conns  []*grpc.ClientConn
		wg     sync.WaitGroup // the readers
	)
	defer func() {
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()
	sem := make(chan struct{}, *parallel)
	errc := make(chan error, len(tokens))
	for i, tok := range tokens {
		sem <- struct{}{}
		go func() {
			defer func() { <-sem }()
			dial := func(ctx context.Context, a string) (net.Conn, error) {
				// As grpc-go's own dialer: no Go TCP keepalive.
				c, err := (&net.Dialer{KeepAlive: -1}).DialContext(ctx, "tcp", a)
				if err == nil && i == 0 {
					mu.Lock()
					local0 = c.LocalAddr().String()
					mu.Unlock()
				}
				return c, err
			}
			conn, err := grpc.NewClient("passthrough:///"+*addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithKeepaliveParams(client.KeepaliveParams()), grpc.WithContextDialer(dial))
			if err != nil {
				errc <- err
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			wg.Add(1) // for the reader, if the stream opens
			mu.Unlock()
			stream, err := chatv1.NewChatServiceClient(conn).Chat(metadata.AppendToOutgoingContext(ctx, "token", tok))
			if err == nil {
				err = stream.Send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}})
			}
			var first *chatv1.ChatResponse
			if err == nil {
				first, err = stream.Recv()
			}
			if err == nil && first.GetEvents()[0].GetOpened() == nil {
				err = errors.New("first event is not Opened")
			}
			if err != nil {
				wg.Done()
				errc <- fmt.Errorf("stream %d: %w", i, err)
				return
			}
			errc <- nil
			// Owner: run. Exit: when the stream ends, which closing its
			// connection at exit forces.
			go func() {
				defer wg.Done()
				for {
					if _, err := stream.Recv(); err != nil {
						if ctx.Err() == nil {
							st := status.Convert(err)
							say("end %d %s %s", i, st.Code(), strings.ReplaceAll(st.Message(), "\n", " "))
						}
						return
					}
				}
			}()
		}()
	}
	for range tokens {
		if err := <-errc; err != nil {
			return err
		}
	}
	say("open %d", len(tokens))
	mu.Lock()
	say("local 0 %s", local0)
	mu.Unlock()
	<-ctx.Done()
	return nil
}
