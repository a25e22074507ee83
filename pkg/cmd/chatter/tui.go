package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// sdkBackend is the backend over a *client.Client, which holds any number
// of rooms at once on its one login and connection: a room's handle is the
// *client.Room that JoinRoom returns.
type sdkBackend struct{ *client.Client }

var _ roomHandle = (*client.Room)(nil)

func (b sdkBackend) JoinRoom(ctx context.Context, shortCode, password string) (roomHandle, *client.Room, error) {
	room, err := b.Client.JoinRoom(ctx, shortCode, password)
	if err != nil {
		return nil, nil, err
	}
	return room, room, nil
}

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
	// screenRoom is the room form: the first room to join, or, with Ctrl-N
	// from a room, another one beside those open (Esc goes back to them).
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
		name string // the room's name and code, for an error
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
// It holds any number of rooms at once on its one client, each a view of
// its own (messages, online list, stream state, what is typed) that
// receives its events whether it is shown or not; one is shown, and the
// others count their unread messages in the room list.
type model struct {
	ctx context.Context
	be  backend

	screen  screen
	width   int
	height  int
	busy    bool
	errText string // the form's error
	// note is a line about the rooms: which was just left, or a join that
	// failed once the form was left for the rooms.
	note string
	form form
	dark bool // the terminal's background, once it told

	user string
	// rooms are the rooms joined, in the order joined; active is the one
	// shown, or the one to go back to while the room form is up.
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
	if m.screen != screenChat || m.active >= len(m.rooms) {
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
			switch {
			case m.current() != nil:
				return m.leave(m.current())
			case m.screen == screenLogin:
				return tea.Quit
			case len(m.rooms) > 0: // the room form, opened from a room
				return m.show(m.active)
			}
			return nil
		}
	case errMsg:
		m.busy = false
		if m.screen == screenChat { // the form was left meanwhile
			m.note = explain(msg.err)
		} else {
			m.errText = explain(msg.err)
		}
		return nil
	case loggedInMsg:
		m.busy, m.errText = false, ""
		m.user = msg.creds.UserName
		m.screen = screenRoom
		m.form = roomForm(false, "")
		m.form.restyle(m.dark)
		return m.form.focusCmd()
	case joinedMsg:
		return m.joined(msg)
	case eventMsg:
		r := m.room(msg.room)
		if r == nil {
			return nil // left meanwhile
		}
		r.apply(msg.ev)
		if r != m.current() {
			r.countUnread(msg.ev, m.user)
		}
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
			r.errText = explain(fmt.Errorf("send: %w", msg.err))
		} else {
			r.errText = ""
		}
		if len(r.outbox) > 0 {
			r.outbox = r.outbox[1:]
		}
		return m.sendNext(r)
	case leftMsg:
		if msg.err != nil {
			m.note = explain(fmt.Errorf("leaving %s: %w", msg.name, msg.err))
		}
		return nil
	}
	if r := m.current(); r != nil {
		return m.updateChat(r, msg)
	}
	return m.updateForm(msg)
}

// joined adds the room just joined to the list and shows it. A room of the
// same code whose session had ended gives it its place.
func (m *model) joined(msg joinedMsg) tea.Cmd {
	m.busy, m.errText, m.note = false, "", ""
	m.nextID++
	r := newRoomView(m.nextID, msg.handle, msg.room, m.dark)
	i := m.indexOf(msg.room.ShortCode)
	if i >= 0 && m.rooms[i].ended {
		m.rooms[i] = r
	} else {
		m.rooms = append(m.rooms, r)
		i = len(m.rooms) - 1
	}
	return tea.Batch(m.receive(r), m.show(i))
}

// indexOf returns the index of the room with the short code, or -1.
// Codes are upper-case; the service reads them in any case.
func (m *model) indexOf(shortCode string) int {
	for i, r := range m.rooms {
		if strings.EqualFold(r.info.ShortCode, strings.TrimSpace(shortCode)) {
			return i
		}
	}
	return -1
}

