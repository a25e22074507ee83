package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// The full-screen client, on bubbletea v2. Neither bubbletea v2 nor
// lipgloss v2 asks the terminal anything when their packages load or a
// style renders; the program's own queries (the background colour, asked
// once it runs) are answered or not without holding anything up. So the
// other commands never wait on a terminal, and neither does this one.

// backend is what the full-screen client needs of the SDK; tests fake it.
type backend interface {
	CreateAccount(ctx context.Context, userName, password string) (client.Account, error)
	LogIn(ctx context.Context, userName, password string) (client.Credentials, error)
	CreateChatRoom(ctx context.Context, name, password string) (string, error)
	// JoinRoom joins a room and returns the handle its view talks to.
	JoinRoom(ctx context.Context, shortCode, password string) (roomHandle, *client.Room, error)
}

// roomHandle is one joined room: what a room view sends, receives and
// leaves through.
type roomHandle interface {
	Send(ctx context.Context, body string) (string, error)
	Receive(ctx context.Context) (client.Event, error)
	Leave(ctx context.Context) error
}

// sdkBackend is the backend over a *client.Client, which holds one room at
// a time: a room's handle is the client itself, and leaving disconnects.
type sdkBackend struct{ *client.Client }

func (b sdkBackend) JoinRoom(ctx context.Context, shortCode, password string) (roomHandle, *client.Room, error) {
	room, err := b.JoinChatRoom(ctx, shortCode, password)
	if err != nil {
		return nil, nil, err
	}
	return sdkRoom{b.Client}, room, nil
}

type sdkRoom struct{ c *client.Client }

func (r sdkRoom) Send(ctx context.Context, body string) (string, error) { return r.c.Send(ctx, body) }
func (r sdkRoom) Receive(ctx context.Context) (client.Event, error)     { return r.c.Receive(ctx) }
func (r sdkRoom) Leave(ctx context.Context) error                       { return r.c.Disconnect(ctx) }

