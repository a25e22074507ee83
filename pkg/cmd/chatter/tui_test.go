package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "charm.land/bubbletea/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBackend records calls and answers from its fields. Each joined room
// is a fakeRoom whose events come from its own channel.
type fakeBackend struct {
	mu       sync.Mutex
	calls    []string
	loginErr error
	sendErrs []error // returned by the next Sends, in order
	rooms    []*fakeRoom
	// names are the rooms' names by code; "general" for any other.
	names map[string]string
}

type fakeRoom struct {
	be     *fakeBackend
	code   string
	events chan client.Event
	left   chan struct{}
	once   sync.Once
}

func (f *fakeBackend) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
}

func (f *fakeBackend) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.calls...)
}

func (f *fakeBackend) CreateAccount(_ context.Context, name, _ string) (client.Account, error) {
	f.record("register " + name)
	return client.Account{UserName: name}, nil
}

func (f *fakeBackend) LogIn(_ context.Context, name, _ string) (client.Credentials, error) {
	f.record("login " + name)
	if f.loginErr != nil {
		return client.Credentials{}, f.loginErr
	}
	return client.Credentials{UserName: name, Token: "t"}, nil
}

func (f *fakeBackend) CreateChatRoom(_ context.Context, name, password string) (string, error) {
	f.record("create " + name + " " + password)
	return "CODE42", nil
}

func (f *fakeBackend) JoinRoom(_ context.Context, code, _ string) (roomHandle, *client.Room, error) {
	f.record("join " + code)
	r := &fakeRoom{be: f, code: code, events: make(chan client.Event, 64), left: make(chan struct{})}
	f.mu.Lock()
	f.rooms = append(f.rooms, r)
	name, ok := f.names[code]
	f.mu.Unlock()
	if !ok {
		name = "general"
	}
	return r, &client.Room{ShortCode: code, Name: name, Users: []client.User{{Name: "alice", Streams: 1}}}, nil
}

func (r *fakeRoom) Send(_ context.Context, body string) (string, error) {
	r.be.record("send " + r.code + " " + body)
	r.be.mu.Lock()
	defer r.be.mu.Unlock()
	if len(r.be.sendErrs) > 0 {
		err := r.be.sendErrs[0]
		r.be.sendErrs = r.be.sendErrs[1:]
		if err != nil {
			return "", err
		}
	}
	return "id", nil
}

