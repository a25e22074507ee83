package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// driver runs a model as the bubbletea runtime does: each command in a
// goroutine of its own, whose message goes to Update, one at a time, on
// the test's goroutine, which alone touches the model. So every room's
// Receive is in flight at once, shown or not, as when chatter runs.
type driver struct {
	t    *testing.T
	ctx  context.Context
	m    *model
	msgs chan tea.Msg
	wg   sync.WaitGroup
	quit bool
}

func newDriver(t *testing.T, be *fakeBackend, width, height int) *driver {
	ctx, cancel := context.WithCancel(context.Background())
	d := &driver{t: t, ctx: ctx, m: newModel(ctx, be, "alice"), msgs: make(chan tea.Msg)}
	// The commands still running at the end, the rooms' Receives, return
	// once ctx ends.
	t.Cleanup(func() {
		cancel()
		d.wg.Wait()
	})
	d.do(tea.WindowSizeMsg{Width: width, Height: height})
	return d
}

func (d *driver) do(msg tea.Msg) {
	switch msg := msg.(type) {
	case nil:
	case tea.BatchMsg:
		for _, c := range msg {
			d.start(c)
		}
	case tea.QuitMsg:
		d.quit = true
	default:
		_, cmd := d.m.Update(msg)
		d.start(cmd)
	}
}

func (d *driver) start(cmd tea.Cmd) {
	if cmd == nil {
		return
	}
	d.wg.Add(1)
	// Ends once its message is taken, or when the test ends.
	go func() {
		defer d.wg.Done()
		msg := cmd()
		select {
		case d.msgs <- msg:
		case <-d.ctx.Done():
		}
	}()
}

// until hands the commands' messages to the model until cond holds; it
// fails after a bound far above what any step needs.
func (d *driver) until(what string, cond func() bool) {
	d.t.Helper()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case msg := <-d.msgs:
			d.do(msg)
		case <-deadline:
			d.t.Fatalf("%s: not so after 10s; the screen:\n%s", what, view(d.m))
		}
	}
}

func (d *driver) shows(s string) func() bool {
	return func() bool { return strings.Contains(view(d.m), s) }
}

