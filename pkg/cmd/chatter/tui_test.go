package main

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/grpcchatter/grpcchatter/pkg/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fakeBackend records calls and answers from its fields.
type fakeBackend struct {
	mu        sync.Mutex
	calls     []string
	loginErr  error
	sendErrs  []error // returned by the next Sends, in order
	events    chan client.Event
	createdAs string
}

func (f *fakeBackend) record(s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, s)
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

func (f *fakeBackend) CreateChatRoom(_ context.Context, name, _ string) (string, error) {
	f.record("create " + name)
	return "CODE42", nil
}

func (f *fakeBackend) JoinChatRoom(_ context.Context, code, _ string) (*client.Room, error) {
	f.record("join " + code)
	return &client.Room{ShortCode: code, Name: "general", Users: []client.User{{Name: "alice", Streams: 1}}}, nil
}

func (f *fakeBackend) Send(_ context.Context, body string) (string, error) {
	f.record("send " + body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sendErrs) > 0 {
		err := f.sendErrs[0]
		f.sendErrs = f.sendErrs[1:]
		if err != nil {
			return "", err
		}
	}
	return "id", nil
}

func (f *fakeBackend) Receive(ctx context.Context) (client.Event, error) {
	select {
	case ev := <-f.events:
		return ev, nil
	case <-ctx.Done():
		return nil, client.ErrDisconnected
	}
}

func (f *fakeBackend) Disconnect(context.Context) error {
	f.record("disconnect")
	return nil
}

func typeText(t *testing.T, m tea.Model, s string) tea.Model {
	t.Helper()
	for _, r := range s {
		m, _ = m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune{r}})
	}
	return m
}

func key(m tea.Model, k tea.KeyType) (tea.Model, tea.Cmd) {
	return m.Update(tea.KeyMsg{Type: k})
}

// run executes a command the way the bubbletea runtime would, one level
// deep, and returns its message.
func runCmd(t *testing.T, cmd tea.Cmd) tea.Msg {
	t.Helper()
	require.NotNil(t, cmd)
	return cmd()
}

func TestTUIRegisterLogInCreateAndChat(t *testing.T) {
	be := &fakeBackend{events: make(chan client.Event, 4)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var m tea.Model = newModel(ctx, be, "")
	m, _ = m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})

	m = typeText(t, m, "alice")
	m, _ = key(m, tea.KeyTab)
	m = typeText(t, m, "secret")
	m, _ = key(m, tea.KeyCtrlR)
	assert.Contains(t, m.View(), "register")
	assert.NotContains(t, m.View(), "secret", "the password is masked")
	m, cmd := key(m, tea.KeyEnter)
	m, _ = m.Update(runCmd(t, cmd))
	assert.Equal(t, []string{"register alice", "login alice"}, be.calls)
	assert.Contains(t, m.View(), "Logged in as alice")

	m, _ = key(m, tea.KeyCtrlN)
	m = typeText(t, m, "general")
	m, _ = key(m, tea.KeyEnter) // to the password field
	m = typeText(t, m, "pw")
	m, cmd = key(m, tea.KeyEnter)
	msg := runCmd(t, cmd)
	require.IsType(t, joinedMsg{}, msg)
	assert.Equal(t, []string{"create general", "join CODE42"}, be.calls[2:])
	m, recv := m.Update(msg)
	view := m.View()
	assert.Contains(t, view, "general (CODE42)")
	assert.Contains(t, view, "online (1)")

	// Events arrive through the receive command.
	be.events <- &client.Presence{Kind: client.Joined, User: "bob"}
	m, recv = m.Update(runCmd(t, recv))
	be.events <- &client.Message{Sender: "bob", Body: "hello alice", SentAt: time.Now()}
	m, recv = m.Update(runCmd(t, recv))
	view = m.View()
	assert.Contains(t, view, "bob joined")
	assert.Contains(t, view, "hello alice")
	assert.Contains(t, view, "online (2)")

	be.events <- &client.Connection{State: client.Reconnecting, Err: errors.New("boom")}
	m, recv = m.Update(runCmd(t, recv))
	assert.Contains(t, m.View(), "reconnecting (attempt 1)")
	be.events <- &client.Connection{State: client.Connected, Users: []client.User{{Name: "alice"}}}
	m, recv = m.Update(runCmd(t, recv))
	assert.Contains(t, m.View(), "connected")
	assert.Contains(t, m.View(), "online (1)")
	be.events <- &client.Presence{Kind: client.Left, User: "alice"}
	m, _ = m.Update(runCmd(t, recv))
	assert.Contains(t, m.View(), "online (0)")

	m = typeText(t, m, "hi bob")
	m, cmd = key(m, tea.KeyEnter)
	assert.IsType(t, sentMsg{}, runCmd(t, cmd))
	assert.Equal(t, "send hi bob", be.calls[len(be.calls)-1])

	_, cmd = key(m, tea.KeyEsc)
	require.NotNil(t, cmd, "Esc leaves")
	assert.IsType(t, tea.QuitMsg{}, cmd(), "and then quits")
	assert.Equal(t, "disconnect", be.calls[len(be.calls)-1], "Esc leaves the room before quitting")
}

