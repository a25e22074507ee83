package contract

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// LogFactory opens a new, empty log that keeps at least retain messages
// per room, released through t.Cleanup.
//
// A log whose history survives a restart also returns reopen, which
// closes the log and opens its backing store again, as a restart of the
// service would; each call closes the log the previous call returned. A
// log whose history does not survive returns a nil reopen, and the suite
// checks instead that every log it opens has an epoch of its own.
type LogFactory func(t *testing.T, retain int) (log engine.Log, reopen func() engine.Log)

// Log checks an engine.Log against the rules in seams.go.
func Log(t *testing.T, f LogFactory) {
	cases := []struct {
		name string
		run  func(t *testing.T, f LogFactory)
	}{
		{"epoch names one history", logEpoch},
		{"durable history survives a reopen", logReopen},
		{"append stores every field", logRoundTrip},
		{"SentAt is kept to the microsecond in UTC", logSentAt},
		{"append continues the room's head", logConsecutive},
		{"a conflicting batch stores nothing of any room", logConflictAtomic},
		{"one call appends to many rooms", logManyRooms},
		{"Since honours after and limit", logSince},
		{"retention keeps at least Retain", logRetention},
		{"Drop forgets one room", logDrop},
		{"concurrent appends of one sequence: exactly one wins", logConcurrent},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.run(t, f) })
	}
}

// msgs returns messages seq from..to (inclusive) of room, in epoch.
func msgs(room, epoch string, from, to uint64) []rooms.Message {
	var out []rooms.Message
	for s := from; s <= to; s++ {
		out = append(out, rooms.Message{
			Room: room, Seq: s, Epoch: epoch,
			SentAt:   t0.Add(time.Duration(s) * time.Second),
			SenderID: "u" + room, Sender: "user of " + room,
			Body: fmt.Sprintf("message %d in %s", s, room), ClientID: fmt.Sprintf("c%d", s),
		})
	}
	return out
}

// history reads all that l keeps of room.
func history(t *testing.T, l engine.Log, room string) []rooms.Message {
	t.Helper()
	got, err := l.Since(ctx(t), room, 0, 0)
	require.NoError(t, err)
	return got
}

func head(t *testing.T, l engine.Log, room string) uint64 {
	t.Helper()
	h, err := l.Head(ctx(t), room)
	require.NoError(t, err)
	return h
}

func logEpoch(t *testing.T, f LogFactory) {
	a, _ := f(t, 10)
	b, _ := f(t, 10)
	epoch := a.Epoch()
	assert.NotEmpty(t, epoch)
	require.NoError(t, a.Append(ctx(t), msgs("EPO234", epoch, 1, 3)))
	assert.Equal(t, epoch, a.Epoch(), "stable while the log lives, appends included")
	got := history(t, a, "EPO234")
	require.Len(t, got, 3)
	assert.Equal(t, epoch, got[2].Epoch, "messages carry the log's epoch")
	assert.NotEqual(t, epoch, b.Epoch(), "two new logs are two histories")
}

func logReopen(t *testing.T, f LogFactory) {
	l, reopen := f(t, 100)
	if reopen == nil {
		t.Skip("the log's history does not survive; its epoch is new each open (checked by the epoch case)")
	}
	epoch := l.Epoch()
	want := append(msgs("DUR234", epoch, 1, 5), msgs("DUR567", epoch, 1, 2)...)
	require.NoError(t, l.Append(ctx(t), want))

	l = reopen()
	assert.Equal(t, epoch, l.Epoch(), "same history, same epoch")
	assert.Equal(t, want[:5], history(t, l, "DUR234"))
	assert.Equal(t, want[5:], history(t, l, "DUR567"))
	assert.Equal(t, uint64(5), head(t, l, "DUR234"))

	assert.ErrorIs(t, l.Append(ctx(t), msgs("DUR234", epoch, 5, 5)), rooms.ErrSeqConflict, "the head survived")
	require.NoError(t, l.Append(ctx(t), msgs("DUR234", epoch, 6, 6)))
	l = reopen()
	assert.Equal(t, uint64(6), head(t, l, "DUR234"), "twice")
}

func logRoundTrip(t *testing.T, f LogFactory) {
	l, _ := f(t, 10)
	want := []rooms.Message{
		{Room: "RT2345", Seq: 1, Epoch: l.Epoch(), SentAt: t0, SenderID: "17", Sender: "Zoë",
			Body: "héllo, wörld ☕ \"quoted\" 'single' ; DROP TABLE messages; --\n\ttabbed", ClientID: "client-msg-1"},
		{Room: "RT2345", Seq: 2, Epoch: l.Epoch(), SentAt: t0.Add(time.Microsecond), SenderID: "18", Sender: "Bob"},
	}
	require.NoError(t, l.Append(ctx(t), want))
	assert.Equal(t, want, history(t, l, "RT2345"), "every field, empty ones too")
	assert.Equal(t, uint64(2), head(t, l, "RT2345"))
}