func (r *fakeRoom) Receive(ctx context.Context) (client.Event, error) {
	select {
	case ev := <-r.events:
		return ev, nil
	case <-r.left:
		return nil, client.ErrDisconnected
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *fakeRoom) Leave(context.Context) error {
	r.be.record("leave " + r.code)
	r.once.Do(func() { close(r.left) })
	return nil
}

// Keys as the terminal sends them.
var (
	keyEnter = tea.KeyPressMsg{Code: tea.KeyEnter}
	keyTab   = tea.KeyPressMsg{Code: tea.KeyTab}
	keyEsc   = tea.KeyPressMsg{Code: tea.KeyEscape}
	keyCtrlC = tea.KeyPressMsg{Code: 'c', Mod: tea.ModCtrl}
	keyCtrlR = tea.KeyPressMsg{Code: 'r', Mod: tea.ModCtrl}
	keyCtrlN = tea.KeyPressMsg{Code: 'n', Mod: tea.ModCtrl}
)

func typeText(m *model, s string) {
	for _, r := range s {
		m.Update(tea.KeyPressMsg{Code: r, Text: string(r)})
	}
}

func press(m *model, k tea.KeyPressMsg) tea.Cmd {
	_, cmd := m.Update(k)
	return cmd
}

// runCmd executes a command the way the bubbletea runtime would, batches
// included, and returns the first message that is not the cursor's or a
// terminal query's.
func runCmd(t *testing.T, cmd tea.Cmd) tea.Msg {
	t.Helper()
	require.NotNil(t, cmd)
	for _, msg := range expand(cmd) {
		switch msg.(type) {
		case tea.BatchMsg, nil:
		default:
			if isModelMsg(msg) {
				return msg
			}
		}
	}
	t.Fatal("the command produced no message for the model")
	return nil
}

// expand runs cmd and the commands of the batches it returns, except those
// that would block (the cursor's blink timer).
func expand(cmd tea.Cmd) []tea.Msg {
	if cmd == nil {
		return nil
	}
	msg := cmd()
	if b, ok := msg.(tea.BatchMsg); ok {
		var out []tea.Msg
		for _, c := range b {
			out = append(out, expand(c)...)
		}
		return out
	}
	return []tea.Msg{msg}
}

func isModelMsg(msg tea.Msg) bool {
	switch msg.(type) {
	case loggedInMsg, joinedMsg, errMsg, eventMsg, sessionEndMsg, sentMsg, leftMsg, tea.QuitMsg:
		return true
	}
	return false
}

// view is what the terminal shows, without colours.
func view(m *model) string { return ansi.Strip(m.View().Content) }

// logIn brings a new model to the room form as alice.
func logIn(t *testing.T, be *fakeBackend, width, height int) *model {
	t.Helper()
	m := newModel(context.Background(), be, "alice")
	m.Update(tea.WindowSizeMsg{Width: width, Height: height})
	typeText(m, "secret")
	m.Update(runCmd(t, press(m, keyEnter)))
	require.Contains(t, view(m), "Logged in as alice")
	return m
}

// joinRoom joins code from the room form and returns the room.
func joinRoom(t *testing.T, m *model, be *fakeBackend, code string) *fakeRoom {
	t.Helper()
	typeText(m, code)
	press(m, keyTab)
	typeText(m, "pw")
	m.Update(runCmd(t, press(m, keyEnter)))
	require.NotNil(t, m.current(), view(m))
	be.mu.Lock()
	defer be.mu.Unlock()
	return be.rooms[len(be.rooms)-1]
}

// receive waits for the room's next event through the model's receive
// command and hands it to the model.
func receive(t *testing.T, m *model) {
	t.Helper()
	m.Update(m.receive(m.current())())
}

func TestTUIRegisterCreateAndChat(t *testing.T) {
	be := &fakeBackend{}
	m := newModel(context.Background(), be, "")
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})

	typeText(m, "alice")
	press(m, keyTab)
	typeText(m, "secret")
	press(m, keyCtrlR)
	assert.Contains(t, view(m), "register")
	assert.NotContains(t, view(m), "secret", "the password is masked")
	press(m, keyEnter) // to the second password field
	typeText(m, "secreT")
	press(m, keyEnter)
	assert.Contains(t, view(m), "the two passwords differ", "registering asks for the password twice")
	assert.Empty(t, be.recorded())
	for range len("secreT") {
		m.Update(tea.KeyPressMsg{Code: tea.KeyBackspace})
	}
	typeText(m, "secret")
	m.Update(runCmd(t, press(m, keyEnter)))
	assert.Equal(t, []string{"register alice", "login alice"}, be.recorded())
	assert.Contains(t, view(m), "Logged in as alice")

	press(m, keyCtrlN)
	assert.Contains(t, view(m), "create a room")
	typeText(m, "general")
	press(m, keyEnter)
	typeText(m, "pw")
	press(m, keyEnter)
	typeText(m, "pX")
	press(m, keyEnter)
	assert.Contains(t, view(m), "the two passwords differ", "creating a room asks for its password twice")
	m.Update(tea.KeyPressMsg{Code: tea.KeyBackspace})
	typeText(m, "w")
	msg := runCmd(t, press(m, keyEnter))
	require.IsType(t, joinedMsg{}, msg)
	assert.Equal(t, []string{"create general pw", "join CODE42"}, be.recorded()[2:])
	m.Update(msg)
	v := view(m)
	assert.Contains(t, v, "general (CODE42)")
	assert.Contains(t, v, "online (1)")

	room := be.rooms[0]
	room.events <- &client.Presence{Kind: client.Joined, User: "bob"}
	receive(t, m)
	room.events <- &client.Message{Sender: "bob", Body: "hello alice", SentAt: time.Now()}
	receive(t, m)
	v = view(m)
	assert.Contains(t, v, "bob joined")
	assert.Contains(t, v, "hello alice")
	assert.Contains(t, v, "online (2)")

	typeText(m, "hi bob")
	assert.IsType(t, sentMsg{}, runCmd(t, press(m, keyEnter)))
	assert.Equal(t, "send CODE42 hi bob", be.recorded()[len(be.recorded())-1])
}

