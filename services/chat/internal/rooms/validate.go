package rooms

import (
	"strings"
	"unicode/utf8"
)

// Input limits of the API.
const (
	MaxNameChars     = 64
	MaxPasswordBytes = 128
	MaxClientIDBytes = 64
)

// ValidateName checks a room name: 1 to MaxNameChars characters of UTF-8.
func ValidateName(name string) error {
	switch {
	case !utf8.ValidString(name):
		return Invalid("name", "must be valid UTF-8")
	case strings.TrimSpace(name) == "":
		return Invalid("name", "must not be empty")
	case utf8.RuneCountInString(name) > MaxNameChars:
		return Invalid("name", "must be at most %d characters", MaxNameChars)
	}
	return nil
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
