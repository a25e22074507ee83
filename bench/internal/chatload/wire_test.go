package chatload

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

func TestWalkFrame(t *testing.T) {
	msg := func(id, body string) *chatv1.Event {
		return &chatv1.Event{Kind: &chatv1.Event_Message{Message: &chatv1.Message{
			Sequence: 7, Epoch: "e", SentAt: timestamppb.Now(), Sender: "ann", Body: body, ClientMessageId: id,
		}}}
	}
	tests := []struct {
		name       string
		events     []*chatv1.Event
		wantOpened bool
		wantIDs    []string
		wantBodies []string
	}{
		{"empty frame", nil, false, nil, nil},
		{"opened", []*chatv1.Event{{Kind: &chatv1.Event_Opened{Opened: &chatv1.Opened{ShortCode: "ABC", HeadSequence: 3}}}}, true, nil, nil},
		{"messages in order", []*chatv1.Event{msg("1", "hello"), msg("2", "world")}, false, []string{"1", "2"}, []string{"hello", "world"}},
		{"presence is skipped", []*chatv1.Event{
			{Kind: &chatv1.Event_Presence{Presence: &chatv1.Presence{Kind: chatv1.PresenceKind_PRESENCE_KIND_JOINED, UserName: "bob"}}},
			msg("9", "x"),
		}, false, []string{"9"}, []string{"x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := proto.Marshal(&chatv1.ChatResponse{Events: tt.events})
			require.NoError(t, err)
			var ids, bodies []string
			opened, err := walkFrame(b, func(id, body []byte) {
				ids, bodies = append(ids, string(id)), append(bodies, string(body))
			})
			require.NoError(t, err)
			assert.Equal(t, tt.wantOpened, opened)
			assert.Equal(t, tt.wantIDs, ids)
			assert.Equal(t, tt.wantBodies, bodies)
		})
	}
}

func TestWalkFrameRejectsTruncated(t *testing.T) {
	b, err := proto.Marshal(&chatv1.ChatResponse{Events: []*chatv1.Event{{Kind: &chatv1.Event_Message{Message: &chatv1.Message{Body: "hello"}}}}})
	require.NoError(t, err)
	_, err = walkFrame(b[:len(b)-2], func(_, _ []byte) {})
	assert.ErrorIs(t, err, errMalformed)
}

func TestParseNumbers(t *testing.T) {
	tests := []struct {
		in     string
		hex    bool
		want   int64
		wantOK bool
	}{
		{"0", false, 0, true},
		{"12345", false, 12345, true},
		{"", false, 0, false},
		{"12a", false, 0, false},
		{"probe", false, 0, false},
		{"1a2b", true, 0x1a2b, true},
		{"187a3b2c1d0e9f00", true, 0x187a3b2c1d0e9f00, true},
		{"ff  ", true, 255, true},
		{"xyz", true, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			var got int64
			var ok bool
			if tt.hex {
				got, ok = parseHex([]byte(tt.in))
			} else {
				got, ok = parseDec([]byte(tt.in))
			}
			assert.Equal(t, tt.wantOK, ok)
			if ok {
				assert.Equal(t, tt.want, got)
			}
		})
	}
}

// A late timer is the generator's delay and counts from the send; a send
// held up by the previous one (the service not reading) counts from the
// due time, so that back-pressure shows in the latency.
func TestPacedStamp(t *testing.T) {
	due := time.Unix(100, 0)
	now := due.Add(700 * time.Microsecond)

	stamp, blocked := pacedStamp(now, due, due.Add(-time.Millisecond))
	assert.Equal(t, now, stamp, "free before the due time: counts from the send")
	assert.False(t, blocked)

	stamp, blocked = pacedStamp(now, due, due.Add(300*time.Microsecond))
	assert.Equal(t, due, stamp, "blocked past the due time: counts from the due time")
	assert.True(t, blocked)

	stamp, blocked = pacedStamp(now, due, time.Time{})
	assert.Equal(t, now, stamp, "the first send")
	assert.False(t, blocked)
}
