package rooms

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Input limits of the API.
const (
	MaxNameChars     = 64
	MaxPasswordBytes = 128
	MaxClientIDBytes = 64
)

// NormalizeName returns a room name as it is stored and shown: trimmed
// of white space at either end, then 1 to MaxNameChars characters of
// UTF-8 with no control or invisible formatting character (see
// hiddenRune). Others see the name in their terminals and pages, where
// such characters could move the cursor, recolour the screen or reorder
// the text around the name.
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", Invalid("name", "must be valid UTF-8")
	}
	name = strings.TrimSpace(name)
	if name == "" {
		return "", Invalid("name", "must not be empty")
	}
	n := 0
	for _, r := range name {
		n++
		if hiddenRune(r) {
			return "", Invalid("name", "must not contain control or formatting characters (%U at character %d)", r, n)
		}
	}
	if n > MaxNameChars {
		return "", Invalid("name", "must be at most %d characters", MaxNameChars)
	}
	return name, nil
}

// hiddenRune reports a character a name must not hold: a control
// character (C0 and C1, tab and newline included: a name is one line), a
// line or paragraph separator, or a formatting character (bidirectional
// overrides and isolates, zero-width space, soft hyphen, byte order mark,
// tag characters...). The zero-width joiner and non-joiner are allowed:
// emoji sequences and several scripts need them. Spaces other than at
// either end are ordinary characters.
func hiddenRune(r rune) bool {
	switch {
	case r == '\u200C' || r == '\u200D':
		return false
	case unicode.IsControl(r), unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp):
		return true
	}
	return false
}

// ValidatePassword checks a room password: 1 to MaxPasswordBytes bytes.
func ValidatePassword(pw string) error {
	switch {
	case pw == "":
		return Invalid("password", "must not be empty")
	case len(pw) > MaxPasswordBytes:
		return Invalid("password", "must be at most %d bytes", MaxPasswordBytes)
	case !utf8.ValidString(pw):
		return Invalid("password", "must be valid UTF-8")
	}
	return nil
}

// ValidateSend checks a message: body 1 to maxBody bytes of UTF-8 and a
// client message ID of at most MaxClientIDBytes bytes of UTF-8.
func ValidateSend(clientID, body string, maxBody int) error {
	switch {
	case body == "":
		return Invalid("body", "must not be empty")
	case len(body) > maxBody:
		return Invalid("body", "must be at most %d bytes", maxBody)
	case !utf8.ValidString(body):
		return Invalid("body", "must be valid UTF-8")
	case len(clientID) > MaxClientIDBytes:
		return Invalid("client_message_id", "must be at most %d bytes", MaxClientIDBytes)
	case !utf8.ValidString(clientID):
		return Invalid("client_message_id", "must be valid UTF-8")
	}
	return nil
}
