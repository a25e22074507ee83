package main

import (
	"errors"
	"fmt"
	"strings"

	"charm.land/bubbles/v2/textinput"
	tea "charm.land/bubbletea/v2"
)

// form is the login form or the room form. Each has two modes, toggled
// with a key: log in or register; join a room or create one. Creating
// something with a password (registering, creating a room) asks for it
// twice. The help is the form's own keys; the view adds those that
// leave it.
type form struct {
	login bool // the login form, else the room form
	alt   bool // register, or create a room
	title string
	help  string

	fields []textinput.Model
	focus  int
}

func loginForm(register bool, user, password string) form {
	f := form{login: true, alt: register, title: "GRPCChatter — log in",
		help: "Enter: log in · Ctrl-R: register instead · Tab: next field"}
	labels := []string{"user name", "password"}
	if register {
		f.title = "GRPCChatter — register"
		f.help = "Enter: register and log in · Ctrl-R: log in instead · Tab: next field"
		labels = append(labels, "again")
	}
	f.setFields(labels...)
	f.fields[0].SetValue(user)
	f.fields[1].SetValue(password)
	if user != "" {
		f.focusField(1)
	}
	return f
}

func roomForm(create bool, name string) form {
	f := form{title: "join a room", help: "Enter: join · Ctrl-N: create a room instead · Tab: next field"}
	labels := []string{"room code", "password"}
	if create {
		f.alt = true
		f.title = "create a room"
		f.help = "Enter: create and join · Ctrl-N: join instead · Tab: next field"
		labels = []string{"room name", "password", "again"}
	}
	f.setFields(labels...)
	f.fields[0].SetValue(name)
	return f
}

func (f *form) setFields(labels ...string) {
	f.fields = make([]textinput.Model, len(labels))
	for i, l := range labels {
		ti := textinput.New()
		ti.Placeholder = l
		if l == "again" {
			ti.Placeholder = "the password again"
		}
		ti.Prompt = fmt.Sprintf("%-12s ", l+":")
		ti.CharLimit = 128
		ti.SetStyles(inputStyles(true))
		if l == "password" || l == "again" {
			ti.EchoMode = textinput.EchoPassword
		}
		f.fields[i] = ti
	}
	f.focusField(0)
}

func (f *form) focusField(i int) tea.Cmd {
	f.focus = (i + len(f.fields)) % len(f.fields)
	var cmd tea.Cmd
	for j := range f.fields {
		if j == f.focus {
			cmd = f.fields[j].Focus()
		} else {
			f.fields[j].Blur()
		}
	}
	return cmd
}

func (f *form) focusCmd() tea.Cmd { return f.focusField(f.focus) }

func (f *form) restyle(dark bool) {
	for i := range f.fields {
		f.fields[i].SetStyles(inputStyles(dark))
	}
}

// inputStyles are the text fields' styles for a dark or light background,
// with a steady cursor: no timer runs while nothing happens.
func inputStyles(dark bool) textinput.Styles {
	s := textinput.DefaultStyles(dark)
	s.Cursor.Blink = false
	return s
}

func (f *form) setWidth(w int) {
	for i := range f.fields {
		f.fields[i].SetWidth(max(w-14, 10)) // the prompt's 13 columns and the cursor
	}
}

// toggled is the form in its other mode, keeping what was typed in the
// first two fields.
func (f *form) toggled() form {
	if f.login {
		return loginForm(!f.alt, f.fields[0].Value(), f.fields[1].Value())
	}
	return roomForm(!f.alt, f.fields[0].Value())
}

// values returns the fields' values once all are filled in and a password
// typed twice matches.
func (f *form) values() ([]string, error) {
	vals := make([]string, len(f.fields))
	for i, fl := range f.fields {
		vals[i] = fl.Value()
		if strings.TrimSpace(vals[i]) == "" {
			return nil, fmt.Errorf("fill in every field (%s is empty)", strings.TrimSuffix(strings.TrimSpace(fl.Prompt), ":"))
		}
	}
	vals[0] = strings.TrimSpace(vals[0])
	if len(vals) == 3 && vals[2] != vals[1] {
		return nil, errors.New("the two passwords differ: type the same one twice")
	}
	return vals, nil
}

func (m *model) updateForm(msg tea.Msg) tea.Cmd {
	if key, ok := msg.(tea.KeyPressMsg); ok {
		switch key.String() {
		case "tab", "down":
			return m.form.focusField(m.form.focus + 1)
		case "shift+tab", "up":
			return m.form.focusField(m.form.focus - 1)
		case "ctrl+r", "ctrl+n":
			if (key.String() == "ctrl+r") == m.form.login {
				m.form = m.form.toggled()
				m.form.restyle(m.dark)
				m.errText = ""
				return m.form.focusCmd()
			}
			return nil
		case "enter":
			if m.form.focus < len(m.form.fields)-1 {
				return m.form.focusField(m.form.focus + 1)
			}
			return m.submit()
		}
	}
	var cmd tea.Cmd
	m.form.fields[m.form.focus], cmd = m.form.fields[m.form.focus].Update(msg)
	return cmd
}
