package sqlstore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// messageRow is the GORM mapping of the messages table.
type messageRow struct {
	Room     string    `gorm:"column:room;primaryKey"`
	Seq      int64     `gorm:"column:seq;primaryKey;autoIncrement:false"`
	Epoch    string    `gorm:"column:epoch"`
	SentAt   time.Time `gorm:"column:sent_at"`
	SenderID string    `gorm:"column:sender_id"`
	Sender   string    `gorm:"column:sender"`
	Body     string    `gorm:"column:body"`
	ClientID string    `gorm:"column:client_id"`
}

// TableName tells GORM the table, which the migrations own.
func (messageRow) TableName() string { return "messages" }

func (r messageRow) message() rooms.Message {
	return rooms.Message{Room: r.Room, Seq: uint64(r.Seq), Epoch: r.Epoch, SentAt: r.SentAt.UTC(),
		SenderID: r.SenderID, Sender: r.Sender, Body: r.Body, ClientID: r.ClientID}
}

const (
	// trimEvery is how often, in messages, a room's old messages are
	// trimmed: when a call takes its head across a multiple of it. Trimming
	// on every append would double the writes of the hot path.
	trimEvery = 64
	// insertBatch bounds the rows of one INSERT, far below both
	// databases' limits on bound parameters (8 per row).
	insertBatch = 500
)

// Epoch names the log's history. It is made with the database and kept
// for as long as the database is, across restarts.
func (s *Store) Epoch() string { return s.epoch }

// span is the sequences that one Append call brings to one room.
type span struct{ first, last uint64 }

// Append stores msgs, stamped with the log's epoch and with SentAt to the
// microsecond in UTC, in one transaction. The messages of each room must
// continue its head one by one, else it fails with rooms.ErrSeqConflict
// and stores nothing.
func (s *Store) Append(ctx context.Context, msgs []rooms.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	spans := make(map[string]span, 1)
	rows := make([]messageRow, len(msgs))
	for i, m := range msgs {
		sp, ok := spans[m.Room]
		switch {
		case !ok:
			sp.first = m.Seq
		case m.Seq != sp.last+1:
			return fmt.Errorf("append to room %s: seq %d after %d: %w", m.Room, m.Seq, sp.last, rooms.ErrSeqConflict)
		}
		sp.last = m.Seq
		spans[m.Room] = sp
		rows[i] = messageRow{Room: m.Room, Seq: int64(m.Seq), Epoch: s.epoch, SentAt: utc(m.SentAt),
			SenderID: m.SenderID, Sender: m.Sender, Body: m.Body, ClientID: m.ClientID}
	}
	// Concurrent PostgreSQL appenders wait on each other's rows in the
	// primary key; inserting in key order keeps them from deadlocking.
	byKey := func(a, b messageRow) int { return cmp.Or(cmp.Compare(a.Room, b.Room), cmp.Compare(a.Seq, b.Seq)) }
	if len(spans) > 1 && !slices.IsSortedFunc(rows, byKey) {
		slices.SortFunc(rows, byKey)
	}

	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	err := s.db.WithContext(ctx).Transaction(func(tx *gorm.DB) error {
		heads := make(map[string]uint64, len(spans))
		for room, sp := range spans {
			h, err := head(tx, room)
			if err != nil {
				return err
			}
			if sp.first != h+1 {
				return fmt.Errorf("append to room %s: seq %d after head %d: %w", room, sp.first, h, rooms.ErrSeqConflict)
			}
			heads[room] = h
		}
		// On PostgreSQL a concurrent appender may have read the same head:
		// whichever commits second violates the primary key.
		if err := tx.CreateInBatches(rows, insertBatch).Error; err != nil {
			if sqldb.Unique(err) {
				return fmt.Errorf("append: another writer took the sequence: %w: %w", rooms.ErrSeqConflict, err)
			}
			return err
		}
		for room, sp := range spans {
			if heads[room]/trimEvery == sp.last/trimEvery || sp.last <= uint64(s.retain) {
				continue
			}
			err := tx.Exec("DELETE FROM messages WHERE room = ? AND seq <= ?", room, int64(sp.last)-int64(s.retain)).Error
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d messages: %w", len(msgs), classify(ctx, err))
	}
	return nil
}

// head is the room's last sequence: the log always keeps at least the
// latest message of a room, so it is the largest one stored.
func head(db *gorm.DB, room string) (uint64, error) {
	var h int64
	err := db.Raw("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room = ?", room).Scan(&h).Error
	return uint64(h), err
}

// Head is the room's last sequence, 0 if it has none.
func (s *Store) Head(ctx context.Context, code string) (uint64, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	h, err := head(s.db.WithContext(ctx), code)
	if err != nil {
		return 0, fmt.Errorf("head of room %s: %w", code, classify(ctx, err))
	}
	return h, nil
}

// Since returns the room's kept messages after `after`, oldest first, at
// most limit (0: all).
func (s *Store) Since(ctx context.Context, code string, after uint64, limit int) ([]rooms.Message, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	q := s.db.WithContext(ctx).Where("room = ? AND seq > ?", code, int64(min(after, 1<<63-1))).Order("seq")
	if limit > 0 {
		q = q.Limit(limit)
	}
	var rows []messageRow
	if err := q.Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("messages of room %s: %w", code, classify(ctx, err))
	}
	out := make([]rooms.Message, len(rows))
	for i, r := range rows {
		out[i] = r.message()
	}
	return out, nil
}

// Drop forgets the room's messages, so its head is 0 again.
func (s *Store) Drop(ctx context.Context, code string) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	if err := s.db.WithContext(ctx).Exec("DELETE FROM messages WHERE room = ?", code).Error; err != nil {
		return fmt.Errorf("drop messages of room %s: %w", code, classify(ctx, err))
	}
	return nil
}