func logSentAt(t *testing.T, f LogFactory) {
	l, _ := f(t, 10)
	zone := time.FixedZone("UTC+5:30", 5*3600+1800)
	sent := time.Date(2031, 6, 7, 8, 9, 10, 123456789, zone)
	m := msgs("TZ2345", l.Epoch(), 1, 1)
	m[0].SentAt = sent
	require.NoError(t, l.Append(ctx(t), m))
	got := history(t, l, "TZ2345")
	require.Len(t, got, 1)
	assert.WithinDuration(t, sent, got[0].SentAt, time.Microsecond)
	assert.Equal(t, time.UTC, got[0].SentAt.Location())
}

func logConsecutive(t *testing.T, f LogFactory) {
	l, _ := f(t, 100)
	e := l.Epoch()
	assert.ErrorIs(t, l.Append(ctx(t), msgs("SEQ234", e, 0, 0)), rooms.ErrSeqConflict, "seq 0 on an empty room")
	assert.ErrorIs(t, l.Append(ctx(t), msgs("SEQ234", e, 2, 2)), rooms.ErrSeqConflict, "seq 2 on an empty room")
	require.NoError(t, l.Append(ctx(t), msgs("SEQ234", e, 1, 3)))
	want := history(t, l, "SEQ234")

	bad := map[string][]rooms.Message{
		"repeat of the head":  msgs("SEQ234", e, 3, 3),
		"older":               msgs("SEQ234", e, 1, 1),
		"gap after the head":  msgs("SEQ234", e, 5, 5),
		"gap within the call": {msgs("SEQ234", e, 4, 4)[0], msgs("SEQ234", e, 6, 6)[0]},
		"twice in the call":   {msgs("SEQ234", e, 4, 4)[0], msgs("SEQ234", e, 4, 4)[0]},
		"out of order":        {msgs("SEQ234", e, 5, 5)[0], msgs("SEQ234", e, 4, 4)[0]},
		"good then repeated":  append(msgs("SEQ234", e, 4, 6), msgs("SEQ234", e, 6, 6)...),
	}
	for name, batch := range bad {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, l.Append(ctx(t), batch), rooms.ErrSeqConflict)
			assert.Equal(t, uint64(3), head(t, l, "SEQ234"), "head unchanged")
			assert.Equal(t, want, history(t, l, "SEQ234"), "nothing stored")
		})
	}
	require.NoError(t, l.Append(ctx(t), msgs("SEQ234", e, 4, 4)), "the head's successor is still welcome")
	require.NoError(t, l.Append(ctx(t), nil), "an empty call is fine")
	assert.Equal(t, uint64(4), head(t, l, "SEQ234"))
}

func logConflictAtomic(t *testing.T, f LogFactory) {
	l, _ := f(t, 100)
	e := l.Epoch()
	require.NoError(t, l.Append(ctx(t), msgs("BBB234", e, 1, 2)))

	tests := map[string][]rooms.Message{
		"bad room last":  append(msgs("AAA234", e, 1, 2), msgs("BBB234", e, 4, 4)...),
		"bad room first": append(msgs("BBB234", e, 2, 3), msgs("AAA234", e, 1, 2)...),
		"interleaved": {msgs("AAA234", e, 1, 1)[0], msgs("BBB234", e, 3, 3)[0],
			msgs("AAA234", e, 2, 2)[0], msgs("BBB234", e, 5, 5)[0]},
	}
	for name, batch := range tests {
		t.Run(name, func(t *testing.T) {
			assert.ErrorIs(t, l.Append(ctx(t), batch), rooms.ErrSeqConflict)
			assert.Zero(t, head(t, l, "AAA234"), "the good room's messages were not stored")
			assert.Empty(t, history(t, l, "AAA234"))
			assert.Equal(t, uint64(2), head(t, l, "BBB234"))
			assert.Equal(t, msgs("BBB234", e, 1, 2), history(t, l, "BBB234"))
		})
	}
}

func logManyRooms(t *testing.T, f LogFactory) {
	l, _ := f(t, 100)
	e := l.Epoch()
	a, b, c := msgs("MANYA2", e, 1, 3), msgs("MANYB2", e, 1, 2), msgs("MANYC2", e, 1, 1)
	batch := []rooms.Message{a[0], b[0], a[1], c[0], b[1], a[2]}
	require.NoError(t, l.Append(ctx(t), batch))
	for _, want := range [][]rooms.Message{a, b, c} {
		room := want[0].Room
		assert.Equal(t, uint64(len(want)), head(t, l, room), room)
		assert.Equal(t, want, history(t, l, room), room)
	}

	// A large call, many rooms each continuing its head.
	var big []rooms.Message
	for i := range 50 {
		big = append(big, msgs(fmt.Sprintf("BIG%03d", i), e, 1, 20)...)
	}
	big = append(big, msgs("MANYA2", e, 4, 10)...)
	require.NoError(t, l.Append(ctx(t), big))
	assert.Equal(t, uint64(20), head(t, l, "BIG049"))
	assert.Equal(t, msgs("BIG007", e, 1, 20), history(t, l, "BIG007"))
	assert.Equal(t, uint64(10), head(t, l, "MANYA2"))
}

