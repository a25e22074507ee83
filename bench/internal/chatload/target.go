// Package chatload drives a ChatService over loopback: fan-out rooms in
// burst and paced mode, over gRPC or WebSocket, a stalled member, and many
// idle connections. It speaks only the public proto, so the same code
// measures the chat service and the baseline.
package chatload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/grpcchatter/grpcchatter/internal/token"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Target is a ChatService endpoint.
type Target struct {
	// Name labels the target in the report ("chat", "baseline").
	Name string
	// Addr is host:port.
	Addr string
	// WebAddr is host:port of the chat service's web listener, which
	// serves the Chat stream over WebSocket; "" when the target has none
	// (the baseline).
	WebAddr string
	// Addrs, when set, are several instances of the service that share
	// rooms. A fan-out run then creates its rooms on the first and spreads
	// each room's members, senders included, evenly over all of them;
	// Addr is not used.
	Addrs []string
	// Signer mints user tokens. It must sign with the SECRET the target
	// was started with; the baseline does not check tokens at all.
	Signer *token.Signer
	// CPU, when set, returns the target's CPU time so far: of all its
	// processes, the broker's included, when there are several.
	CPU func() (time.Duration, error)
	// BrokerCPU, when set, returns the CPU time so far of the message
	// broker the instances share (nats-server), which CPU includes too;
	// it is reported apart.
	BrokerCPU func() (time.Duration, error)
}

// instances is where members stream: Addrs, or Addr alone.
func (t Target) instances() []string {
	if len(t.Addrs) > 0 {
		return t.Addrs
	}
	return []string{t.Addr}
}

const roomPassword = "bench-room-password"

// member is one user with a room token.
type member struct {
	user  string
	token string
}

// room is a created room and its members' tokens.
type room struct {
	code    string
	members []member
}

func dial(addr string, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts = append([]grpc.DialOption{grpc.WithTransportCredentials(insecure.NewCredentials())}, opts...)
	cc, err := grpc.NewClient(addr, opts...)
	if err != nil {
		return nil, err
	}
	cc.Connect()
	return cc, nil
}

func bearer(ctx context.Context, tok string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tok)
}

// setupRooms creates count rooms of size members each, with tokens for
// every member. Users are named <prefix>r<room>m<member>.
func setupRooms(ctx context.Context, t Target, cc *grpc.ClientConn, prefix string, count, size int) ([]room, error) {
	client := chatv1.NewChatServiceClient(cc)
	rooms := make([]room, count)
	userToken := func(name string) (string, error) {
		tok, _, err := t.Signer.IssueUser("id-"+name, name, 2*time.Hour)
		return tok, err
	}
	jobs := make(chan [2]int)
	errs := make(chan error, 1)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	fail := func(err error) {
		select {
		case errs <- err:
		default:
		}
		cancel()
	}
	for i := range rooms {
		owner := fmt.Sprintf("%sr%dm0", prefix, i)
		tok, err := userToken(owner)
		if err != nil {
			return nil, err
		}
		resp, err := client.CreateChatRoom(bearer(ctx, tok), &chatv1.CreateChatRoomRequest{
			Name: fmt.Sprintf("bench %s %d", prefix, i), Password: roomPassword,
		})
		if err != nil {
			return nil, fmt.Errorf("create room: %w", err)
		}
		rooms[i] = room{code: resp.GetShortCode(), members: make([]member, size)}
	}
	// Workers owned by setupRooms; they end when jobs is closed.
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				r, m := j[0], j[1]
				name := fmt.Sprintf("%sr%dm%d", prefix, r, m)
				code := rooms[r].code
				// Room tokens are minted for the room's code rather than
				// got from JoinChatRoom, whose argon2id check of the room
				// password per member would dominate setting up thousands.
				tok, _, err := t.Signer.IssueRoom("id-"+name, name, code, 2*time.Hour)
				if err != nil {
					fail(fmt.Errorf("join room %s as %s: %w", code, name, err))
					continue
				}
				rooms[r].members[m] = member{user: name, token: tok}
			}
		}()
	}
feed:
	for r := range rooms {
		for m := range size {
			select {
			case jobs <- [2]int{r, m}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return rooms, ctx.Err()
}

// open starts a Chat stream and waits for Opened.
func open(ctx context.Context, cc *grpc.ClientConn, tok string) (*chatStream, error) {
	stream, err := newChatStream(bearer(ctx, tok), cc)
	if err != nil {
		return nil, err
	}
	if err := stream.send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}); err != nil {
		return nil, fmt.Errorf("send open: %w", err)
	}
	frame, err := stream.recv()
	if err != nil {
		return nil, fmt.Errorf("await opened: %w", err)
	}
	opened, err := walkFrame(frame, func(_, _ []byte) {})
	if err != nil {
		return nil, err
	}
	if !opened {
		return nil, errors.New("first event was not Opened")
	}
	return stream, nil
}
