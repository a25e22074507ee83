package api

import (
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

var recoveryOf = map[rooms.Recovery]chatv1.Recovery{
	rooms.RecoveryNotRequested: chatv1.Recovery_RECOVERY_NOT_REQUESTED,
	rooms.RecoveryComplete:     chatv1.Recovery_RECOVERY_COMPLETE,
	rooms.RecoveryFailed:       chatv1.Recovery_RECOVERY_FAILED,
}

// openedEvent is the first event of a stream; maxBody is the service's
// MAX_MESSAGE_BYTES, so clients can check a body before sending it, and
// expires when the stream's room token expires, so they can refresh it.
func openedEvent(o rooms.Opened, maxBody int, expires time.Time) *chatv1.Event {
	return &chatv1.Event{Kind: &chatv1.Event_Opened{Opened: &chatv1.Opened{
		ShortCode:    o.Code,
		Name:         o.Name,
		Epoch:        o.Epoch,
		HeadSequence: o.Head,
		Recovery:     recoveryOf[o.Recovery],
		Users:        roomUsers(o.Users),
		// MaxMessageBytes is at most 1 MiB (config), so it fits.
		MaxMessageBytes: uint32(maxBody),
		// The backlog is at most the history size (config), so it fits.
		Backlog:        uint32(o.Backlog),
		TokenExpiresAt: timestamppb.New(expires),
	}}}
}
