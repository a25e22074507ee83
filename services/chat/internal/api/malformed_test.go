package api

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Malformed protobuf is the client's mistake: InvalidArgument, never
// Internal, for unary calls and on the Chat stream.
func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	h := newHarness(t, opts{})
	ann := h.userToken("u1", "ann")
	bad := []byte{0x0a, 0xff} // field 1, length 255, no bytes

	for _, m := range []string{"CreateChatRoom", "JoinChatRoom", "DeleteChatRoom", "ListChatRoomUsers"} {
		t.Run(m, func(t *testing.T) {
			err := invokeRaw(h.ctx(ann, 5*time.Second), h.conn, "/grpcchatter.chat.v1.ChatService/"+m, bad, &chatv1.CreateChatRoomResponse{})
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		})
	}

	code := h.room(ann, "room", "pw")
	tok := h.join(ann, code, "pw")
	for _, tc := range []struct {
		name  string
		first bool // the malformed message is the first one
	}{{"first message", true}, {"after Open", false}} {
		t.Run("Chat "+tc.name, func(t *testing.T) {
			ctx := metadata.AppendToOutgoingContext(h.ctx("", 5*time.Second), "token", tok)
			s, err := openRaw(ctx, h.conn)
			require.NoError(t, err)
			if !tc.first {
				require.NoError(t, s.SendMsg(rawMsg{0x0a, 0x00})) // ChatRequest{open: {}}
			}
			require.NoError(t, s.SendMsg(rawMsg(bad)))
			for {
				var res chatv1.ChatResponse
				if err = s.RecvMsg(&res); err != nil {
					break
				}
			}
			require.False(t, errors.Is(err, io.EOF))
			assert.Equal(t, codes.InvalidArgument, status.Code(err), "%v", err)
		})
	}
}

// Realistic over-size input reaches validation and is rejected naming the
// field, not with the transport's ResourceExhausted (the "resume" code).
func TestOverSizeIsInvalidArgument(t *testing.T) {
	h := newHarness(t, opts{maxBody: 1024})
	ann := h.userToken("u1", "ann")
	_, err := h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: strings.Repeat("n", 3000), Password: "pw"})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "name:")
	_, err = h.client.CreateChatRoom(h.ctx(ann, 5*time.Second), &chatv1.CreateChatRoomRequest{Name: "n", Password: strings.Repeat("p", 3000)})
	assert.Contains(t, status.Convert(err).Message(), "password:")

	code := h.room(ann, "room", "pw")
	s := h.open(h.client, h.join(ann, code, "pw"), nil)
	s.send("", strings.Repeat("b", 4*1024)) // 4× MAX_MESSAGE_BYTES
	_, err = s.recv()
	for err == nil {
		_, err = s.recv()
	}
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
	assert.Contains(t, status.Convert(err).Message(), "body:")
}
