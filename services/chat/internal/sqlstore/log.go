package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/chunk"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// trimEvery is how often, in messages, a room's old chunks are trimmed:
// when an append takes its head across a multiple of it. Trimming on every
// append would add a write to the hot path.
const trimEvery = 64

// Epoch names the log's history. It is made with the database and kept
// for as long as the database is, across restarts.
func (s *Store) Epoch() string { return s.epoch }

// run is one room's messages in an Append call: consecutive, so they are
// stored as one chunk.
type run struct {
	room string
	msgs []rooms.Message
}

// Append stores msgs with SentAt to the microsecond, in one transaction;
// they are all in the log's epoch. The messages of each room must continue
// its head one by one, else it fails with rooms.ErrSeqConflict and stores
// nothing.
//
// Each room's messages become one row (a chunk), so a group commit costs
// a row per room rather than per message; the statements are prepared
// once per connection. This is the hot path of every message.
func (s *Store) Append(ctx context.Context, msgs []rooms.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	runs, err := runsOf(msgs)
	if err != nil {
		return err
	}
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	if err := s.append(ctx, runs); err != nil {
		return fmt.Errorf("append %d messages: %w", len(msgs), classify(ctx, err))
	}
	return nil
}

// runsOf groups msgs by room, in room order: concurrent PostgreSQL
// appenders wait on each other's rows in the primary key, and taking them
// in key order keeps them from deadlocking. A room's messages must be
// consecutive. The runs share msgs, or one sorted copy when the rooms
// interleave: the messages are not copied per room.
func runsOf(msgs []rooms.Message) ([]run, error) {
	byRoom := func(a, b rooms.Message) int { return strings.Compare(a.Room, b.Room) }
	if !slices.IsSortedFunc(msgs, byRoom) {
		msgs = slices.Clone(msgs)
		slices.SortStableFunc(msgs, byRoom) // stable: each room's own order stays
	}
	var runs []run
	for i := 0; i < len(msgs); {
		j := i + 1
		for ; j < len(msgs) && msgs[j].Room == msgs[i].Room; j++ {
			if msgs[j].Seq != msgs[j-1].Seq+1 {
				return nil, fmt.Errorf("append to room %s: seq %d after %d: %w", msgs[j].Room, msgs[j].Seq, msgs[j-1].Seq, rooms.ErrSeqConflict)
			}
		}
		runs = append(runs, run{room: msgs[i].Room, msgs: msgs[i:j]})
		i = j
	}
	return runs, nil
}

func (s *Store) append(ctx context.Context, runs []run) (err error) {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	head, insert, trim := tx.StmtContext(ctx, s.stmts.head), tx.StmtContext(ctx, s.stmts.insert), tx.StmtContext(ctx, s.stmts.trim)
	var data []byte
	for _, r := range runs {
		first, last := r.msgs[0].Seq, r.msgs[len(r.msgs)-1].Seq
		// Read in the transaction: a chunk another writer added after this
		// store's last append shows here, whatever its first sequence.
		var stored int64
		if err := head.QueryRowContext(ctx, r.room).Scan(&stored); err != nil && err != sql.ErrNoRows {
			return err
		}
		h := uint64(stored)
		if first != h+1 {
			return fmt.Errorf("append to room %s: seq %d after head %d: %w", r.room, first, h, rooms.ErrSeqConflict)
		}
		data = chunk.Encode(data[:0], r.msgs)
		// On PostgreSQL a concurrent appender may have read the same head:
		// whichever commits second violates the primary key.
		if _, err := insert.ExecContext(ctx, r.room, int64(first), int64(last), data); err != nil {
			if sqldb.Unique(err) {
				return fmt.Errorf("append: another writer took the sequence: %w: %w", rooms.ErrSeqConflict, err)
			}
			return err
		}
		if h/trimEvery != last/trimEvery && last > uint64(s.retain) {
			// Whole chunks older than the retained messages go.
			if _, err := trim.ExecContext(ctx, r.room, int64(last)-int64(s.retain)); err != nil {
				return err
			}
		}
	}
	return tx.Commit()
}

// statements are the log's prepared statements. database/sql prepares a
// statement on each pooled connection that runs it, once, and closing the
// pool releases them.
type statements struct {
	head, insert, trim, since, drop *sql.Stmt
}

func prepareStatements(ctx context.Context, db *sql.DB, dialect string) (*statements, error) {
	var st statements
	for _, p := range []struct {
		stmt **sql.Stmt
		sql  string
	}{
		// The room's newest chunk, by the primary key.
		{&st.head, "SELECT last_seq FROM message_chunks WHERE room = ? ORDER BY first_seq DESC LIMIT 1"},
		{&st.insert, "INSERT INTO message_chunks (room, first_seq, last_seq, data) VALUES (?, ?, ?, ?)"},
		{&st.trim, "DELETE FROM message_chunks WHERE room = ? AND last_seq <= ?"},
		{&st.since, "SELECT first_seq, last_seq, data FROM message_chunks WHERE room = ? AND last_seq > ? ORDER BY first_seq"},
		{&st.drop, "DELETE FROM message_chunks WHERE room = ?"},
	} {
		stmt, err := db.PrepareContext(ctx, bind(dialect, p.sql))
		if err != nil {
			return nil, err
		}
		*p.stmt = stmt
	}
	return &st, nil
}

// bind turns ? placeholders into PostgreSQL's numbered ones where needed.
func bind(dialect, q string) string {
	if dialect != sqldb.Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range []byte(q) {
		if c == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// Head is the room's last sequence, 0 if it has none: the log always
// keeps at least the latest message of a room.
func (s *Store) Head(ctx context.Context, code string) (uint64, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var h int64
	err := s.stmts.head.QueryRowContext(ctx, code).Scan(&h)
	if err != nil && err != sql.ErrNoRows {
		return 0, fmt.Errorf("head of room %s: %w", code, classify(ctx, err))
	}
	return uint64(h), nil
}

// Since returns the room's kept messages after `after`, oldest first, at
// most limit (0: all).
func (s *Store) Since(ctx context.Context, code string, after uint64, limit int) ([]rooms.Message, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	out, err := s.since(ctx, code, after, limit)
	if err != nil {
		return nil, fmt.Errorf("messages of room %s: %w", code, classify(ctx, err))
	}
	return out, nil
}

func (s *Store) since(ctx context.Context, code string, after uint64, limit int) ([]rooms.Message, error) {
	rows, err := s.stmts.since.QueryContext(ctx, code, int64(min(after, 1<<63-1)))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []rooms.Message
	for rows.Next() && (limit <= 0 || len(out) < limit) {
		var first, last int64
		var data []byte
		if err := rows.Scan(&first, &last, &data); err != nil {
			return nil, err
		}
		from := len(out)
		if out, err = chunk.Decode(out, data, code, s.epoch, uint64(first), uint64(last)); err != nil {
			return nil, err
		}
		// The first chunk may begin at or before after.
		if skip := int(max(int64(after)+1-first, 0)); skip > 0 {
			out = append(out[:from], out[from+min(skip, len(out)-from):]...)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Drop forgets the room's messages, so its head is 0 again.
func (s *Store) Drop(ctx context.Context, code string) error {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	if _, err := s.stmts.drop.ExecContext(ctx, code); err != nil {
		return fmt.Errorf("drop messages of room %s: %w", code, classify(ctx, err))
	}
	return nil
}