// Esc leaves the room and returns to the room form, still logged in;
// the room left says nothing more, and another one can be joined.
// Ctrl-C leaves the room and quits.
func TestTUIEscLeavesTheRoomCtrlCQuits(t *testing.T) {
	be := &fakeBackend{}
	m := logIn(t, be, 80, 24)
	first := joinRoom(t, m, be, "AAAAAA")
	pending := m.receive(m.current()) // the receive in flight when Esc comes

	cmd := press(m, keyEsc)
	assert.Nil(t, m.current())
	v := view(m)
	assert.Contains(t, v, "Logged in as alice — join a room", "back at the room form")
	assert.Contains(t, v, "left general (AAAAAA)")
	assert.IsType(t, leftMsg{}, runCmd(t, cmd))
	assert.Contains(t, be.recorded(), "leave AAAAAA")
	_, next := m.Update(pending())
	assert.Nil(t, next, "the room left is not listened to any more")
	_, next = m.Update(eventMsg{room: 1, ev: &client.Message{Sender: "bob", Body: "too late"}})
	assert.Nil(t, next)
	select {
	case <-first.left:
	default:
		t.Fatal("the room was not left")
	}

	joinRoom(t, m, be, "BBBBBB")
	assert.Contains(t, view(m), "general (BBBBBB)")
	cmd = press(m, keyCtrlC)
	assert.IsType(t, tea.QuitMsg{}, runCmd(t, cmd), "Ctrl-C quits")
	assert.Equal(t, "leave BBBBBB", be.recorded()[len(be.recorded())-1], "after leaving the room")

	// On the forms, Esc quits from the login form only.
	m = newModel(context.Background(), be, "")
	assert.IsType(t, tea.QuitMsg{}, runCmd(t, press(m, keyEsc)))
	m = logIn(t, be, 80, 24)
	assert.Nil(t, press(m, keyEsc), "Esc on the room form does nothing")
	assert.Contains(t, view(m), "join a room")
}