// show makes room i the one shown: its messages are read, and what is
// typed goes to it.
func (m *model) show(i int) tea.Cmd {
	for _, r := range m.rooms {
		r.input.Blur()
	}
	m.active = i
	m.screen = screenChat
	m.errText = ""
	r := m.rooms[i]
	r.unread = 0
	if r.ended {
		return nil
	}
	return r.input.Focus()
}

// openForm opens the room form to join another room; the rooms open stay
// joined and keep receiving.
func (m *model) openForm() tea.Cmd {
	for _, r := range m.rooms {
		r.input.Blur()
	}
	m.screen = screenRoom
	m.errText, m.note = "", ""
	m.form = roomForm(false, "")
	m.form.restyle(m.dark)
	return m.form.focusCmd()
}

// leave leaves the room shown, whose neighbour is shown instead; after the
// last room, the room form.
func (m *model) leave(r *roomView) tea.Cmd {
	i := slices.Index(m.rooms, r)
	m.rooms = slices.Delete(m.rooms, i, i+1)
	name := fmt.Sprintf("%s (%s)", r.info.Name, r.info.ShortCode)
	m.note = "left " + name
	var focus tea.Cmd
	if len(m.rooms) > 0 {
		focus = m.show(min(i, len(m.rooms)-1))
	} else {
		m.active = 0
		m.screen = screenRoom
		m.errText = ""
		m.form = roomForm(false, "")
		m.form.restyle(m.dark)
		focus = m.form.focusCmd()
	}
	if r.ended {
		return focus // its session is over: nothing to leave
	}
	h, id := r.handle, r.id
	return tea.Batch(focus, func() tea.Msg {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return leftMsg{room: id, name: name, err: h.Leave(ctx)}
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
	name, pw := vals[0], vals[1]
	ctx, be := m.ctx, m.be
	if m.screen == screenLogin {
		m.busy, m.errText = true, ""
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
	if i := m.indexOf(name); !create && i >= 0 && !m.rooms[i].ended {
		m.note = ""
		return m.show(i) // in it already
	}
	m.busy, m.errText = true, ""
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

// receive waits for r's next event. Every room open has one such command
// in flight, shown or not, so that its events are read as they come.
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

// chatKeys is the help for the keys of a room.
func (m *model) chatKeys() string {
	keys := "Ctrl-N: join another room · PgUp/PgDn: scroll · Esc: leave the room · Ctrl-C: quit"
	if len(m.rooms) > 1 {
		keys = "Tab/Shift-Tab or Alt-1…9: switch room · " + keys
	}
	return keys
}

// footer is the lines under a room's messages: the input, the status, any
// error and any note, each wrapped to the width.
func (m *model) footer(r *roomView) string {
	lines := []string{r.input.View(), m.wrap(r.status+" · "+m.chatKeys(), dimStyle)}
	if r.errText != "" {
		lines = append(lines, m.wrap(r.errText, errorStyle))
	}
	if m.note != "" {
		lines = append(lines, m.wrap(m.note, dimStyle))
	}
	return strings.Join(lines, "\n")
}

// header is the room list and the title of the room shown.
func (m *model) header(r *roomView) string {
	return m.tabs(m.active) + "\n" +
		m.wrap(fmt.Sprintf("%s (%s) — %s", r.info.Name, r.info.ShortCode, m.user), titleStyle)
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
	switch {
	case m.screen == screenLogin:
		help += " · Esc or Ctrl-C: quit"
	case len(m.rooms) > 0:
		help += " · Esc: back to your rooms · Ctrl-C: quit"
	default:
		help += " · Ctrl-C: quit"
	}
	if m.screen == screenRoom {
		title = "Logged in as " + m.user + " — " + title
	}
	b.WriteString(m.wrap(title, titleStyle) + "\n\n")
	if m.screen == screenRoom && len(m.rooms) > 0 {
		b.WriteString(m.wrap("your rooms:", dimStyle) + "\n" + m.tabs(-1) + "\n\n")
	}
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
	case errors.Is(err, client.ErrAlreadyJoined):
		return "you are in that room already"
	}
	return describe(err)
}
