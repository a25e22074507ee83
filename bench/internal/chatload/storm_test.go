package chatload

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// A join storm's member counts the users its Opened lists and the
// Presence events it receives, without decoding the frames.
func TestCountPresence(t *testing.T) {
	joined := func(name string) *chatv1.Event {
		return &chatv1.Event{Kind: &chatv1.Event_Presence{Presence: &chatv1.Presence{Kind: chatv1.PresenceKind_PRESENCE_KIND_JOINED, UserName: name}}}
	}
	users := []*chatv1.RoomUser{{UserName: "ann", Streams: 1}, {UserName: "bob", Streams: 2}, {UserName: "cy", Streams: 1}}
	tests := []struct {
		name       string
		events     []*chatv1.Event
		want       int
		wantOpened bool
	}{
		{"empty", nil, 0, false},
		{"opened lists its users", []*chatv1.Event{{Kind: &chatv1.Event_Opened{Opened: &chatv1.Opened{ShortCode: "ABC", Users: users, HeadSequence: 4}}}}, 3, true},
		{"presence events", []*chatv1.Event{joined("dan"), {Kind: &chatv1.Event_Message{Message: &chatv1.Message{Body: "hi"}}}, joined("eve")}, 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(&chatv1.ChatResponse{Events: tt.events})
			require.NoError(t, err)
			n, opened, err := countPresence(b)
			require.NoError(t, err)
			assert.Equal(t, tt.want, n)
			assert.Equal(t, tt.wantOpened, opened)
		})
	}
	_, _, err := countPresence([]byte{0x0a, 0x05, 0x1a})
	assert.ErrorIs(t, err, errMalformed)
}
