package e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The load of the restart tests: loadMembers members each send a message
// every loadPeriod (50 messages a second together), for loadPhase before
// the first restart, between restarts and after the last one.
const (
	loadMembers = 10
	loadPeriod  = 200 * time.Millisecond
	loadPhase   = 2 * time.Second
	endBody     = "end of the load"
)

// loadMember is one member of the load's room: its Client, what it
// received, and the bodies its Send accepted.
type loadMember struct {
	name string
	c    *client.Client
	*collector

	mu       sync.Mutex
	sent     []sentMessage
	sendErrs []error
}

// sentMessage is a body Send accepted, with how many restarts had
// completed when it returned.
type sentMessage struct {
	body  string
	phase int32
}

// load is a room of members sending at a steady rate while the chat
// service restarts.
type load struct {
	s       *stack
	code    string
	epoch   string // the room's when the members joined
	head    uint64 // its head sequence then
	members []*loadMember
	phase   atomic.Int32 // restarts completed
}

// newLoad registers loadMembers users; the first creates a room (and owns
// it), and all join it.
func newLoad(t *testing.T, s *stack) *load {
	t.Helper()
	l := &load{s: s}
	ctx := testCtx(t, 60*time.Second)
	for i := range loadMembers {
		name := fmt.Sprintf("member%d", i)
		c := newUser(t, s, name, client.WithBacklog(0))
		if i == 0 {
			var err error
			l.code, err = c.CreateChatRoom(ctx, "load", "room-secret")
			require.NoError(t, err)
		}
		room, err := c.JoinChatRoom(ctx, l.code, "room-secret")
		require.NoError(t, err, name)
		if i == 0 {
			l.epoch, l.head = room.Epoch, room.HeadSequence
		}
		l.members = append(l.members, &loadMember{name: name, c: c, collector: collect(t, c)})
	}
	return l
}

// run sends for loadPhase, then for each restart restarts the chat service
// and sends on for loadPhase; then it stops sending and waits until every
// sender has seen each of its messages come back, and every member has
// received a last message sent after them all.
func (l *load) run(t *testing.T, restarts ...func(*testing.T)) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, m := range l.members {
		wg.Add(1)
		// Each sender lives until stop is closed; Sends are bounded.
		go func() {
			defer wg.Done()
			// Spread the senders over the period.
			time.Sleep(time.Duration(i) * loadPeriod / loadMembers)
			tick := time.NewTicker(loadPeriod)
			defer tick.Stop()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				case <-tick.C:
				}
				body := fmt.Sprintf("%s #%d", m.name, n)
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
				_, err := m.c.Send(ctx, body)
				cancel()
				m.mu.Lock()
				if err != nil {
					m.sendErrs = append(m.sendErrs, fmt.Errorf("%s: %w", body, err))
				} else {
					m.sent = append(m.sent, sentMessage{body: body, phase: l.phase.Load()})
				}
				m.mu.Unlock()
			}
		}()
	}
	time.Sleep(loadPhase)
	for _, restart := range restarts {
		restart(t)
		l.phase.Add(1)
		time.Sleep(loadPhase)
	}
	close(stop)
	wg.Wait()

	// Once a sender has seen all its messages come back it sends none
	// again, so a message sent after that comes after every other.
	for _, m := range l.members {
		own := m.sentBodies()
		require.Empty(t, m.sendErrs, "%s: Send failed", m.name)
		m.waitUntil(t, 30*time.Second, m.name+" sees its own messages come back", func(evs []client.Event) bool {
			got := map[string]bool{}
			for _, msg := range messagesOf(evs) {
				got[msg.Body] = true
			}
			for _, b := range own {
				if !got[b] {
					return false
				}
			}
			return true
		})
	}
	ctx := testCtx(t, 20*time.Second)
	_, err := l.members[0].c.Send(ctx, endBody)
	require.NoError(t, err)
	for _, m := range l.members {
		m.waitUntil(t, 20*time.Second, m.name+" receives the last message", hasBody(endBody))
	}
	total := 0
	for _, m := range l.members {
		total += len(m.sentBodies())
	}
	t.Logf("%d members sent %d messages across %d restarts", len(l.members), total, len(restarts))
}

