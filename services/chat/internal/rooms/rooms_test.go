package rooms

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewCode(t *testing.T) {
	seen := map[byte]bool{}
	for range 200 {
		c, err := NewCode(8)
		require.NoError(t, err)
		require.Len(t, c, 8)
		assert.Empty(t, strings.Trim(c, Alphabet), c)
		for i := range len(c) {
			seen[c[i]] = true
		}
	}
	assert.Len(t, seen, len(Alphabet), "every symbol shows up in 1600 draws")
	for _, ambiguous := range "0O1IL" {
		assert.NotContains(t, Alphabet, string(ambiguous))
	}
}

func TestNormalizeCode(t *testing.T) {
	cases := []struct{ in, want, field string }{
		{"abc234", "ABC234", ""},
		{"  xyz789 ", "XYZ789", ""},
		{"", "", "short_code"},
		{"ab0cd", "", "short_code"},
		{"héllo", "", "short_code"},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := NormalizeCode(tc.in)
			if tc.field == "" {
				require.NoError(t, err)
				assert.Equal(t, tc.want, got)
				return
			}
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			assert.Equal(t, tc.field, inv.Field)
		})
	}
}

func TestNormalizeName(t *testing.T) {
	good := []struct{ in, want string }{
		{strings.Repeat("ü", MaxNameChars), strings.Repeat("ü", MaxNameChars)},
		{"  team chat \t\n", "team chat"},
		{" " + strings.Repeat("a", MaxNameChars) + " ", strings.Repeat("a", MaxNameChars)},           // counted after trimming
		{"caf\u00e9\u00a0bar", "caf\u00e9\u00a0bar"},                                                 // a no-break space inside is a space
		{"\U0001F468\u200D\U0001F469\u200D\U0001F467", "\U0001F468\u200D\U0001F469\u200D\U0001F467"}, // an emoji sequence joins with ZWJ
		{"\u0645\u06cc\u200C\u062e\u0648\u0627\u0645", "\u0645\u06cc\u200C\u062e\u0648\u0627\u0645"}, // Persian needs ZWNJ
		{"\u2764\uFE0F", "\u2764\uFE0F"},                                                             // a variation selector is a mark, not a format character
	}
	for _, tc := range good {
		got, err := NormalizeName(tc.in)
		require.NoError(t, err, "%q", tc.in)
		assert.Equal(t, tc.want, got)
	}
	bad := []struct{ in, reason string }{
		{"", "empty"},
		{"  \t ", "empty"},
		{strings.Repeat("a", MaxNameChars+1), "at most"},
		{"a\xff", "UTF-8"},
		{"red\x1b[31malert", "U+001B at character 4"}, // ESC: terminal escapes
		{"nul\x00", "U+0000"},
		{"two\nlines", "U+000A"},
		{"tab\there", "U+0009"},
		{"del\x7f", "U+007F"},
		{"c1\u009b31m", "U+009B"},       // CSI as a C1 control
		{"evil\u202Etxt.exe", "U+202E"}, // right-to-left override
		{"\u2066iso\u2069", "U+2066"},
		{"zero\u200Bwidth", "U+200B"},
		{"soft\u00ADhyphen", "U+00AD"},
		{"\uFEFFbom", "U+FEFF"},
		{"line\u2028sep", "U+2028"},
		{"para\u2029sep", "U+2029"},
		{"tag\U000E0041", "U+E0041"}, // invisible tag characters
	}
	for _, tc := range bad {
		_, err := NormalizeName(tc.in)
		var inv *InvalidError
		require.ErrorAs(t, err, &inv, "%q", tc.in)
		assert.Equal(t, "name", inv.Field)
		assert.Contains(t, inv.Reason, tc.reason, "%q", tc.in)
	}
}

// FuzzNormalizeName checks that an accepted name is valid UTF-8, trimmed,
// within the length, free of hidden characters, and its own normal form.
func FuzzNormalizeName(f *testing.F) {
	for _, s := range []string{"room", " room ", "a\x1bb", "\u202Ex", "\U0001F468\u200D\U0001F469", "\xff", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := NormalizeName(in)
		if err != nil {
			var inv *InvalidError
			require.ErrorAs(t, err, &inv)
			assert.Equal(t, "name", inv.Field)
			return
		}
		assert.True(t, utf8.ValidString(out))
		assert.Equal(t, strings.TrimSpace(out), out)
		assert.NotEmpty(t, out)
		assert.LessOrEqual(t, utf8.RuneCountInString(out), MaxNameChars)
		assert.False(t, strings.ContainsFunc(out, hiddenRune), "%q", out)
		again, err := NormalizeName(out)
		require.NoError(t, err)
		assert.Equal(t, out, again)
	})
}

