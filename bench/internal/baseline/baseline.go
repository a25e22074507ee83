// Package baseline is the yardstick of the fan-out benchmarks: the
// straightforward gRPC broadcast server that a first implementation of
// ChatService would be. It has no authentication, no history, no
// accounting and no per-member queues. Each message is sent to each
// member in turn, by that member's stream (which marshals it again), while
// the room's mutex is held; a slow member therefore slows the whole room.
//
// That is deliberate: the chat service is reported as a ratio to this.
package baseline

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Server implements chatv1.ChatServiceServer without any of the real
// service's machinery.
type Server struct {
	chatv1.UnimplementedChatServiceServer

	next  atomic.Uint64
	mu    sync.Mutex
	rooms map[string]*room
}

type room struct {
	name string
	mu   sync.Mutex
	seq  uint64
	// members maps each open stream to its user name.
	members map[chatv1.ChatService_ChatServer]string
}

// New returns an empty Server.
func New() *Server {
	return &Server{rooms: make(map[string]*room)}
}

// CreateChatRoom makes a room and returns its code.
func (s *Server) CreateChatRoom(_ context.Context, req *chatv1.CreateChatRoomRequest) (*chatv1.CreateChatRoomResponse, error) {
	code := fmt.Sprintf("B%07d", s.next.Add(1))
	s.mu.Lock()
	s.rooms[code] = &room{name: req.GetName(), members: make(map[chatv1.ChatService_ChatServer]string)}
	s.mu.Unlock()
	return &chatv1.CreateChatRoomResponse{ShortCode: code, Name: req.GetName()}, nil
}

// JoinChatRoom returns the room code itself as the room token.
func (s *Server) JoinChatRoom(_ context.Context, req *chatv1.JoinChatRoomRequest) (*chatv1.JoinChatRoomResponse, error) {
	code := strings.ToUpper(req.GetShortCode())
	r := s.room(code)
	if r == nil {
		return nil, status.Error(codes.NotFound, "no such room")
	}
	return &chatv1.JoinChatRoomResponse{
		Token:     code,
		ExpiresAt: timestamppb.New(time.Now().Add(time.Hour)),
		ShortCode: code,
		Name:      r.name,
	}, nil
}

func (s *Server) room(code string) *room {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rooms[code]
}

// Chat broadcasts every Send to every open stream of the room.
func (s *Server) Chat(stream chatv1.ChatService_ChatServer) error {
	code, user := identify(stream.Context())
	r := s.room(code)
	if r == nil {
		return status.Error(codes.NotFound, "no such room")
	}
	first, err := stream.Recv()
	if err != nil {
		return err
	}
	if first.GetOpen() == nil {
		return status.Error(codes.InvalidArgument, "first message must be Open")
	}

	r.mu.Lock()
	err = stream.Send(&chatv1.ChatResponse{Events: []*chatv1.Event{{Kind: &chatv1.Event_Opened{Opened: &chatv1.Opened{
		ShortCode:    code,
		Name:         r.name,
		Epoch:        "baseline",
		HeadSequence: r.seq,
		Recovery:     chatv1.Recovery_RECOVERY_NOT_REQUESTED,
	}}}}})
	if err == nil {
		r.members[stream] = user
	}
	r.mu.Unlock()
	if err != nil {
		return err
	}
	defer func() {
		r.mu.Lock()
		delete(r.members, stream)
		r.mu.Unlock()
	}()

	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		send := req.GetSend()
		if send == nil {
			return status.Error(codes.InvalidArgument, "expected Send")
		}
		r.broadcast(user, send)
	}
}

func (r *room) broadcast(user string, send *chatv1.Send) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	resp := &chatv1.ChatResponse{Events: []*chatv1.Event{{Kind: &chatv1.Event_Message{Message: &chatv1.Message{
		Sequence:        r.seq,
		Epoch:           "baseline",
		SentAt:          timestamppb.Now(),
		Sender:          user,
		Body:            send.GetBody(),
		ClientMessageId: send.GetClientMessageId(),
	}}}}}
	for m := range r.members {
		// An error here means that stream is ending; its handler removes it.
		_ = m.Send(resp)
	}
}

// identify reads the room and user from the bearer token without checking
// it: either a bare room code (what JoinChatRoom returns) or an unverified
// JWT whose room and name claims are used.
func identify(ctx context.Context) (room, user string) {
	md, _ := metadata.FromIncomingContext(ctx)
	var raw string
	if v := md.Get("authorization"); len(v) > 0 {
		raw = strings.TrimSpace(strings.TrimPrefix(v[0], "Bearer "))
	} else if v := md.Get("token"); len(v) > 0 {
		raw = v[0]
	}
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return strings.ToUpper(raw), "anonymous"
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "", ""
	}
	var c struct {
		Room string `json:"room"`
		Name string `json:"name"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return "", ""
	}
	return strings.ToUpper(c.Room), c.Name
}