func (m *loadMember) sentBodies() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.sent))
	for _, s := range m.sent {
		out = append(out, s.body)
	}
	return out
}

// allSent returns every body a Send accepted, the last message's included.
func (l *load) allSent() map[string]bool {
	out := map[string]bool{endBody: true}
	for _, m := range l.members {
		for _, b := range m.sentBodies() {
			out[b] = true
		}
	}
	return out
}

// checkDurable asserts what a history that survives restarts promises:
// the epoch never changed, no member was told of a gap, and every member
// received every message sent, once, in one order shared by all.
func (l *load) checkDurable(t *testing.T) {
	t.Helper()
	want := l.allSent()
	var first []*client.Message
	for i, m := range l.members {
		evs := m.snapshot()
		assert.Empty(t, eventsOf[*client.Gap](evs), "%s: no gap", m.name)
		msgs := messagesOf(evs)
		assertRun(t, m.name, msgs, l.epoch, l.head+1)
		got := map[string]int{}
		for _, msg := range msgs {
			got[msg.Body]++
		}
		assert.Empty(t, setDiff(want, got), "%s: messages sent and never received", m.name)
		assert.Empty(t, setDiff(got, want), "%s: messages received and never sent", m.name)
		var twice []string
		for b, n := range got {
			if n > 1 {
				twice = append(twice, b)
			}
		}
		assert.Empty(t, twice, "%s: messages received more than once", m.name)
		if i == 0 {
			first = msgs
		} else {
			assertSameOrder(t, l.members[0].name, first, m.name, msgs)
		}
	}
}

// checkEphemeral asserts what a history lost at each restart promises:
// each member is told of one gap per restart, exactly where its messages
// stopped, and sees its own messages once; and every message of the last
// epoch, which all messages sent after the last restart are in, reaches
// every member, in one order shared by all.
func (l *load) checkEphemeral(t *testing.T, restarts int) {
	t.Helper()
	var first []*client.Message
	for i, m := range l.members {
		evs := m.snapshot()
		epoch, after, from := l.epoch, l.head, l.head+1
		var gaps int
		var run []*client.Message // the messages of the current epoch
		for _, ev := range evs {
			switch ev := ev.(type) {
			case *client.Gap:
				gaps++
				assert.Equal(t, epoch, ev.PreviousEpoch, "%s: gap %d from the last epoch received", m.name, gaps)
				assert.Equal(t, after, ev.AfterSequence, "%s: gap %d after the last message received", m.name, gaps)
				assert.NotEqual(t, ev.PreviousEpoch, ev.Epoch, "%s: gap %d: a restart of an ephemeral history starts a new epoch", m.name, gaps)
				assertRun(t, m.name, run, epoch, from)
				// Where the new epoch's messages start is the service's
				// to say; that they reach everyone, checked below, is not.
				epoch, after, from, run = ev.Epoch, ev.HeadSequence, 0, nil
			case *client.Message:
				run = append(run, ev)
				after = ev.Sequence
			}
		}
		assert.Equal(t, restarts, gaps, "%s: one gap per restart", m.name)
		assertRun(t, m.name, run, epoch, from)

		own := map[string]int{}
		for _, msg := range messagesOf(evs) {
			if msg.Sender == m.name {
				own[msg.Body]++
			}
		}
		m.mu.Lock()
		sent := m.sent
		m.mu.Unlock()
		for _, s := range sent {
			assert.Equal(t, 1, own[s.body], "%s: its own %q received once", m.name, s.body)
		}
		last := map[string]bool{}
		for _, msg := range run {
			last[msg.Body] = true
		}
		for _, o := range l.members {
			o.mu.Lock()
			for _, s := range o.sent {
				if s.phase == int32(restarts) {
					assert.True(t, last[s.body], "%s: %q, sent after the last restart, received in the last epoch", m.name, s.body)
				}
			}
			o.mu.Unlock()
		}
		if i == 0 {
			first = run
		} else {
			assertSameOrder(t, l.members[0].name, first, m.name, run)
		}
	}
}

