package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Log is an in-memory engine.Log that keeps exactly the latest Retain
// messages of each room. Its history ends with the value, so each Log has
// an epoch of its own.
type Log struct {
	epoch  string
	retain int

	mu    sync.RWMutex
	rooms map[string]*ring
}

// ring holds a room's latest messages: seq s lives at (s-1) % retain. It
// grows with the room up to retain, so a quiet room holds only what it
// has said.
type ring struct {
	head uint64
	msgs []rooms.Message
}

// NewLog returns an empty log keeping the latest retain messages of each
// room; retain below 1 keeps 1, since the engine needs a room's last
// message to tell a repeated client message ID.
func NewLog(retain int) *Log {
	return &Log{epoch: rooms.NewEpoch(), retain: max(retain, 1), rooms: map[string]*ring{}}
}

// Epoch names this log's history: 16 random hex characters.
func (l *Log) Epoch() string { return l.epoch }

// Append stores msgs in the log's epoch, or nothing if any room's
// messages do not continue its head one by one (rooms.ErrSeqConflict).
// SentAt is kept to the microsecond in UTC, as the SQL store keeps it, so
// that an engine sees the same times on either.
func (l *Log) Append(_ context.Context, msgs []rooms.Message) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Check the whole call before changing anything.
	next := make(map[string]uint64, 1)
	for _, m := range msgs {
		want, ok := next[m.Room]
		if !ok {
			want = l.headLocked(m.Room) + 1
		}
		if m.Seq != want {
			return rooms.ErrSeqConflict
		}
		next[m.Room] = want + 1
	}
	for _, m := range msgs {
		r := l.rooms[m.Room]
		if r == nil {
			r = &ring{}
			l.rooms[m.Room] = r
		}
		m.Epoch = l.epoch
		m.SentAt = m.SentAt.Truncate(time.Microsecond).UTC()
		if i := int((m.Seq - 1) % uint64(l.retain)); i == len(r.msgs) {
			r.msgs = append(r.msgs, m) // still growing: seq s goes at s-1
		} else {
			r.msgs[i] = m
		}
		r.head = m.Seq
	}
	return nil
}

func (l *Log) headLocked(code string) uint64 {
	if r := l.rooms[code]; r != nil {
		return r.head
	}
	return 0
}

// Head is the room's last sequence, 0 if it has none.
func (l *Log) Head(_ context.Context, code string) (uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.headLocked(code), nil
}

// Since returns the room's kept messages after `after`, oldest first, at
// most limit (0: all).
func (l *Log) Since(_ context.Context, code string, after uint64, limit int) ([]rooms.Message, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	r := l.rooms[code]
	if r == nil || after >= r.head {
		return nil, nil
	}
	from := max(after+1, r.head-uint64(len(r.msgs))+1) // the oldest kept
	n := r.head - from + 1
	if limit > 0 && uint64(limit) < n {
		n = uint64(limit)
	}
	out := make([]rooms.Message, 0, n)
	for s := from; s < from+n; s++ {
		out = append(out, r.msgs[(s-1)%uint64(l.retain)])
	}
	return out, nil
}

// Drop forgets the room's messages and head.
func (l *Log) Drop(_ context.Context, code string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.rooms, code)
	return nil
}
