package main

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/charmbracelet/bubbles/textinput"
	"github.com/charmbracelet/bubbles/viewport"
	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// backend is what the full-screen client needs of the SDK; tests fake it.
type backend interface {
	CreateAccount(ctx context.Context, userName, password string) (client.Account, error)
	LogIn(ctx context.Context, userName, password string) (client.Credentials, error)
	CreateChatRoom(ctx context.Context, name, password string) (string, error)
	JoinChatRoom(ctx context.Context, shortCode, password string) (*client.Room, error)
	Send(ctx context.Context, body string) (string, error)
	Receive(ctx context.Context) (client.Event, error)
	Disconnect(ctx context.Context) error
}

// tui runs the full-screen client until the user quits.
func (a *app) tui(ctx context.Context) error {
	c, err := a.newClient()
	if err != nil {
		return err
	}
	defer c.Close()
	m := newModel(ctx, c, a.user)
	_, err = tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(ctx)).Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

type screen int

const (
	screenLogin screen = iota
	screenRoom
	screenChat
)

// Messages the model's commands report back with.
type (
	loggedInMsg   struct{ creds client.Credentials }
	joinedMsg     struct{ room *client.Room }
	eventMsg      struct{ ev client.Event }
	sessionEndMsg struct{ err error }
	errMsg        struct{ err error }
	// sentMsg reports the head of the outbox handed to the room, or why it
	// could not be.
	sentMsg struct{ err error }
)

const usersWidth = 22

var (
	titleStyle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12"))
	errorStyle  = lipgloss.NewStyle().Foreground(lipgloss.Color("9"))
	dimStyle    = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
	senderStyle = lipgloss.NewStyle().Bold(true)
	usersStyle  = lipgloss.NewStyle().Border(lipgloss.NormalBorder(), false, false, false, true).PaddingLeft(1)
)

// model is the full-screen client. It never blocks: every call to the
// service runs in a tea.Cmd whose result comes back as a message.
type model struct {
	ctx context.Context
	be  backend

	screen   screen
	width    int
	height   int
	busy     bool
	errText  string
	register bool // login screen: create the account first
	create   bool // room screen: create the room first

	fields []textinput.Model
	focus  int

	user  string
	room  *client.Room
	lines []string
	// outbox holds the lines typed and not yet handed to the room, sent one
	// at a time so that they arrive in the order typed.
	outbox []string
	users  map[string]int
	status string
	ended  bool
	view   viewport.Model
	input  textinput.Model
}

func newModel(ctx context.Context, be backend, user string) model {
	m := model{ctx: ctx, be: be, width: 80, height: 24, users: map[string]int{}}
	m.setFields("user name", "password")
	m.fields[0].SetValue(user)
	if user != "" {
		m.focusField(1)
	}
	m.input = textinput.New()
	m.input.Placeholder = "type a message, Enter to send"
	m.input.CharLimit = 4096
	m.view = viewport.New(80, 20)
	return m
}

func (m *model) setFields(labels ...string) {
	m.fields = make([]textinput.Model, len(labels))
	for i, l := range labels {
		ti := textinput.New()
		ti.Placeholder = l
		ti.Prompt = fmt.Sprintf("%-12s ", l+":")
		ti.CharLimit = 128
		if strings.Contains(l, "password") {
			ti.EchoMode = textinput.EchoPassword
		}
		m.fields[i] = ti
	}
	m.focusField(0)
}

func (m *model) focusField(i int) {
	m.focus = (i + len(m.fields)) % len(m.fields)
	for j := range m.fields {
		if j == m.focus {
			m.fields[j].Focus()
		} else {
			m.fields[j].Blur()
		}
	}
}

func (m model) Init() tea.Cmd { return textinput.Blink }

func (m model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		m.layout()
		return m, nil
	case tea.KeyMsg:
		switch msg.Type {
		case tea.KeyCtrlC, tea.KeyEsc:
			return m, m.quit()
		}
	case errMsg:
		m.busy = false
		m.errText = explain(msg.err)
		return m, nil
	case loggedInMsg:
		m.busy, m.errText = false, ""
		m.user = msg.creds.UserName
		m.screen = screenRoom
		m.create = false
		m.setFields("room code", "password")
		return m, nil
	case joinedMsg:
		m.busy, m.errText = false, ""
		m.screen = screenChat
		m.room = msg.room
		m.users = map[string]int{}
		for _, u := range msg.room.Users {
			m.users[u.Name] = u.Streams
		}
		m.status = "connected"
		m.addLine(dimStyle.Render(fmt.Sprintf("* joined %s (%s)%s", msg.room.Name, msg.room.ShortCode, earlierNote(msg.room.Backlog))))
		m.input.Focus()
		m.layout()
		return m, m.receive()
	case eventMsg:
		m.handleEvent(msg.ev)
		return m, m.receive()
	case sessionEndMsg:
		m.ended = true
		m.status = "disconnected: " + explain(msg.err)
		m.input.Blur()
		return m, nil
	case sentMsg:
		if msg.err != nil {
			m.errText = explain(fmt.Errorf("send: %w", msg.err))
		} else {
			m.errText = ""
		}
		if len(m.outbox) > 0 {
			m.outbox = m.outbox[1:]
		}
		return m, m.sendNext()
	}
	switch m.screen {
	case screenLogin, screenRoom:
		return m.updateForm(msg)
	default:
		return m.updateChat(msg)
	}
}