func (d *driver) typeText(s string) {
	for _, r := range s {
		d.do(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func (d *driver) logIn() {
	d.t.Helper()
	d.typeText("secret")
	d.do(keyEnter)
	d.until("logged in", d.shows("Logged in as alice — join a room"))
}

// join joins code from the room form and waits until it is shown.
func (d *driver) join(code string) {
	d.t.Helper()
	d.typeText(code)
	d.do(keyTab)
	d.typeText("pw")
	d.do(keyEnter)
	d.until("joined "+code, func() bool {
		r := d.m.current()
		return r != nil && r.info.ShortCode == code
	})
}

// left waits until the room was left.
func (d *driver) left(be *fakeBackend, code string) {
	d.t.Helper()
	d.until("left "+code, func() bool { return slices.Contains(be.recorded(), "leave "+code) })
}

var keyShiftTab = tea.KeyPressMsg{Code: tea.KeyTab, Mod: tea.ModShift}

func altKey(r rune) tea.KeyPressMsg { return tea.KeyPressMsg{Code: r, Mod: tea.ModAlt} }

func msgFrom(sender, body string) *client.Message {
	return &client.Message{Sender: sender, Body: body, SentAt: time.Now()}
}

// hasLine reports whether the room's view got a line with s, shown or not.
func hasLine(r *roomView, s string) bool {
	return slices.ContainsFunc(r.lines, func(l string) bool { return strings.Contains(l, s) })
}

// Two rooms on one client: each room's messages land in its own view, the
// one not shown counts its unread messages in the room list, and showing
// it reads them.
func TestTUIRoomList(t *testing.T) {
	be := &fakeBackend{names: map[string]string{"BBBBBB": "random"}}
	d := newDriver(t, be, 100, 30)
	d.logIn()
	d.join("AAAAAA")
	assert.Contains(t, view(d.m), "1 general (AAAAAA)", "the room list shows the room")
	assert.NotContains(t, view(d.m), "switch room", "one room: nothing to switch to")

	d.do(keyCtrlN)
	v := view(d.m)
	assert.Contains(t, v, "Logged in as alice — join a room")
	assert.Contains(t, v, "your rooms:")
	assert.Contains(t, v, "1 general (AAAAAA)")
	assert.Contains(t, v, "Esc: back to your rooms")
	d.join("BBBBBB")
	a, b := be.rooms[0], be.rooms[1]
	v = view(d.m)
	assert.Contains(t, v, "1 general (AAAAAA)")
	assert.Contains(t, v, "2 random (BBBBBB)")
	assert.Contains(t, v, "random (BBBBBB) — alice")
	assert.Contains(t, v, "Tab/Shift-Tab or Alt-1…9: switch room")
	assert.Contains(t, d.m.View().Content, tabCurrentStyle.Render(" 2 random (BBBBBB) "), "the room shown is highlighted")
	assert.Equal(t, []string{"login alice", "join AAAAAA", "join BBBBBB"}, be.recorded(), "one login for both rooms")

	// A's messages come while B is shown; so do A's own user's echo and a
	// presence change, which are not unread messages.
	for i := range 3 {
		a.events <- msgFrom("bob", fmt.Sprintf("to A %d", i))
	}
	a.events <- msgFrom("alice", "mine")
	a.events <- &client.Presence{Kind: client.Joined, User: "dave"}
	a.events <- msgFrom("bob", "to A 3")
	b.events <- msgFrom("carol", "to B")
	roomA := d.m.rooms[0]
	d.until("A's messages received", func() bool { return hasLine(roomA, "to A 3") })
	d.until("B's message shown", d.shows("to B"))
	v = view(d.m)
	assert.Contains(t, v, "1 general (AAAAAA) [4]", "A counts its unread messages")
	assert.NotContains(t, v, "to A", "A's messages are not in B's view")

	d.do(keyTab)
	v = view(d.m)
	assert.Contains(t, v, "general (AAAAAA) — alice")
	for i := range 4 {
		assert.Contains(t, v, fmt.Sprintf("to A %d", i))
	}
	assert.Contains(t, v, "dave joined")
	assert.NotContains(t, v, "to B", "B's message is not in A's view")
	assert.NotContains(t, v, "[4]", "shown: read")
	assert.Contains(t, d.m.View().Content, tabCurrentStyle.Render(" 1 general (AAAAAA) "))
	assert.Contains(t, v, "online (2)", "A's own online list")

	b.events <- msgFrom("carol", "again B")
	d.until("B's unread counted", d.shows("2 random (BBBBBB) [1]"))
	d.do(altKey('2'))
	v = view(d.m)
	assert.Contains(t, v, "random (BBBBBB) — alice")
	assert.Contains(t, v, "again B")
	assert.NotContains(t, v, "[1]")
	assert.Contains(t, v, "online (1)", "B's own online list")
	d.do(altKey('7'))
	assert.Equal(t, "BBBBBB", d.m.current().info.ShortCode, "no seventh room: nothing happens")

	// What is typed goes to the room shown.
	d.do(keyShiftTab)
	require.Equal(t, "AAAAAA", d.m.current().info.ShortCode)
	d.typeText("hello A")
	d.do(keyEnter)
	d.until("sent to A", func() bool { return slices.Contains(be.recorded(), "send AAAAAA hello A") })

	// Joining a room open already shows it; it is not joined again.
	d.do(keyCtrlN)
	d.typeText("bbbbbb")
	d.do(keyTab)
	d.typeText("pw")
	d.do(keyEnter)
	require.NotNil(t, d.m.current(), "shown at once")
	assert.Equal(t, "BBBBBB", d.m.current().info.ShortCode)
	assert.Len(t, be.rooms, 2)
	assert.NotContains(t, be.recorded(), "join bbbbbb")
}

// Rooms go on receiving while the room form is up: every event of every
// room is read, and Esc goes back to the room shown before, its count read.
func TestTUIReadsEveryRoomWhileTheFormIsUp(t *testing.T) {
	be := &fakeBackend{names: map[string]string{"BBBBBB": "random"}}
	d := newDriver(t, be, 100, 30)
	d.logIn()
	d.join("AAAAAA")
	d.do(keyCtrlN)
	d.join("BBBBBB")
	d.do(keyCtrlN)
	a, b := be.rooms[0], be.rooms[1]
	const n = 50
	for i := range n {
		a.events <- msgFrom("bob", fmt.Sprintf("a%d", i))
		b.events <- msgFrom("bob", fmt.Sprintf("b%d", i))
	}
	d.until("A's messages read", d.shows("1 general (AAAAAA) [50]"))
	d.until("B's messages read", d.shows("2 random (BBBBBB) [50]"))
	assert.Contains(t, view(d.m), "join a room", "still on the form")

	d.do(keyEsc)
	v := view(d.m)
	assert.Contains(t, v, "random (BBBBBB) — alice", "back to the room shown before")
	assert.Contains(t, v, "b49")
	assert.Contains(t, v, "1 general (AAAAAA) [50]")
	assert.NotContains(t, v, "random (BBBBBB) [50]", "B's count is read")
	for i := range n {
		require.True(t, hasLine(d.m.rooms[0], fmt.Sprintf("a%d", i)), "a%d", i)
	}
}

// Esc leaves the room shown and shows its neighbour; the other rooms stay
// joined and go on receiving. Leaving the last one returns to the room
// form; Ctrl-C then quits.
func TestTUIEscLeavesOnlyTheRoomShown(t *testing.T) {
	be := &fakeBackend{names: map[string]string{"BBBBBB": "random", "CCCCCC": "third"}}
	d := newDriver(t, be, 100, 30)
	d.logIn()
	d.join("AAAAAA")
	d.do(keyCtrlN)
	d.join("BBBBBB")
	d.do(keyCtrlN)
	d.join("CCCCCC")
	a, b := be.rooms[0], be.rooms[1]

	d.do(altKey('2'))
	d.do(keyEsc)
	v := view(d.m)
	assert.Contains(t, v, "third (CCCCCC) — alice", "the next room is shown")
	assert.Contains(t, v, "left random (BBBBBB)")
	assert.Contains(t, v, "1 general (AAAAAA)")
	assert.Contains(t, v, "2 third (CCCCCC)", "the list closes up")
	assert.NotContains(t, v, "random (BBBBBB) ")
	d.left(be, "BBBBBB")
	select {
	case <-b.left:
	default:
		t.Fatal("B was not left")
	}

	a.events <- msgFrom("bob", "still here")
	d.until("A still receives", d.shows("1 general (AAAAAA) [1]"))
	b.events <- msgFrom("bob", "after B was left")
	assert.NotContains(t, be.recorded(), "leave AAAAAA")
	assert.NotContains(t, be.recorded(), "leave CCCCCC")

	d.do(keyEsc)
	v = view(d.m)
	assert.Contains(t, v, "general (AAAAAA) — alice")
	assert.Contains(t, v, "still here")
	assert.Contains(t, v, "left third (CCCCCC)")
	d.left(be, "CCCCCC")

	d.do(keyEsc)
	v = view(d.m)
	assert.Contains(t, v, "Logged in as alice — join a room", "after the last room, the room form")
	assert.Contains(t, v, "left general (AAAAAA)")
	assert.NotContains(t, v, "your rooms:")
	d.left(be, "AAAAAA")
	for _, r := range d.m.rooms {
		assert.Fail(t, "a room is still listed", r.info.ShortCode)
	}
	assert.NotContains(t, strings.Join(be.recorded(), "\n"), "after B was left")

	d.do(keyEsc)
	assert.False(t, d.quit, "Esc on the room form does not quit")
	d.do(keyCtrlC)
	d.until("quit", func() bool { return d.quit })
}

// Ctrl-C leaves every room, not only the one shown, and quits.
func TestTUICtrlCLeavesEveryRoom(t *testing.T) {
	be := &fakeBackend{}
	d := newDriver(t, be, 80, 24)
	d.logIn()
	d.join("AAAAAA")
	d.do(keyCtrlN)
	d.join("BBBBBB")
	d.do(keyCtrlC)
	d.until("quit", func() bool { return d.quit })
	assert.Subset(t, be.recorded(), []string{"leave AAAAAA", "leave BBBBBB"})
}
