package chatload

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// walkJSONFrame finds what walkFrame finds, in every layout protojson
// may produce and in the service's own frames (shared event encodings
// joined into {"events":[...]}).
func TestWalkJSONFrame(t *testing.T) {
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
		{"opened", []*chatv1.Event{{Kind: &chatv1.Event_Opened{Opened: &chatv1.Opened{ShortCode: "ABC", HeadSequence: 3,
			Users: []*chatv1.RoomUser{{UserName: "ann"}, {UserName: "bob"}}}}}}, true, nil, nil},
		{"messages in order", []*chatv1.Event{msg("1", "hello"), msg("2", "world")}, false, []string{"1", "2"}, []string{"hello", "world"}},
		{"presence is skipped", []*chatv1.Event{
			{Kind: &chatv1.Event_Presence{Presence: &chatv1.Presence{Kind: chatv1.PresenceKind_PRESENCE_KIND_JOINED, UserName: "bob"}}},
			msg("9", "x"),
		}, false, []string{"9"}, []string{"x"}},
		{"escapes", []*chatv1.Event{msg("q\"1", "a \"quoted\" \\ line\nünïcode ✓ <b>\u0001")}, false,
			[]string{"q\"1"}, []string{"a \"quoted\" \\ line\nünïcode ✓ <b>\u0001"}},
		{"empty message", []*chatv1.Event{{Kind: &chatv1.Event_Message{Message: &chatv1.Message{}}}}, false, []string{""}, []string{""}},
	}
	layouts := map[string]func(*chatv1.ChatResponse) ([]byte, error){
		"compact": func(m *chatv1.ChatResponse) ([]byte, error) { return protojson.Marshal(m) },
		"multiline": func(m *chatv1.ChatResponse) ([]byte, error) {
			return protojson.MarshalOptions{Multiline: true, Indent: "\t"}.Marshal(m)
		},
		"proto names": func(m *chatv1.ChatResponse) ([]byte, error) {
			return protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		},
		"joined events": func(m *chatv1.ChatResponse) ([]byte, error) {
			b := []byte(`{"events":[`)
			for i, ev := range m.GetEvents() {
				if i > 0 {
					b = append(b, ',')
				}
				e, err := protojson.Marshal(ev)
				if err != nil {
					return nil, err
				}
				b = append(b, e...)
			}
			return append(b, "]}"...), nil
		},
	}
	for _, tt := range tests {
		for layout, marshal := range layouts {
			t.Run(tt.name+"/"+layout, func(t *testing.T) {
				b, err := marshal(&chatv1.ChatResponse{Events: tt.events})
				require.NoError(t, err)
				var ids, bodies []string
				opened, err := walkJSONFrame(b, func(id, body []byte) {
					ids, bodies = append(ids, string(id)), append(bodies, string(body))
				})
				require.NoError(t, err, "%s", b)
				assert.Equal(t, tt.wantOpened, opened)
				assert.Equal(t, tt.wantIDs, ids)
				assert.Equal(t, tt.wantBodies, bodies)
			})
		}
	}
}

func TestWalkJSONFrameRejectsMalformed(t *testing.T) {
	good, err := protojson.Marshal(&chatv1.ChatResponse{Events: []*chatv1.Event{{Kind: &chatv1.Event_Message{Message: &chatv1.Message{Body: "hello", Sequence: 3}}}}})
	require.NoError(t, err)
	for _, frame := range []string{
		string(good[:len(good)-2]),
		string(good) + "x",
		``,
		`[]`,
		`{"events":{}}`,
		`{"events":[{"message":{"body":hello}}]}`,
		`{"events":[{"message":{"body":"a` + "\x01" + `"}}]}`,
		`{"events":[{"message":{"body" "a"}}]}`,
		`{"events":[{"message":{"sequence":}}]}`,
	} {
		_, err := walkJSONFrame([]byte(frame), func(_, _ []byte) {})
		assert.ErrorIs(t, err, errMalformed, "%q", frame)
	}
}

// The receivers walk every delivery: without escapes, nothing allocates.
func TestWalkJSONFrameDoesNotAllocate(t *testing.T) {
	b, err := protojson.Marshal(&chatv1.ChatResponse{Events: []*chatv1.Event{
		{Kind: &chatv1.Event_Message{Message: &chatv1.Message{Sequence: 1, SentAt: timestamppb.Now(), Body: "18f0c0ffee      xxxx", ClientMessageId: "12"}}},
		{Kind: &chatv1.Event_Presence{Presence: &chatv1.Presence{UserName: "bob"}}},
	}})
	require.NoError(t, err)
	n := 0
	allocs := testing.AllocsPerRun(100, func() {
		_, _ = walkJSONFrame(b, func(_, _ []byte) { n++ })
	})
	assert.Zero(t, allocs)
	assert.Positive(t, n)
}
