package sqlstore

import (
	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/chunk"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// DB exposes the store's GORM handle to the external tests, which play
// another writer on the same database.
func (s *Store) DB() *gorm.DB { return s.db }

// EncodeChunk is how the log stores consecutive messages of a room, for
// tests that write a chunk as another writer would.
func EncodeChunk(msgs []rooms.Message) []byte { return chunk.Encode(nil, msgs) }