// tui runs the full-screen client until the user quits.
func (a *app) tui(ctx context.Context) error {
	c, err := a.newClient()
	if err != nil {
		return err
	}
	defer c.Close()
	m := newModel(ctx, sdkBackend{c}, a.user)
	_, err = tea.NewProgram(m, tea.WithContext(ctx), tea.WithInput(a.io.in), tea.WithOutput(a.io.out)).Run()
	if errors.Is(err, tea.ErrProgramKilled) || errors.Is(err, tea.ErrInterrupted) || errors.Is(err, context.Canceled) {
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

// Messages the model's commands report back with. Those about a room
// carry its view's id: a room left meanwhile is no longer listened to.
type (
	loggedInMsg struct{ creds client.Credentials }
	joinedMsg   struct {
		handle roomHandle
		room   *client.Room
	}
	errMsg   struct{ err error }
	eventMsg struct {
		room int
		ev   client.Event
	}
	sessionEndMsg struct {
		room int
		err  error
	}
	// sentMsg reports the head of a room's outbox handed to the room, or
	// why it could not be.
	sentMsg struct {
		room int
		err  error
	}
	leftMsg struct {
		room int
		err  error
	}
)

var (
	titleStyle  = lipgloss.NewStyle().Bold(true).Foreground(lipgloss.Color("12"))
	errorStyle  = lipgloss.NewStyle().Foreground(lipgloss.Color("9"))
	dimStyle    = lipgloss.NewStyle().Foreground(lipgloss.Color("8"))
	senderStyle = lipgloss.NewStyle().Bold(true)
	usersStyle  = lipgloss.NewStyle().Border(lipgloss.NormalBorder(), false, false, false, true).PaddingLeft(1)
)

// model is the full-screen client. It never blocks: every call to the
// service runs in a tea.Cmd whose result comes back as a message.
//
// Rooms are views of their own, kept in a list with one of them shown;
// the client joins one room at a time for now (leaving with Esc returns
// to the room form), and several once the SDK holds several rooms.
type model struct {
	ctx context.Context
	be  backend

	screen  screen
	width   int
	height  int
	busy    bool
	errText string
	// note is a line for the room form, such as which room was just left.
	note string
	form form
	dark bool // the terminal's background, once it told

	user   string
	rooms  []*roomView
	active int
	nextID int
}

func newModel(ctx context.Context, be backend, user string) *model {
	m := &model{ctx: ctx, be: be, width: 80, height: 24, dark: true}
	m.form = loginForm(false, user, "")
	return m
}

func (m *model) Init() tea.Cmd {
	// Answered, if the terminal does, with a BackgroundColorMsg; nothing
	// waits for it.
	return tea.Batch(tea.RequestBackgroundColor, m.form.focusCmd())
}

// room returns the view of the room with id, or nil once it was left.
func (m *model) room(id int) *roomView {
	for _, r := range m.rooms {
		if r.id == id {
			return r
		}
	}
	return nil
}

// current is the room shown, or nil.
func (m *model) current() *roomView {
	if m.screen != screenChat || len(m.rooms) == 0 {
		return nil
	}
	return m.rooms[m.active]
}

func (m *model) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	cmd := m.update(msg)
	m.layout()
	return m, cmd
}

func (m *model) update(msg tea.Msg) tea.Cmd {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
		return nil
	case tea.BackgroundColorMsg:
		m.dark = msg.IsDark()
		m.form.restyle(m.dark)
		for _, r := range m.rooms {
			r.restyle(m.dark)
		}
		return nil
	case tea.KeyPressMsg:
		switch msg.String() {
		case "ctrl+c":
			return m.quit()
		case "esc":
			if r := m.current(); r != nil {
				return m.leave(r)
			}
			if m.screen == screenLogin {
				return tea.Quit
			}
			return nil
		}
	case errMsg:
		m.busy = false
		m.errText = explain(msg.err)
		return nil
	case loggedInMsg:
		m.busy, m.errText = false, ""
		m.user = msg.creds.UserName
		m.screen = screenRoom
		m.form = roomForm(false, "")
		m.form.restyle(m.dark)
		return m.form.focusCmd()
	case joinedMsg:
		m.busy, m.errText, m.note = false, "", ""
		m.nextID++
		r := newRoomView(m.nextID, msg.handle, msg.room, m.dark)
		m.rooms = append(m.rooms, r)
		m.active = len(m.rooms) - 1
		m.screen = screenChat
		return tea.Batch(m.receive(r), r.input.Focus())
	case eventMsg:
		r := m.room(msg.room)
		if r == nil {
			return nil // left meanwhile
		}
		r.apply(msg.ev)
		return m.receive(r)
	case sessionEndMsg:
		if r := m.room(msg.room); r != nil {
			r.end(msg.err)
		}
		return nil
	case sentMsg:
		r := m.room(msg.room)
		if r == nil {
			return nil
		}
		if msg.err != nil {
			m.errText = explain(fmt.Errorf("send: %w", msg.err))
		} else {
			m.errText = ""
		}
		if len(r.outbox) > 0 {
			r.outbox = r.outbox[1:]
		}
		return m.sendNext(r)
	case leftMsg:
		if msg.err != nil && m.screen != screenChat {
			m.errText = explain(fmt.Errorf("leaving the room: %w", msg.err))
		}
		return nil
	}
	if r := m.current(); r != nil {
		return m.updateChat(r, msg)
	}
	return m.updateForm(msg)
}

// leave leaves the room shown and goes back to the room form, or to the
// next room if others are open.
func (m *model) leave(r *roomView) tea.Cmd {
	for i, x := range m.rooms {
		if x == r {
			m.rooms = append(m.rooms[:i], m.rooms[i+1:]...)
			break
		}
	}
	m.errText = ""
	m.note = fmt.Sprintf("left %s (%s)", r.info.Name, r.info.ShortCode)
	if len(m.rooms) > 0 {
		m.active = min(m.active, len(m.rooms)-1)
	} else {
		m.screen = screenRoom
		m.form = roomForm(false, "")
		m.form.restyle(m.dark)
	}
	if r.ended {
		return m.form.focusCmd() // its session is over: nothing to leave
	}
	h, id := r.handle, r.id
	return tea.Batch(m.form.focusCmd(), func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return leftMsg{room: id, err: h.Leave(ctx)}
	})
}

// quit leaves every room, then ends the program.
func (m *model) quit() tea.Cmd {
	var open []roomHandle
	for _, r := range m.rooms {
		if !r.ended {
			open = append(open, r.handle)
		}
	}
	m.rooms = nil
	if len(open) == 0 {
		return tea.Quit
	}
	return func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		for _, h := range open {
			_ = h.Leave(ctx)
		}
		return tea.QuitMsg{}
	}
}