// assertRun asserts that msgs are all of epoch, with sequences increasing
// by one from first (from any, if first is 0).
func assertRun(t *testing.T, who string, msgs []*client.Message, epoch string, first uint64) {
	t.Helper()
	bad := 0
	for i, m := range msgs {
		want := first
		if i > 0 {
			want = msgs[i-1].Sequence + 1
		}
		if m.Epoch != epoch || (m.Sequence != want && want > 0) {
			if bad++; bad <= 5 {
				t.Errorf("%s: message %d (%q) is %s/%d, want %s/%d", who, i, m.Body, m.Epoch, m.Sequence, epoch, want)
			}
		}
	}
}

// assertSameOrder asserts that two members received the same messages at
// the same sequences.
func assertSameOrder(t *testing.T, whoA string, a []*client.Message, whoB string, b []*client.Message) {
	t.Helper()
	if len(a) != len(b) {
		t.Errorf("%s received %d messages (%s), %s %d (%s)", whoA, len(a), span(a), whoB, len(b), span(b))
		return
	}
	for i := range a {
		if a[i].Sequence != b[i].Sequence || a[i].Body != b[i].Body {
			t.Errorf("message %d: %s has %d %q, %s has %d %q", i, whoA, a[i].Sequence, a[i].Body, whoB, b[i].Sequence, b[i].Body)
			return
		}
	}
}

// span describes a run of messages by its first and last sequence.
func span(msgs []*client.Message) string {
	if len(msgs) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d to %d", msgs[0].Sequence, msgs[len(msgs)-1].Sequence)
}

// setDiff returns the keys of a missing from b, sorted, at most 10.
func setDiff[A, B any](a map[string]A, b map[string]B) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	if len(out) > 10 {
		out = append(out[:10], fmt.Sprintf("and %d more", len(out)-10))
	}
	return out
}

// checkOwnership asserts that the room and its owner survived: a member
// who is not the owner cannot delete it, and the owner can, which ends
// every member's session.
func (l *load) checkOwnership(t *testing.T) {
	t.Helper()
	ctx := testCtx(t, 20*time.Second)
	users, err := l.members[1].c.ListChatRoomUsers(ctx)
	require.NoError(t, err)
	assert.Len(t, users, len(l.members), "every member is online")
	assert.ErrorIs(t, l.members[1].c.DeleteChatRoom(ctx, l.code), client.ErrPermissionDenied)
	require.NoError(t, l.members[0].c.DeleteChatRoom(ctx, l.code))
	for _, m := range l.members {
		m.waitUntil(t, 10*time.Second, m.name+" is told the room was deleted", func(evs []client.Event) bool {
			return len(eventsOf[*client.RoomDeleted](evs)) > 0
		})
	}
}

// TestRestartUnderLoad restarts the chat service, once gracefully and
// once with SIGKILL, while ten members send: with the history in the
// database nothing is lost, repeated or reordered, the epoch stays, and
// the room keeps its owner.
func TestRestartUnderLoad(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			opts := stackOptions{authEnv: map[string]string{"REGISTER_BURST": "100"}}
			if backend == "postgres" {
				opts.chatEnv = map[string]string{"DATABASE_URL": postgresURL(t)}
			}
			s := newStack(t, opts)
			l := newLoad(t, s)
			l.run(t, s.restartChat, s.crashChat)
			l.checkDurable(t)
			l.checkOwnership(t)
		})
	}
}

// TestEphemeralRestartUnderLoad is TestRestartUnderLoad with the history
// in memory: each restart starts a new epoch, which every member is told
// of by a gap, and what is sent in the new epoch reaches every member.
func TestEphemeralRestartUnderLoad(t *testing.T) {
	s := newStack(t, stackOptions{
		authEnv: map[string]string{"REGISTER_BURST": "100"},
		chatEnv: map[string]string{"HISTORY_STORE": "memory"},
	})
	l := newLoad(t, s)
	l.run(t, s.restartChat, s.crashChat)
	l.checkEphemeral(t, 2)
	l.checkOwnership(t)
}
