package chunk

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func TestChunkRoundTrip(t *testing.T) {
	at := time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)
	msgs := []rooms.Message{
		{Room: "ABC234", Seq: 7, Epoch: "ep", SentAt: at, SenderID: "u1", Sender: "ann", Body: "héllo", ClientID: "c1"},
		{Room: "ABC234", Seq: 8, Epoch: "ep", SentAt: time.UnixMicro(-5).UTC(), SenderID: "", Sender: "", Body: strings.Repeat("x", 70000), ClientID: ""},
	}
	got, err := Decode(nil, Encode(nil, msgs), "ABC234", "ep", 7, 8)
	require.NoError(t, err)
	assert.Equal(t, msgs, got)
}

// A chunk that does not decode is an error, never a panic or a wrong
// message.
func TestChunkRejectsDamage(t *testing.T) {
	good := Encode(nil, []rooms.Message{{Seq: 1, SentAt: time.Unix(1, 0), SenderID: "u", Sender: "s", Body: "b", ClientID: "c"}})
	for name, tc := range map[string]struct {
		data        []byte
		first, last uint64
	}{
		"empty":             {nil, 1, 1},
		"unknown format":    {append([]byte{9}, good[1:]...), 1, 1},
		"truncated":         {good[:len(good)-1], 1, 1},
		"trailing bytes":    {append(append([]byte{}, good...), 0), 1, 1},
		"fewer than range":  {good, 1, 2},
		"last before first": {good, 2, 1},
		"length past end":   {[]byte{format, 2, 0xff, 0x01}, 1, 1},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Decode(nil, tc.data, "R", "e", tc.first, tc.last)
			assert.ErrorIs(t, err, ErrMalformed)
		})
	}
}

func FuzzDecodeChunk(f *testing.F) {
	f.Add(Encode(nil, []rooms.Message{{Seq: 1, SentAt: time.Unix(1, 0), Body: "b"}}), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, n uint8) {
		msgs, err := Decode(nil, data, "R", "e", 1, uint64(n)+1)
		if err == nil {
			assert.Len(t, msgs, int(n)+1)
			// Varints may come in longer forms than the encoder writes, so
			// the bytes may differ; the messages may not.
			again, err := Decode(nil, Encode(nil, msgs), "R", "e", 1, uint64(n)+1)
			require.NoError(t, err)
			assert.Equal(t, msgs, again, "what decodes re-encodes to the same messages")
		}
	})
}