func (m *model) submit() tea.Cmd {
	if m.busy {
		return nil
	}
	vals, err := m.form.values()
	if err != nil {
		m.errText = err.Error()
		return nil
	}
	m.busy, m.errText = true, ""
	name, pw := vals[0], vals[1]
	ctx, be := m.ctx, m.be
	if m.screen == screenLogin {
		register := m.form.alt
		return func() tea.Msg {
			if register {
				if _, err := be.CreateAccount(ctx, name, pw); err != nil {
					return errMsg{fmt.Errorf("register: %w", err)}
				}
			}
			creds, err := be.LogIn(ctx, name, pw)
			if err != nil {
				return errMsg{fmt.Errorf("log in: %w", err)}
			}
			return loggedInMsg{creds}
		}
	}
	create := m.form.alt
	return func() tea.Msg {
		code := name
		if create {
			var err error
			if code, err = be.CreateChatRoom(ctx, name, pw); err != nil {
				return errMsg{fmt.Errorf("create room: %w", err)}
			}
		}
		h, room, err := be.JoinRoom(ctx, code, pw)
		if err != nil {
			return errMsg{fmt.Errorf("join room %s: %w", code, err)}
		}
		return joinedMsg{handle: h, room: room}
	}
}

// sendNext hands the head of r's outbox to the room; its sentMsg sends the
// next one.
func (m *model) sendNext(r *roomView) tea.Cmd {
	if len(r.outbox) == 0 || r.ended {
		return nil
	}
	ctx, h, id, body := m.ctx, r.handle, r.id, r.outbox[0]
	return func() tea.Msg {
		sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		_, err := h.Send(sctx, body)
		return sentMsg{room: id, err: err}
	}
}

// receive waits for r's next event.
func (m *model) receive(r *roomView) tea.Cmd {
	ctx, h, id := m.ctx, r.handle, r.id
	return func() tea.Msg {
		ev, err := h.Receive(ctx)
		if err != nil {
			return sessionEndMsg{room: id, err: err}
		}
		return eventMsg{room: id, ev: ev}
	}
}

func (m *model) View() tea.View {
	var body string
	if r := m.current(); r != nil {
		body = m.chatView(r)
	} else {
		body = m.formView()
	}
	v := tea.NewView(body)
	v.AltScreen = true
	return v
}

// wrap fits s to the terminal's width, breaking lines at spaces or, for a
// word longer than the width, inside it; nothing is cut.
func (m *model) wrap(s string, style lipgloss.Style) string {
	return style.Render(lipgloss.Wrap(s, max(m.width, 10), " "))
}

// footer is the lines under a room's messages: the input, the status and
// any error, each wrapped to the width.
func (m *model) footer(r *roomView) string {
	lines := []string{r.input.View(), m.wrap(r.status+" · PgUp/PgDn: scroll · Esc: leave · Ctrl-C: quit", dimStyle)}
	if m.errText != "" {
		lines = append(lines, m.wrap(m.errText, errorStyle))
	}
	return strings.Join(lines, "\n")
}

func (m *model) header(r *roomView) string {
	return m.wrap(fmt.Sprintf("%s (%s) — %s", r.info.Name, r.info.ShortCode, m.user), titleStyle)
}

// layout sizes the shown room's panes to the terminal, what is left once
// the header and the footer have their lines.
func (m *model) layout() {
	r := m.current()
	if r == nil {
		m.form.setWidth(m.width)
		return
	}
	rows := m.height - lipgloss.Height(m.header(r)) - lipgloss.Height(m.footer(r))
	r.resize(max(m.width-usersWidth-1, 10), max(rows, 3), m.width)
}

func (m *model) chatView(r *roomView) string {
	return m.header(r) + "\n" +
		lipgloss.JoinHorizontal(lipgloss.Top, lipgloss.NewStyle().Width(r.view.Width()).Render(r.view.View()), r.usersView()) + "\n" +
		m.footer(r)
}

func (m *model) formView() string {
	var b strings.Builder
	title, help := m.form.title, m.form.help
	if m.screen == screenRoom {
		title = "Logged in as " + m.user + " — " + title
	}
	b.WriteString(m.wrap(title, titleStyle) + "\n\n")
	if m.note != "" {
		b.WriteString(m.wrap(m.note, dimStyle) + "\n\n")
	}
	for _, f := range m.form.fields {
		b.WriteString(f.View() + "\n")
	}
	b.WriteString("\n" + m.wrap(help, dimStyle) + "\n")
	if m.busy {
		b.WriteString("working…\n")
	}
	if m.errText != "" {
		b.WriteString(m.wrap(m.errText, errorStyle))
	}
	return b.String()
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
