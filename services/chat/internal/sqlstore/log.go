package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// messageRow is the GORM mapping of the messages table, for reads.
type messageRow struct {
	Room     string `gorm:"column:room;primaryKey"`
	Seq      int64  `gorm:"column:seq;primaryKey;autoIncrement:false"`
	SentUS   int64  `gorm:"column:sent_us"`
	SenderID string `gorm:"column:sender_id"`
	Sender   string `gorm:"column:sender"`
	Body     string `gorm:"column:body"`
	ClientID string `gorm:"column:client_id"`
}

// TableName tells GORM the table, which the migrations own.
func (messageRow) TableName() string { return "messages" }

func (r messageRow) message(epoch string) rooms.Message {
	return rooms.Message{Room: r.Room, Seq: uint64(r.Seq), Epoch: epoch, SentAt: time.UnixMicro(r.SentUS).UTC(),
		SenderID: r.SenderID, Sender: r.Sender, Body: r.Body, ClientID: r.ClientID}
}

const (
	// trimEvery is how often, in messages, a room's old messages are
	// trimmed: when a call takes its head across a multiple of it. Trimming
	// on every append would double the writes of the hot path.
	trimEvery = 64
	// maxRows is the most rows one INSERT carries (7 parameters each, far
	// below both databases' limits). Batches are inserted in chunks of
	// powers of two up to it, so that a handful of prepared statements
	// serve every batch size.
	maxRows = 64
	// messageColumns is the number of parameters a row binds.
	messageColumns = 7
)

// Epoch names the log's history. It is made with the database and kept
// for as long as the database is, across restarts.
func (s *Store) Epoch() string { return s.epoch }

// span is the sequences that one Append call brings to one room.
type span struct{ first, last uint64 }

// Append stores msgs with SentAt to the microsecond, in one transaction;
// they are all in the log's epoch. The messages of each room must continue
// its head one by one, else it fails with rooms.ErrSeqConflict and stores
// nothing.
//
// It is the hot path of every message, so it runs on database/sql with
// statements prepared once per connection: parsing a multi-row INSERT
// cost a quarter of an append on SQLite.
func (s *Store) Append(ctx context.Context, msgs []rooms.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	spans := make(map[string]span, 1)
	for _, m := range msgs {
		sp, ok := spans[m.Room]
		switch {
		case !ok:
			sp.first = m.Seq
		case m.Seq != sp.last+1:
			return fmt.Errorf("append to room %s: seq %d after %d: %w", m.Room, m.Seq, sp.last, rooms.ErrSeqConflict)
		}
		sp.last = m.Seq
		spans[m.Room] = sp
	}
	// Concurrent PostgreSQL appenders wait on each other's rows in the
	// primary key; inserting in key order keeps them from deadlocking.
	if len(spans) > 1 {
		byKey := func(a, b rooms.Message) int { return cmp.Or(cmp.Compare(a.Room, b.Room), cmp.Compare(a.Seq, b.Seq)) }
		if !slices.IsSortedFunc(msgs, byKey) {
			msgs = slices.Clone(msgs)
			slices.SortFunc(msgs, byKey)
		}
	}
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	err := s.append(ctx, msgs, spans)
	if err != nil {
		return fmt.Errorf("append %d messages: %w", len(msgs), classify(ctx, err))
	}
	return nil
}

func (s *Store) append(ctx context.Context, msgs []rooms.Message, spans map[string]span) (err error) {
	tx, err := s.sql.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	heads := make(map[string]uint64, len(spans))
	for room, sp := range spans {
		var h int64
		if err := tx.StmtContext(ctx, s.stmts.head).QueryRowContext(ctx, room).Scan(&h); err != nil {
			return err
		}
		if sp.first != uint64(h)+1 {
			return fmt.Errorf("append to room %s: seq %d after head %d: %w", room, sp.first, h, rooms.ErrSeqConflict)
		}
		heads[room] = uint64(h)
	}
	// On PostgreSQL a concurrent appender may have read the same head:
	// whichever commits second violates the primary key.
	args := make([]any, 0, min(len(msgs), maxRows)*messageColumns)
	for rest := msgs; len(rest) > 0; {
		n := chunk(len(rest))
		stmt, err := s.stmts.insert(ctx, n)
		if err != nil {
			return err
		}
		args = args[:0]
		for _, m := range rest[:n] {
			args = append(args, m.Room, int64(m.Seq), m.SentAt.UnixMicro(), m.SenderID, m.Sender, m.Body, m.ClientID)
		}
		if _, err := tx.StmtContext(ctx, stmt).ExecContext(ctx, args...); err != nil {
			if sqldb.Unique(err) {
				return fmt.Errorf("append: another writer took the sequence: %w: %w", rooms.ErrSeqConflict, err)
			}
			return err
		}
		rest = rest[n:]
	}
	for room, sp := range spans {
		if heads[room]/trimEvery == sp.last/trimEvery || sp.last <= uint64(s.retain) {
			continue
		}
		if _, err := tx.StmtContext(ctx, s.stmts.trim).ExecContext(ctx, room, int64(sp.last)-int64(s.retain)); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// chunk is the rows of the next INSERT for n rows to go: the largest power
// of two up to maxRows that n reaches.
func chunk(n int) int {
	c := maxRows
	for c > n {
		c /= 2
	}
	return c
}

// statements are the log's prepared statements. database/sql prepares a
// statement on each pooled connection that runs it, once, and closing the
// pool releases them.
type statements struct {
	db      *sql.DB
	dialect string
	head    *sql.Stmt
	trim    *sql.Stmt

	mu      sync.Mutex
	inserts map[int]*sql.Stmt // by rows
}

func prepareStatements(ctx context.Context, db *sql.DB, dialect string) (*statements, error) {
	st := &statements{db: db, dialect: dialect, inserts: make(map[int]*sql.Stmt)}
	var err error
	if st.head, err = db.PrepareContext(ctx, st.bind("SELECT COALESCE(MAX(seq), 0) FROM messages WHERE room = ?")); err != nil {
		return nil, err
	}
	if st.trim, err = db.PrepareContext(ctx, st.bind("DELETE FROM messages WHERE room = ? AND seq <= ?")); err != nil {
		return nil, err
	}
	return st, nil
}

// insert returns the statement that inserts rows messages.
func (st *statements) insert(ctx context.Context, rows int) (*sql.Stmt, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if stmt := st.inserts[rows]; stmt != nil {
		return stmt, nil
	}
	var q strings.Builder
	q.WriteString("INSERT INTO messages (room, seq, sent_us, sender_id, sender, body, client_id) VALUES ")
	for i := range rows {
		if i > 0 {
			q.WriteByte(',')
		}
		q.WriteString("(?, ?, ?, ?, ?, ?, ?)")
	}
	stmt, err := st.db.PrepareContext(ctx, st.bind(q.String()))
	if err != nil {
		return nil, err
	}
	st.inserts[rows] = stmt
	return stmt, nil
}

// bind turns ? placeholders into PostgreSQL's numbered ones where needed.
func (st *statements) bind(q string) string {
	if st.dialect != sqldb.Postgres {
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
// keeps at least the latest message of a room, so it is the largest one
// stored.
func (s *Store) Head(ctx context.Context, code string) (uint64, error) {
	ctx, cancel := s.pool.Bound(ctx)
	defer cancel()
	var h int64
	if err := s.stmts.head.QueryRowContext(ctx, code).Scan(&h); err != nil {
		return 0, fmt.Errorf("head of room %s: %w", code, classify(ctx, err))
	}
	return uint64(h), nil
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
		out[i] = r.message(s.epoch)
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