// FuzzValidateSend checks that ValidateSend accepts exactly the messages
// the API allows, and names the right field when it does not.
func FuzzValidateSend(f *testing.F) {
	f.Add("", "hello", 16)
	f.Add("id", "", 16)
	f.Add(strings.Repeat("i", 65), "x", 16)
	f.Add("ok", strings.Repeat("x", 17), 16)
	f.Add("ok", "a\xffb", 16)
	f.Add("\xc3", "fine", 16)
	f.Add("ok", "héllo", 6)
	f.Fuzz(func(t *testing.T, id, body string, max int) {
		if max < 1 || max > 1<<16 {
			max = 4096
		}
		err := ValidateSend(id, body, max)
		ok := body != "" && len(body) <= max && utf8.ValidString(body) &&
			len(id) <= MaxClientIDBytes && utf8.ValidString(id)
		if ok {
			if err != nil {
				t.Fatalf("rejected valid message: %v", err)
			}
			return
		}
		var inv *InvalidError
		if !errors.As(err, &inv) {
			t.Fatalf("accepted or wrong error for id=%q body=%q: %v", id, body, err)
		}
		bodyBad := body == "" || len(body) > max || !utf8.ValidString(body)
		if bodyBad != (inv.Field == "body") || (!bodyBad && inv.Field != "client_message_id") {
			t.Fatalf("wrong field %q for id=%q body=%q", inv.Field, id, body)
		}
	})
}

var time1 = time.Unix(1700000000, 0)

func ev(seq uint64) *Event {
	return NewMessageEvent(Message{Seq: seq, Epoch: "e", SentAt: time1, Sender: "s", Body: "b"})
}

func TestSubscriptionQueue(t *testing.T) {
	closed := 0
	s := NewSubscription(Opened{}, []*Event{ev(1), ev(2)}, 2, func() { closed++ })
	select {
	case <-s.Ready():
	default:
		t.Fatal("a backlog must signal Ready")
	}
	assert.True(t, s.Push(ev(3)))
	assert.True(t, s.Push(ev(4)), "backlog does not count against the bound")
	got, err := s.Drain(nil, 3, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, []uint64{1, 2, 3}, seqs(got))
	got, err = s.Drain(nil, 3, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, []uint64{4}, seqs(got))

	// Byte cap: at least one event, then only what fits.
	for i := uint64(5); i <= 6; i++ {
		require.True(t, s.Push(ev(i)))
	}
	got, _ = s.Drain(nil, 10, 1)
	assert.Equal(t, []uint64{5}, seqs(got))
	got, _ = s.Drain(nil, 10, 1<<20)
	assert.Equal(t, []uint64{6}, seqs(got))

	// Overflow ends it at once and drops what is queued; Overflowed tells
	// so without draining, which a blocked writer could not do.
	assert.False(t, s.Pending())
	require.True(t, s.Push(ev(7)))
	require.True(t, s.Push(ev(8)))
	assert.True(t, s.Pending())
	assert.NoError(t, s.Overflowed())
	assert.False(t, s.Push(ev(9)))
	assert.ErrorIs(t, s.Overflowed(), ErrSlowConsumer)
	assert.False(t, s.Push(ev(10)))
	got, err = s.Drain(nil, 10, 1<<20)
	assert.ErrorIs(t, err, ErrSlowConsumer)
	assert.Empty(t, got)

	s.Close()
	s.Close()
	assert.Equal(t, 1, closed)
}

