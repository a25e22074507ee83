package main

import (
	"fmt"
	"sort"
	"strings"

	"charm.land/bubbles/v2/textinput"
	"charm.land/bubbles/v2/viewport"
	tea "charm.land/bubbletea/v2"
	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// usersWidth is the online list's width, its border included.
const usersWidth = 22

// roomView is one joined room on screen: its messages, who is online,
// the state of its stream and what is typed for it.
type roomView struct {
	id     int
	handle roomHandle
	info   *client.Room

	// lines are the room's lines as styled, one per message or notice;
	// wrapped holds them fitted to wrapWidth, the width of the pane.
	lines     []string
	wrapped   []string
	wrapWidth int

	users map[string]int
	// online: the stream is open, so the list of users is current; while
	// it is not, the list is shown greyed.
	online bool
	status string
	ended  bool
	// unread counts the messages that came while the room was not shown.
	unread int
	// errText is why the last line typed could not be sent, until one is.
	errText string
	// outbox holds the lines typed and not yet handed to the room, sent one
	// at a time so that they arrive in the order typed.
	outbox []string

	view  viewport.Model
	input textinput.Model
}

func newRoomView(id int, h roomHandle, info *client.Room, dark bool) *roomView {
	r := &roomView{id: id, handle: h, info: info, users: map[string]int{}, online: true, status: "connected"}
	for _, u := range info.Users {
		r.users[u.Name] = u.Streams
	}
	r.input = textinput.New()
	r.input.Placeholder = "type a message, Enter to send"
	r.input.CharLimit = 4096
	r.view = viewport.New()
	r.restyle(dark)
	r.addLine(dimStyle.Render(fmt.Sprintf("* joined %s (%s)%s", info.Name, info.ShortCode, earlierNote(info.Backlog))))
	return r
}

func (r *roomView) restyle(dark bool) {
	r.input.SetStyles(inputStyles(dark))
}

// resize fits the messages pane to width × height and the input to the
// terminal's width; the lines are wrapped again when the width changed.
// A view that showed the end still does.
func (r *roomView) resize(width, height, termWidth int) {
	atBottom := r.view.AtBottom()
	r.view.SetHeight(height)
	r.input.SetWidth(max(termWidth-4, 10))
	if width != r.wrapWidth {
		r.view.SetWidth(width)
		r.wrapWidth = width
		r.wrapped = r.wrapped[:0]
		for _, l := range r.lines {
			r.wrapped = append(r.wrapped, lipgloss.Wrap(l, width, " "))
		}
		r.view.SetContent(strings.Join(r.wrapped, "\n"))
	}
	if atBottom {
		r.view.GotoBottom()
	}
}

// addLine adds a line to the room, wrapped at the pane's width; the view
// follows it if it showed the end.
func (r *roomView) addLine(s string) {
	atBottom := r.view.AtBottom()
	r.lines = append(r.lines, s)
	if r.wrapWidth > 0 {
		r.wrapped = append(r.wrapped, lipgloss.Wrap(s, r.wrapWidth, " "))
		r.view.SetContent(strings.Join(r.wrapped, "\n"))
	}
	if atBottom {
		r.view.GotoBottom()
	}
}

func (r *roomView) apply(ev client.Event) {
	switch ev := ev.(type) {
	case *client.Message:
		stamp := ev.SentAt.Local().Format("15:04")
		if ev.Earlier {
			// Sent before the join: the whole line faint, and marked so
			// for terminals without faint text.
			r.addLine(dimStyle.Render(fmt.Sprintf("%s earlier %s: %s", stamp, ev.Sender, ev.Body)))
			return
		}
		r.addLine(fmt.Sprintf("%s %s %s", dimStyle.Render(stamp), senderStyle.Render(ev.Sender+":"), ev.Body))
	case *client.Presence:
		if ev.Kind == client.Joined {
			r.users[ev.User] = max(r.users[ev.User], 1)
		} else {
			delete(r.users, ev.User)
		}
		r.addLine(dimStyle.Render("* " + describeEvent(ev)))
	case *client.Connection:
		if ev.State == client.Reconnecting {
			r.online = false
			r.status = reconnecting(ev)
			return
		}
		r.online = true
		r.status = "connected"
		r.users = map[string]int{}
		for _, u := range ev.Users {
			r.users[u.Name] = u.Streams
		}
		r.addLine(dimStyle.Render("* reconnected"))
	case *client.Gap, *client.RoomDeleted, *client.SendFailed:
		r.addLine(dimStyle.Render("* " + describeEvent(ev)))
	}
}

// countUnread counts ev as unread if it is a new message from someone
// else; earlier ones were sent before the join.
func (r *roomView) countUnread(ev client.Event, user string) {
	if msg, ok := ev.(*client.Message); ok && !msg.Earlier && msg.Sender != user {
		r.unread++
	}
}

// end marks the room's session over: nothing more comes or goes.
func (r *roomView) end(err error) {
	r.ended = true
	r.online = false
	r.status = "disconnected: " + explain(err)
	r.input.Blur()
}

// usersView is the online list beside the messages, greyed while the
// stream is not open (who is online is then unknown).
func (r *roomView) usersView() string {
	names := make([]string, 0, len(r.users))
	for n := range r.users {
		names = append(names, n)
	}
	sort.Strings(names)
	head := fmt.Sprintf("online (%d)", len(names))
	nameStyle, headStyle := lipgloss.NewStyle(), senderStyle
	if !r.online {
		head += " ?"
		nameStyle, headStyle = dimStyle, dimStyle
	}
	inner := usersWidth - 3 // the border and the padding
	lines := []string{headStyle.Render(ansi.Truncate(head, inner, "…"))}
	for _, n := range names {
		lines = append(lines, nameStyle.Render(ansi.Truncate(n, inner, "…")))
	}
	return usersStyle.Height(r.view.Height()).Width(usersWidth - 1).Render(strings.Join(lines, "\n"))
}

// updateChat handles what comes while a room is shown: keys for the room,
// for the room list, or for the input.
func (m *model) updateChat(r *roomView, msg tea.Msg) tea.Cmd {
	if key, ok := msg.(tea.KeyPressMsg); ok {
		if key.Mod == tea.ModAlt && key.Code >= '1' && key.Code <= '9' {
			if i := int(key.Code - '1'); i < len(m.rooms) {
				m.note = ""
				return m.show(i)
			}
			return nil
		}
		switch key.String() {
		case "tab", "shift+tab":
			step := 1
			if key.String() == "shift+tab" {
				step = -1
			}
			m.note = ""
			return m.show((m.active + step + len(m.rooms)) % len(m.rooms))
		case "ctrl+n":
			return m.openForm()
		case "enter":
			body := strings.TrimSpace(r.input.Value())
			if body == "" || r.ended {
				return nil
			}
			r.input.SetValue("")
			m.note = ""
			r.outbox = append(r.outbox, body)
			if len(r.outbox) > 1 {
				return nil // sent when those before it are
			}
			return m.sendNext(r)
		case "pgup", "pgdown", "ctrl+u", "ctrl+d":
			var cmd tea.Cmd
			r.view, cmd = r.view.Update(msg)
			return cmd
		}
	}
	var cmd tea.Cmd
	r.input, cmd = r.input.Update(msg)
	return cmd
}
