// Package chunk encodes runs of one room's consecutive messages as one
// value, the unit in which the logs store history: a row (sqlstore) or a
// stream message (natsstore) per room per commit.
package chunk

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// format is the first byte of a chunk's data: the encoding below. A
// later encoding takes the next number and the decoder reads both.
const format = 1

// ErrMalformed means a stored chunk does not decode: the database was
// changed by something other than this store.
var ErrMalformed = errors.New("chunk: malformed message chunk")

// Encode appends the encoding of msgs, consecutive messages of one
// room, to b. Their room and sequences are the row's (room, first_seq),
// and their epoch the log's, so a message is its time and four strings:
//
//	format byte, then per message: varint sent_us, and uvarint-length-
//	prefixed sender_id, sender, body, client_id.
func Encode(b []byte, msgs []rooms.Message) []byte {
	b = append(b, format)
	for _, m := range msgs {
		b = binary.AppendVarint(b, m.SentAt.UnixMicro())
		for _, s := range [...]string{m.SenderID, m.Sender, m.Body, m.ClientID} {
			b = binary.AppendUvarint(b, uint64(len(s)))
			b = append(b, s...)
		}
	}
	return b
}

// Decode appends to dst the messages of a chunk of room that starts
// at first and ends at last, in epoch.
func Decode(dst []rooms.Message, data []byte, room, epoch string, first, last uint64) ([]rooms.Message, error) {
	if len(data) == 0 || data[0] != format || last < first {
		return dst, ErrMalformed
	}
	data = data[1:]
	for seq := first; seq <= last; seq++ {
		us, n := binary.Varint(data)
		if n <= 0 {
			return dst, ErrMalformed
		}
		data = data[n:]
		var f [4]string
		for i := range f {
			l, n := binary.Uvarint(data)
			if n <= 0 || l > uint64(len(data)-n) {
				return dst, ErrMalformed
			}
			f[i] = string(data[n : n+int(l)])
			data = data[n+int(l):]
		}
		dst = append(dst, rooms.Message{Room: room, Seq: seq, Epoch: epoch, SentAt: time.UnixMicro(us).UTC(),
			SenderID: f[0], Sender: f[1], Body: f[2], ClientID: f[3]})
	}
	if len(data) != 0 {
		return dst, ErrMalformed
	}
	return dst, nil
}
