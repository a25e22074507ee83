package wire

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// A JSON frame is the protojson form of the ChatResponse that holds the
// same events, each in the API's form, in order.
func TestJSONFrameDecodesAsChatResponse(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	evs := []*rooms.Event{
		msg(1, "ep", at, "ann", "hello \"world\" </script>", "c1"),
		{Kind: rooms.EventJoined, User: "bob", At: at},
		msg(1<<60, "ep", at, "bob", "héllo ✓", ""),
		{Kind: rooms.EventLeft, User: "cy", At: at},
		{Kind: rooms.EventRefreshed, At: at.Add(time.Hour)},
		{Kind: rooms.EventRoomDeleted, At: at},
	}
	b := AppendJSONFrame([]byte("junk kept before"), evs)
	require.Equal(t, "junk kept before", string(b[:16]))
	var got chatv1.ChatResponse
	require.NoError(t, protojson.Unmarshal(b[16:], &got), "%s", b[16:])
	require.Len(t, got.Events, len(evs))
	for i, ev := range evs {
		assert.True(t, proto.Equal(Proto(ev), got.Events[i]), "event %d: %v", i, got.Events[i])
	}
	assert.Equal(t, uint64(1<<60), got.Events[2].GetMessage().GetSequence(), "64-bit sequences survive JSON")

	empty := AppendJSONFrame(nil, nil)
	require.NoError(t, protojson.Unmarshal(empty, &got))
	assert.Empty(t, got.Events)
}

// An event is encoded to JSON once, however many streams send it.
func TestJSONEncodedOnce(t *testing.T) {
	ev := msg(7, "ep", time.Unix(1700000000, 0), "ann", "shared", "")
	first := JSON(ev)
	for range 10 {
		again := JSON(ev)
		assert.Same(t, &first[0], &again[0], "the same bytes, not a new encoding")
	}
	assert.Equal(t, Of(ev).Bytes(), Of(ev).Bytes(), "the protobuf encoding is kept apart")
}

// The protobuf encoding of a message, made by hand, and its JSON form,
// made through the proto form, say the same thing.
func TestMessageEncodingsAgree(t *testing.T) {
	ev := msg(42, "ep", time.Unix(1700000000, 123).UTC(), "ann", "body", "cid")
	var fromProto chatv1.ChatResponse
	out, err := NewCodec().Marshal(NewFrame([]*rooms.Event{ev}))
	require.NoError(t, err)
	require.NoError(t, proto.Unmarshal(out.Materialize(), &fromProto))
	var fromJSON chatv1.ChatResponse
	require.NoError(t, protojson.Unmarshal(AppendJSONFrame(nil, []*rooms.Event{ev}), &fromJSON))
	assert.True(t, proto.Equal(&fromProto, &fromJSON))
}