func TestSubscriptionEndDeliversLast(t *testing.T) {
	s := NewSubscription(Opened{}, nil, 1, nil)
	require.True(t, s.Push(ev(1)))
	s.End(ev(2), ErrDeleted)
	s.End(ev(3), ErrShuttingDown) // ignored: already ended
	got, err := s.Drain(nil, 1, 1<<20)
	require.NoError(t, err, "the reason comes after the queue is empty")
	assert.Equal(t, []uint64{1}, seqs(got))
	assert.NoError(t, s.Overflowed(), "an end that is not an overflow waits for the queue")
	got, err = s.Drain(nil, 10, 1<<20)
	assert.Equal(t, []uint64{2}, seqs(got))
	assert.ErrorIs(t, err, ErrDeleted)
	assert.True(t, s.Pending(), "the end reason is still to be read")
}

// While a consumer holds the claim, events wake it and not the handler;
// Release fails while anything is pending, so no event is left without a
// consumer; the end of the subscription wakes both.
func TestSubscriptionClaim(t *testing.T) {
	s := NewSubscription(Opened{}, nil, 4, nil)
	require.True(t, s.Push(ev(1)))
	assert.True(t, signalled(s.Ready()), "unclaimed: the handler is woken")
	assert.False(t, signalled(s.Wake()))
	assert.False(t, s.Idle())

	require.True(t, s.Claim())
	assert.False(t, s.Claim(), "one consumer at a time")
	assert.False(t, s.Release(), "an event is pending")
	got, err := s.Drain(nil, 10, 1<<20)
	require.NoError(t, err)
	assert.Equal(t, []uint64{1}, seqs(got))

	require.True(t, s.Push(ev(2)))
	assert.True(t, signalled(s.Wake()), "claimed: the consumer is woken")
	assert.False(t, signalled(s.Ready()), "and not the handler")
	assert.False(t, s.Release())
	_, _ = s.Drain(nil, 10, 1<<20)
	assert.False(t, s.Idle(), "still claimed")
	require.True(t, s.Release())
	assert.True(t, s.Idle())

	require.True(t, s.Claim())
	s.End(nil, ErrDeleted)
	assert.True(t, signalled(s.Wake()))
	assert.True(t, signalled(s.Ready()))
	assert.False(t, s.Release(), "the end reason is pending")
}

// Nudge and Close wake a consumer waiting on Wake without an event, so
// that it can look at why it might stop waiting.
func TestNudgeAndCloseSignalWake(t *testing.T) {
	s := NewSubscription(Opened{}, nil, 4, nil)
	s.Nudge() // nobody has asked for Wake: nothing to signal, no panic
	wake := s.Wake()
	assert.False(t, signalled(wake))
	s.Nudge()
	assert.True(t, signalled(wake))
	assert.False(t, signalled(wake), "one wake-up, not a backlog")
	assert.False(t, s.Pending(), "a nudge pushes nothing")
	assert.False(t, s.Closed())
	s.Close()
	assert.True(t, s.Closed(), "a consumer woken by Close can tell")
	assert.True(t, signalled(wake))
}

func seqs(evs []*Event) []uint64 {
	out := make([]uint64, len(evs))
	for i, e := range evs {
		out[i] = e.Message.Seq
	}
	return out
}

// An event is encoded once per format however many goroutines ask for
// it at once, and each format has its own encoding.
func TestEventPreparedOncePerFormat(t *testing.T) {
	e := ev(1)
	var calls [2]atomic.Int32
	enc := func(f Format) func(*Event) any {
		return func(got *Event) any {
			calls[f].Add(1)
			return fmt.Sprint(f, ":", got.Message.Seq)
		}
	}
	var wg sync.WaitGroup
	for i := range 100 {
		f := Format(i % 2)
		wg.Go(func() {
			assert.Equal(t, fmt.Sprint(f, ":1"), e.Prepared(f, enc(f)))
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), calls[FormatProtobuf].Load())
	assert.Equal(t, int32(1), calls[FormatJSON].Load())
}

// Size bounds frames without encoding: it grows with what is carried.
func TestEventSize(t *testing.T) {
	small, large := ev(1), ev(1)
	large.Message.Body = strings.Repeat("x", 1000)
	assert.Equal(t, small.Size()+999, large.Size(), "one byte of body, one byte of size")
	joined := &Event{Kind: EventJoined, User: "someone"}
	assert.Greater(t, joined.Size(), (&Event{Kind: EventRoomDeleted}).Size())
}

// signalled reports whether a wake-up is pending on c, taking it.
func signalled(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