// chatting returns a model on the chat screen.
func chatting(t *testing.T, be *fakeBackend) tea.Model {
	t.Helper()
	var m tea.Model = newModel(context.Background(), be, "alice")
	m, _ = m.Update(joinedMsg{room: &client.Room{ShortCode: "C", Name: "n"}})
	return m
}

// Lines typed quickly go out in the order typed: one Send at a time.
func TestTUISendsInOrder(t *testing.T) {
	be := &fakeBackend{}
	m := chatting(t, be)
	m = typeText(t, m, "one")
	m, first := key(m, tea.KeyEnter)
	m = typeText(t, m, "two")
	m, cmd := key(m, tea.KeyEnter)
	assert.Nil(t, cmd, "two waits for one")
	m = typeText(t, m, "three")
	m, cmd = key(m, tea.KeyEnter)
	assert.Nil(t, cmd, "three waits too")
	m, second := m.Update(runCmd(t, first))
	m, third := m.Update(runCmd(t, second))
	_, last := m.Update(runCmd(t, third))
	assert.Nil(t, last, "the outbox is empty")
	assert.Equal(t, []string{"send one", "send two", "send three"}, be.calls)
}

// A failed Send shows its error until the next one succeeds.
func TestTUISendErrorCleared(t *testing.T) {
	be := &fakeBackend{sendErrs: []error{&client.Error{Kind: client.ErrUnavailable, Message: "down"}}}
	m := chatting(t, be)
	m = typeText(t, m, "one")
	m, cmd := key(m, tea.KeyEnter)
	m, _ = m.Update(runCmd(t, cmd))
	assert.Contains(t, m.View(), "down")
	m = typeText(t, m, "two")
	m, cmd = key(m, tea.KeyEnter)
	m, _ = m.Update(runCmd(t, cmd))
	assert.NotContains(t, m.View(), "down")
}

func TestTUILoginErrorShown(t *testing.T) {
	be := &fakeBackend{loginErr: &client.Error{Kind: client.ErrUnauthenticated, Message: "invalid user name or password"}}
	var m tea.Model = newModel(context.Background(), be, "alice")
	m = typeText(t, m, "wrong") // focus starts on the password when the name is known
	m, cmd := key(m, tea.KeyEnter)
	m, _ = m.Update(runCmd(t, cmd))
	assert.Contains(t, m.View(), "invalid user name or password")
	assert.Contains(t, m.View(), "log in", "still on the login screen")
}

// Messages from before the join are shown faint and marked earlier; live
// ones are not.
func TestTUIEarlierMessages(t *testing.T) {
	be := &fakeBackend{}
	var m tea.Model = newModel(context.Background(), be, "alice")
	m, _ = m.Update(tea.WindowSizeMsg{Width: 100, Height: 30})
	m, _ = m.Update(joinedMsg{room: &client.Room{ShortCode: "C", Name: "n", Backlog: 1}})
	m, _ = m.Update(eventMsg{&client.Message{Sender: "bob", Body: "old news", Earlier: true, SentAt: time.Now()}})
	m, _ = m.Update(eventMsg{&client.Message{Sender: "bob", Body: "fresh", SentAt: time.Now()}})
	view := m.View()
	assert.Contains(t, view, "1 earlier message follows")
	line := func(s string) string {
		for _, l := range strings.Split(view, "\n") {
			if strings.Contains(l, s) {
				return l
			}
		}
		t.Fatalf("%q not shown in\n%s", s, view)
		return ""
	}
	assert.Contains(t, line("old news"), "earlier bob: old news")
	assert.NotContains(t, line("fresh"), "earlier")
	assert.Contains(t, line("fresh"), "bob: fresh")
}

func TestTUISessionEnd(t *testing.T) {
	be := &fakeBackend{}
	m := chatting(t, be)
	m, _ = m.Update(sessionEndMsg{err: client.ErrRoomDeleted})
	assert.Contains(t, m.View(), "the room was deleted")
	m = typeText(t, m, "x")
	_, cmd := key(m, tea.KeyEnter)
	assert.Nil(t, cmd, "nothing is sent once the session ended")
	_, cmd = key(m, tea.KeyCtrlC)
	assert.NotNil(t, cmd)
	assert.False(t, strings.Contains(strings.Join(be.calls, ","), "send"))
}
