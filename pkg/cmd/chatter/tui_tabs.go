package main

import (
	"fmt"
	"strings"

	"charm.land/lipgloss/v2"
	"github.com/charmbracelet/x/ansi"
)

var (
	tabStyle        = lipgloss.NewStyle()
	tabCurrentStyle = lipgloss.NewStyle().Bold(true).Reverse(true)
	tabUnreadStyle  = lipgloss.NewStyle().Bold(true)
)

// tabs is the room list: a tab for each room, numbered for Alt-1…9, with
// the room shown (cur; none when cur < 0) highlighted and the others'
// unread messages counted. A room whose stream is not open is dim. The
// tabs fill as many lines of the terminal's width as they need; a tab
// wider than a line is cut.
func (m *model) tabs(cur int) string {
	width := max(m.width, 10)
	var lines []string
	var line strings.Builder
	lineWidth := 0
	for i, r := range m.rooms {
		label := fmt.Sprintf("%d %s (%s)", i+1, r.info.Name, r.info.ShortCode)
		if r.unread > 0 && i != cur {
			label += " [" + unreadCount(r.unread) + "]"
		}
		if r.ended {
			label += " ended"
		}
		label = ansi.Truncate(" "+label+" ", width, "…")
		style := tabStyle
		switch {
		case i == cur:
			style = tabCurrentStyle
		case !r.online:
			style = dimStyle
		case r.unread > 0:
			style = tabUnreadStyle
		}
		w := ansi.StringWidth(label)
		if lineWidth > 0 && lineWidth+1+w > width {
			lines = append(lines, line.String())
			line.Reset()
			lineWidth = 0
		}
		if lineWidth > 0 {
			line.WriteString(" ")
			lineWidth++
		}
		line.WriteString(style.Render(label))
		lineWidth += w
	}
	return strings.Join(append(lines, line.String()), "\n")
}

func unreadCount(n int) string {
	if n > 99 {
		return "99+"
	}
	return fmt.Sprint(n)
}