func logSince(t *testing.T, f LogFactory) {
	l, _ := f(t, 100)
	e := l.Epoch()
	all := msgs("SINCE2", e, 1, 10)
	require.NoError(t, l.Append(ctx(t), all))
	require.NoError(t, l.Append(ctx(t), msgs("OTHER2", e, 1, 4)))
	tests := []struct {
		after uint64
		limit int
		want  []rooms.Message
	}{
		{0, 0, all},
		{3, 0, all[3:]},
		{3, 4, all[3:7]},
		{0, 1, all[:1]},
		{9, 5, all[9:]},
		{10, 0, nil},
		{12, 0, nil},
	}
	for _, tt := range tests {
		got, err := l.Since(ctx(t), "SINCE2", tt.after, tt.limit)
		require.NoError(t, err)
		if tt.want == nil {
			assert.Empty(t, got, "after %d limit %d", tt.after, tt.limit)
			continue
		}
		assert.Equal(t, tt.want, got, "after %d limit %d", tt.after, tt.limit)
	}
	got, err := l.Since(ctx(t), "NONE23", 0, 0)
	require.NoError(t, err)
	assert.Empty(t, got, "a room without messages")
	assert.Zero(t, head(t, l, "NONE23"))
}

func logRetention(t *testing.T, f LogFactory) {
	const retain = 5
	l, _ := f(t, retain)
	e := l.Epoch()
	var next uint64 = 1
	for _, n := range []uint64{1, 3, 64, 70, 1, 1, 2, 128, 30} { // crosses several multiples of 64
		require.NoError(t, l.Append(ctx(t), msgs("RET234", e, next, next+n-1)))
		next += n
	}
	last := next - 1
	require.NoError(t, l.Append(ctx(t), msgs("FEW234", e, 1, 3)))

	got := history(t, l, "RET234")
	require.GreaterOrEqual(t, len(got), retain)
	first := got[0].Seq
	assert.Equal(t, msgs("RET234", e, first, last), got, "a gapless run up to the head")
	assert.Equal(t, last, head(t, l, "RET234"))

	got, err := l.Since(ctx(t), "RET234", last-retain, 0)
	require.NoError(t, err)
	assert.Equal(t, msgs("RET234", e, last-retain+1, last), got, "the latest Retain are all there")
	assert.Equal(t, msgs("FEW234", e, 1, 3), history(t, l, "FEW234"), "rooms are retained apart")
}

func logDrop(t *testing.T, f LogFactory) {
	l, _ := f(t, 100)
	e := l.Epoch()
	require.NoError(t, l.Append(ctx(t), append(msgs("DROP23", e, 1, 7), msgs("KEEP23", e, 1, 2)...)))
	require.NoError(t, l.Drop(ctx(t), "DROP23"))
	assert.Zero(t, head(t, l, "DROP23"))
	assert.Empty(t, history(t, l, "DROP23"))
	assert.Equal(t, msgs("KEEP23", e, 1, 2), history(t, l, "KEEP23"), "other rooms keep theirs")

	require.NoError(t, l.Drop(ctx(t), "DROP23"), "twice")
	require.NoError(t, l.Drop(ctx(t), "NEVER2"), "a room that never had messages")
	assert.ErrorIs(t, l.Append(ctx(t), msgs("DROP23", e, 8, 8)), rooms.ErrSeqConflict, "the old head is gone")
	require.NoError(t, l.Append(ctx(t), msgs("DROP23", e, 1, 1)), "a new room of the same code starts at 1")
	assert.Equal(t, msgs("DROP23", e, 1, 1), history(t, l, "DROP23"))
}

func logConcurrent(t *testing.T, f LogFactory) {
	l, _ := f(t, 100)
	e := l.Epoch()
	require.NoError(t, l.Append(ctx(t), msgs("CONC23", e, 1, 2)))
	const n = 10
	o := race(n, rooms.ErrSeqConflict, func(i int) error {
		m := msgs("CONC23", e, 3, 4)
		m[0].Body = fmt.Sprintf("from writer %d", i)
		return l.Append(ctx(t), m)
	})
	assert.Empty(t, o.others)
	assert.Equal(t, 1, o.ok)
	assert.Equal(t, n-1, o.want)
	got := history(t, l, "CONC23")
	require.Len(t, got, 4, "one writer's two messages after the first two")
	assert.Equal(t, uint64(4), got[3].Seq)
	assert.Regexp(t, `^from writer \d+$`, got[2].Body)
}