func (m model) quit() tea.Cmd {
	if m.screen != screenChat || m.ended {
		return tea.Quit
	}
	be := m.be
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = be.Disconnect(ctx)
		return tea.QuitMsg{}
	}
}

func (m model) updateForm(msg tea.Msg) (tea.Model, tea.Cmd) {
	if key, ok := msg.(tea.KeyMsg); ok {
		switch key.Type {
		case tea.KeyTab, tea.KeyDown:
			m.focusField(m.focus + 1)
			return m, nil
		case tea.KeyShiftTab, tea.KeyUp:
			m.focusField(m.focus - 1)
			return m, nil
		case tea.KeyCtrlR:
			if m.screen == screenLogin {
				m.register = !m.register
			}
			return m, nil
		case tea.KeyCtrlN:
			if m.screen == screenRoom {
				m.create = !m.create
				label := "room code"
				if m.create {
					label = "room name"
				}
				m.fields[0].Placeholder = label
				m.fields[0].Prompt = fmt.Sprintf("%-12s ", label+":")
			}
			return m, nil
		case tea.KeyEnter:
			if m.focus < len(m.fields)-1 {
				m.focusField(m.focus + 1)
				return m, nil
			}
			return m.submit()
		}
	}
	var cmd tea.Cmd
	m.fields[m.focus], cmd = m.fields[m.focus].Update(msg)
	return m, cmd
}

func (m model) submit() (tea.Model, tea.Cmd) {
	if m.busy {
		return m, nil
	}
	a, b := strings.TrimSpace(m.fields[0].Value()), m.fields[1].Value()
	if a == "" || b == "" {
		m.errText = "fill in both fields"
		return m, nil
	}
	m.busy, m.errText = true, ""
	ctx, be := m.ctx, m.be
	if m.screen == screenLogin {
		register := m.register
		return m, func() tea.Msg {
			if register {
				if _, err := be.CreateAccount(ctx, a, b); err != nil {
					return errMsg{fmt.Errorf("register: %w", err)}
				}
			}
			creds, err := be.LogIn(ctx, a, b)
			if err != nil {
				return errMsg{fmt.Errorf("log in: %w", err)}
			}
			return loggedInMsg{creds}
		}
	}
	create := m.create
	return m, func() tea.Msg {
		code := a
		if create {
			var err error
			if code, err = be.CreateChatRoom(ctx, a, b); err != nil {
				return errMsg{fmt.Errorf("create room: %w", err)}
			}
		}
		room, err := be.JoinChatRoom(ctx, code, b)
		if err != nil {
			return errMsg{fmt.Errorf("join room %s: %w", code, err)}
		}
		return joinedMsg{room}
	}
}

func (m model) updateChat(msg tea.Msg) (tea.Model, tea.Cmd) {
	if key, ok := msg.(tea.KeyMsg); ok {
		switch key.Type {
		case tea.KeyEnter:
			body := strings.TrimSpace(m.input.Value())
			if body == "" || m.ended {
				return m, nil
			}
			m.input.SetValue("")
			m.outbox = append(m.outbox, body)
			if len(m.outbox) > 1 {
				return m, nil // sent when those before it are
			}
			return m, m.sendNext()
		case tea.KeyPgUp, tea.KeyPgDown, tea.KeyCtrlU, tea.KeyCtrlD:
			var cmd tea.Cmd
			m.view, cmd = m.view.Update(msg)
			return m, cmd
		}
	}
	var cmd tea.Cmd
	m.input, cmd = m.input.Update(msg)
	return m, cmd
}

// sendNext hands the head of the outbox to the room; its sentMsg sends the
// next one.
func (m model) sendNext() tea.Cmd {
	if len(m.outbox) == 0 || m.ended {
		return nil
	}
	ctx, be, body := m.ctx, m.be, m.outbox[0]
	return func() tea.Msg {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := be.Send(sctx, body)
		return sentMsg{err}
	}
}