// Long lines, long words and long errors are wrapped at the terminal's
// width, never cut; so is the room list, a tab to a line if need be.
func TestTUIWrapsLongLines(t *testing.T) {
	be := &fakeBackend{sendErrs: []error{&client.Error{Kind: client.ErrInvalidArgument,
		Message: "message body is 5000 bytes, more than the 4096 the room accepts; shorten it and send it again please"}},
		names: map[string]string{"LLLLLL": "the-room-with-the-longest-name"}}
	const width = 60
	m := logIn(t, be, width, 40)
	joinRoom(t, m, be, "AAAAAA")
	press(m, keyCtrlN)
	room := joinRoom(t, m, be, "LLLLLL")

	words := strings.Fields(strings.Repeat("lorem ipsum dolor sit amet consectetur ", 8) + "THE-END")
	long := strings.Join(words, " ")
	url := "https://example.com/" + strings.Repeat("x", 90) + "/tail"
	room.events <- &client.Message{Sender: "bob", Body: long, SentAt: time.Now()}
	receive(t, m)
	room.events <- &client.Message{Sender: "bob", Body: url, SentAt: time.Now()}
	receive(t, m)
	typeText(m, "x")
	m.Update(runCmd(t, press(m, keyEnter)))

	v := view(m)
	for _, l := range strings.Split(v, "\n") {
		assert.LessOrEqual(t, ansi.StringWidth(l), width, "line wider than the terminal: %q", l)
	}
	pane := messagesPane(v, width-usersWidth-1)
	assert.Contains(t, pane, strings.Join(words, ""), "every word of the message is shown, in order")
	assert.Contains(t, pane, strings.TrimPrefix(url, "https://"), "a word longer than the pane is broken, not cut")
	assert.Contains(t, strings.Join(strings.Fields(v), ""), "shortenitandsenditagainplease", "the error is shown whole")
	lines := strings.Split(v, "\n")
	assert.Equal(t, "1 general (AAAAAA)", strings.TrimSpace(lines[0]), "the two tabs do not fit a line")
	assert.Equal(t, "2 the-room-with-the-longest-name (LLLLLL)", strings.TrimSpace(lines[1]))

	// Narrower: wrapped again.
	m.Update(tea.WindowSizeMsg{Width: 40, Height: 60})
	v = view(m)
	for _, l := range strings.Split(v, "\n") {
		assert.LessOrEqual(t, ansi.StringWidth(l), 40, "line wider than the terminal: %q", l)
	}
	assert.Contains(t, messagesPane(v, 40-usersWidth-1), "THE-END")
	assert.Contains(t, v, "2 the-room-with-the-longest-name (LLLL…", "a tab wider than the terminal is cut")
}

// messagesPane returns the text of the messages pane of a chat screen, its
// lines joined without spaces, so that wrapped text reads as one.
func messagesPane(v string, width int) string {
	var b strings.Builder
	for _, l := range strings.Split(v, "\n") {
		l = ansi.Cut(l, 0, width)
		b.WriteString(strings.Join(strings.Fields(l), ""))
	}
	return b.String()
}

// While the stream is down the online list is greyed, and the status says
// why in words, not the transport's error.
func TestTUIGreysTheOnlineListWhileDisconnected(t *testing.T) {
	be := &fakeBackend{}
	m := logIn(t, be, 100, 24)
	room := joinRoom(t, m, be, "AAAAAA")
	room.events <- &client.Presence{Kind: client.Joined, User: "bob"}
	receive(t, m)

	grey := dimStyle.Render("bob")
	assert.NotContains(t, m.View().Content, grey, "connected: the list is not greyed")
	assert.Contains(t, m.View().Content, "bob")

	room.events <- &client.Connection{State: client.Reconnecting, Attempt: 2, Retry: 5 * time.Second,
		Err: &client.Error{Kind: client.ErrUnavailable, Message: `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:5050: connect: connection refused"`}}
	receive(t, m)
	assert.Contains(t, m.View().Content, grey, "reconnecting: the list is greyed")
	v := view(m)
	assert.Contains(t, v, "chat service unreachable, retrying in 5s")
	assert.NotContains(t, v, "transport")

	room.events <- &client.Connection{State: client.Connected, Users: []client.User{{Name: "alice"}, {Name: "bob"}}}
	receive(t, m)
	assert.NotContains(t, m.View().Content, grey, "reconnected: no longer greyed")
	assert.Contains(t, view(m), "connected")

	m.Update(sessionEndMsg{room: m.current().id, err: client.ErrRoomDeleted})
	assert.Contains(t, m.View().Content, grey, "the session ended: greyed")
	assert.Contains(t, view(m), "the room was deleted")
}

// Lines typed quickly go out in the order typed: one Send at a time.
func TestTUISendsInOrder(t *testing.T) {
	be := &fakeBackend{}
	m := logIn(t, be, 80, 24)
	joinRoom(t, m, be, "C")
	typeText(m, "one")
	first := press(m, keyEnter)
	typeText(m, "two")
	assert.Nil(t, press(m, keyEnter), "two waits for one")
	typeText(m, "three")
	assert.Nil(t, press(m, keyEnter), "three waits too")
	_, second := m.Update(runCmd(t, first))
	_, third := m.Update(runCmd(t, second))
	_, last := m.Update(runCmd(t, third))
	assert.Nil(t, last, "the outbox is empty")
	assert.Equal(t, []string{"send C one", "send C two", "send C three"}, be.recorded()[2:])
}

