package client

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func msg(seq uint64) *Message { return &Message{Epoch: "e1", Sequence: seq} }

// drain pops every event the inbox holds.
func drain(in *inbox) []Event {
	var out []Event
	for {
		ev, ok := in.pop()
		if !ok {
			return out
		}
		out = append(out, ev)
	}
}

// The inbox keeps the newest events and reports the oldest it dropped in
// one Gap ahead of them.
func TestInboxDropsOldest(t *testing.T) {
	refused := &SendFailed{ClientMessageID: "mine"}
	presence := &Presence{Kind: Joined, User: "bob"}
	serviceGap := &Gap{PreviousEpoch: "e1", AfterSequence: 2, Epoch: "e1", HeadSequence: 9, Unconfirmed: []string{"lost"}}
	tests := []struct {
		name string
		size int
		push []Event
		want []Event
	}{
		{"within the size", 3, []Event{msg(1), msg(2), msg(3)}, []Event{msg(1), msg(2), msg(3)}},
		{"overflow drops the oldest", 2, []Event{msg(1), msg(2), msg(3), msg(4), msg(5)},
			[]Event{&Gap{PreviousEpoch: "e1", AfterSequence: 0, Epoch: "e1", HeadSequence: 3, Dropped: 3, DroppedMessages: 3}, msg(4), msg(5)}},
		{"other kinds count as dropped, not as messages", 1, []Event{presence, msg(1), msg(2)},
			[]Event{&Gap{PreviousEpoch: "e1", AfterSequence: 0, Epoch: "e1", HeadSequence: 1, Dropped: 2, DroppedMessages: 1}, msg(2)}},
		{"a refusal is kept in the gap", 1, []Event{refused, msg(1)},
			[]Event{&Gap{PreviousEpoch: "e1", Epoch: "e1", Dropped: 1, Failed: []*SendFailed{refused}}, msg(1)}},
		{"the service's gap is folded in", 1, []Event{msg(1), serviceGap, msg(10)},
			[]Event{&Gap{PreviousEpoch: "e1", Epoch: "e1", HeadSequence: 1, Dropped: 2, DroppedMessages: 1, Unconfirmed: []string{"lost"}, ServiceGap: true}, msg(10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := newInbox(tt.size)
			in.start("e1", 0)
			for _, ev := range tt.push {
				in.push(ev)
			}
			assert.Equal(t, tt.want, drain(in))
		})
	}
}

// A gap starts after the last message Receive returned, and the next one
// after the last message the previous gap reported.
func TestInboxGapStartsWhereReadingStopped(t *testing.T) {
	in := newInbox(2)
	in.start("e1", 40) // a session that joined after sequence 40
	for seq := uint64(41); seq <= 43; seq++ {
		in.push(msg(seq))
	}
	ev, _ := in.pop()
	assert.Equal(t, &Gap{PreviousEpoch: "e1", AfterSequence: 40, Epoch: "e1", HeadSequence: 41, Dropped: 1, DroppedMessages: 1}, ev)
	ev, _ = in.pop()
	assert.Equal(t, msg(42), ev)
	for seq := uint64(44); seq <= 46; seq++ {
		in.push(msg(seq))
	}
	assert.Equal(t, []Event{
		&Gap{PreviousEpoch: "e1", AfterSequence: 42, Epoch: "e1", HeadSequence: 44, Dropped: 2, DroppedMessages: 2},
		msg(45), msg(46),
	}, drain(in))
}

// pop passes the wake-up on while events are left, so that several
// goroutines waiting in Receive all get one.
func TestInboxSignalsWhileEventsLeft(t *testing.T) {
	in := newInbox(4)
	in.push(msg(1))
	in.push(msg(2))
	<-in.ready
	_, ok := in.pop()
	assert.True(t, ok)
	select {
	case <-in.ready:
	default:
		t.Fatal("an event is left but no wake-up is")
	}
	_, ok = in.pop()
	assert.True(t, ok)
	select {
	case <-in.ready:
		t.Fatal("a wake-up with nothing left")
	default:
	}
}