// receive waits for the next room event.
func (m model) receive() tea.Cmd {
	ctx, be := m.ctx, m.be
	return func() tea.Msg {
		ev, err := be.Receive(ctx)
		if err != nil {
			return sessionEndMsg{err}
		}
		return eventMsg{ev}
	}
}

func (m *model) handleEvent(ev client.Event) {
	switch ev := ev.(type) {
	case *client.Message:
		stamp := ev.SentAt.Local().Format("15:04")
		if ev.Earlier {
			// Sent before the join: the whole line faint, and marked so
			// for terminals without faint text.
			m.addLine(dimStyle.Render(fmt.Sprintf("%s earlier %s: %s", stamp, ev.Sender, ev.Body)))
			return
		}
		m.addLine(fmt.Sprintf("%s %s %s", dimStyle.Render(stamp), senderStyle.Render(ev.Sender+":"), ev.Body))
	case *client.Presence:
		if ev.Kind == client.Joined {
			m.users[ev.User] = max(m.users[ev.User], 1)
		} else {
			delete(m.users, ev.User)
		}
		m.addLine(dimStyle.Render("* " + describeEvent(ev)))
	case *client.Connection:
		if ev.State == client.Reconnecting {
			m.status = fmt.Sprintf("reconnecting (attempt %d): %v", ev.Attempt+1, ev.Err)
		} else {
			m.status = "connected"
			m.users = map[string]int{}
			for _, u := range ev.Users {
				m.users[u.Name] = u.Streams
			}
		}
	case *client.Gap, *client.RoomDeleted, *client.SendFailed:
		m.addLine(dimStyle.Render("* " + describeEvent(ev)))
	}
}

func (m *model) addLine(s string) {
	atBottom := m.view.AtBottom()
	m.lines = append(m.lines, s)
	m.view.SetContent(strings.Join(m.lines, "\n"))
	if atBottom || len(m.lines) <= m.view.Height {
		m.view.GotoBottom()
	}
}

func (m *model) layout() {
	m.view.Width = max(m.width-usersWidth-1, 10)
	m.view.Height = max(m.height-4, 3) // title, input, status, error
	m.input.Width = max(m.width-4, 10)
	m.view.SetContent(strings.Join(m.lines, "\n"))
	m.view.GotoBottom()
}

func (m model) View() string {
	var b strings.Builder
	switch m.screen {
	case screenLogin, screenRoom:
		title, help := "GRPCChatter — log in", "Enter: log in · Ctrl-R: register instead · Tab: next field · Esc: quit"
		if m.register {
			title, help = "GRPCChatter — register", "Enter: register and log in · Ctrl-R: log in instead · Esc: quit"
		}
		if m.screen == screenRoom {
			title, help = "Logged in as "+m.user+" — join a room", "Enter: join · Ctrl-N: create a room instead · Esc: quit"
			if m.create {
				title, help = "Logged in as "+m.user+" — create a room", "Enter: create and join · Ctrl-N: join instead · Esc: quit"
			}
		}
		b.WriteString(titleStyle.Render(title) + "\n\n")
		for _, f := range m.fields {
			b.WriteString(f.View() + "\n")
		}
		b.WriteString("\n" + dimStyle.Render(help) + "\n")
		if m.busy {
			b.WriteString("working…\n")
		}
	case screenChat:
		b.WriteString(titleStyle.Render(fmt.Sprintf("%s (%s) — %s", m.room.Name, m.room.ShortCode, m.user)) + "\n")
		b.WriteString(lipgloss.JoinHorizontal(lipgloss.Top, lipgloss.NewStyle().Width(m.view.Width).Render(m.view.View()), m.usersView()) + "\n")
		b.WriteString(m.input.View() + "\n")
		b.WriteString(dimStyle.Render(m.status+" · PgUp/PgDn: scroll · Esc: leave") + "\n")
	}
	if m.errText != "" {
		b.WriteString(errorStyle.Render(m.errText))
	}
	return b.String()
}

func (m model) usersView() string {
	names := make([]string, 0, len(m.users))
	for n := range m.users {
		names = append(names, n)
	}
	sort.Strings(names)
	lines := []string{senderStyle.Render(fmt.Sprintf("online (%d)", len(names)))}
	lines = append(lines, names...)
	return usersStyle.Height(m.view.Height).Width(usersWidth - 2).Render(strings.Join(lines, "\n"))
}

// explain turns an SDK error into a short sentence for the status line.
func explain(err error) string {
	switch {
	case errors.Is(err, client.ErrDisconnected):
		return "left the room"
	case errors.Is(err, client.ErrRoomDeleted):
		return "the room was deleted"
	}
	return describe(err)
}
