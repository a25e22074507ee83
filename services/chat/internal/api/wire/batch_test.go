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

// A presence batch goes out as its changes, plain Presence events in
// order, among the frame's other events, in both encodings: clients see
// what they saw before batching. Each change keeps one shared encoding,
// whichever batch (the whole window, or a tail of it) carries it.
func TestPresenceBatchFrames(t *testing.T) {
	at := time.Unix(1700000000, 5).UTC()
	changes := []*rooms.Event{
		{Kind: rooms.EventJoined, User: "bob", At: at},
		{Kind: rooms.EventJoined, User: "cy", At: at},
		{Kind: rooms.EventLeft, User: "bob", At: at.Add(time.Second)},
	}
	all, tail := rooms.NewPresenceBatch(changes), rooms.NewPresenceBatch(changes[1:])
	assert.Equal(t, changes[0].Size()+changes[1].Size()+changes[2].Size(), all.Size(), "a batch's size is its changes'")
	before, after := msg(1, "ep", at, "ann", "before", ""), msg(2, "ep", at, "ann", "after", "")
	evs := []*rooms.Event{before, all, after, tail}
	want := []*chatv1.Event{Proto(before), Proto(changes[0]), Proto(changes[1]), Proto(changes[2]), Proto(after), Proto(changes[1]), Proto(changes[2])}

	out, err := NewCodec().Marshal(NewFrame(evs))
	require.NoError(t, err)
	require.Len(t, out, len(want), "one shared buffer per change")
	assert.Same(t, &out[2].ReadOnlyData()[0], &out[5].ReadOnlyData()[0], "cy's arrival is encoded once for both batches")
	var got chatv1.ChatResponse
	require.NoError(t, proto.Unmarshal(out.Materialize(), &got))
	require.Len(t, got.Events, len(want))
	for i := range want {
		assert.True(t, proto.Equal(want[i], got.Events[i]), "protobuf event %d: %v", i, got.Events[i])
	}
	assert.Equal(t, out.Materialize()[len(Of(before).Bytes()):][:len(Of(all).Bytes())], Of(all).Bytes(),
		"a batch's own encoding, should anyone ask for it, is its changes'")

	var fromJSON chatv1.ChatResponse
	b := AppendJSONFrame(nil, evs)
	require.NoError(t, protojson.Unmarshal(b, &fromJSON), "%s", b)
	require.Len(t, fromJSON.Events, len(want))
	for i := range want {
		assert.True(t, proto.Equal(want[i], fromJSON.Events[i]), "JSON event %d: %v", i, fromJSON.Events[i])
	}
	only := AppendJSONFrame(nil, []*rooms.Event{tail})
	require.NoError(t, protojson.Unmarshal(only, &fromJSON), "%s", only)
	assert.Len(t, fromJSON.Events, 2, "a frame that starts with a batch")
}