// A failed Send shows its error until the next one succeeds.
func TestTUISendErrorCleared(t *testing.T) {
	be := &fakeBackend{sendErrs: []error{&client.Error{Kind: client.ErrUnavailable, Message: "down"}}}
	m := logIn(t, be, 80, 24)
	joinRoom(t, m, be, "C")
	typeText(m, "one")
	m.Update(runCmd(t, press(m, keyEnter)))
	assert.Contains(t, view(m), "down")
	typeText(m, "two")
	m.Update(runCmd(t, press(m, keyEnter)))
	assert.NotContains(t, view(m), "down")
}

func TestTUILoginErrorShown(t *testing.T) {
	be := &fakeBackend{loginErr: &client.Error{Kind: client.ErrUnauthenticated, Message: "invalid user name or password"}}
	m := newModel(context.Background(), be, "alice")
	typeText(m, "wrong") // focus starts on the password when the name is known
	m.Update(runCmd(t, press(m, keyEnter)))
	assert.Contains(t, view(m), "invalid user name or password")
	assert.Contains(t, view(m), "log in", "still on the login screen")
}

// The backlog shows on join: messages from before it are faint and marked
// earlier; live ones are not.
func TestTUIShowsTheBacklog(t *testing.T) {
	be := &fakeBackend{}
	m := newModel(context.Background(), be, "alice")
	m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	room := &fakeRoom{be: be, code: "C", events: make(chan client.Event, 4), left: make(chan struct{})}
	_, cmd := m.Update(joinedMsg{handle: room, room: &client.Room{ShortCode: "C", Name: "n", Backlog: 1}})
	require.NotNil(t, cmd, "joining starts receiving")
	room.events <- &client.Message{Sender: "bob", Body: "old news", Earlier: true, SentAt: time.Now()}
	receive(t, m)
	room.events <- &client.Message{Sender: "bob", Body: "fresh", SentAt: time.Now()}
	receive(t, m)
	v := view(m)
	assert.Contains(t, v, "1 earlier message follows")
	line := func(s string) string {
		for _, l := range strings.Split(v, "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		t.Fatalf("%q not shown in\n%s", s, v)
		return ""
	}
	assert.Contains(t, line("old news"), "earlier bob: old news")
	assert.NotContains(t, line("fresh"), "earlier")
	assert.Contains(t, line("fresh"), "bob: fresh")
}

func TestTUISessionEnd(t *testing.T) {
	be := &fakeBackend{}
	m := logIn(t, be, 80, 24)
	joinRoom(t, m, be, "C")
	m.Update(sessionEndMsg{room: m.current().id, err: client.ErrRoomDeleted})
	assert.Contains(t, view(m), "the room was deleted")
	typeText(m, "x")
	assert.Nil(t, press(m, keyEnter), "nothing is sent once the session ended")
	assert.IsType(t, tea.QuitMsg{}, runCmd(t, press(m, keyCtrlC)))

	// Esc from an ended room goes back to the room form.
	m = logIn(t, be, 80, 24)
	joinRoom(t, m, be, "D")
	m.Update(sessionEndMsg{room: m.current().id, err: client.ErrRoomDeleted})
	press(m, keyEsc)
	assert.Contains(t, view(m), "join a room")
	for _, c := range be.recorded() {
		assert.False(t, strings.HasPrefix(c, "send") || strings.HasPrefix(c, "leave"), c)
	}
}

func TestExplain(t *testing.T) {
	assert.Equal(t, "left the room", explain(client.ErrDisconnected))
	assert.Equal(t, "the room was deleted", explain(errors.Join(errors.New("x"), client.ErrRoomDeleted)))
}
