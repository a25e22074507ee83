package hostname

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestValid(t *testing.T) {
	for h, want := range map[string]bool{
		"127.0.0.1":                          true,
		"0.0.0.0":                            true,
		"::1":                                true,
		"fe80::1":                            true,
		"localhost":                          true,
		"chat-1.internal.example":            true,
		"example.com.":                       true, // fully qualified
		"a":                                  true,
		"x1.y2":                              true,
		strings.Repeat("a", 63) + ".example": true,

		"":                                   false,
		".":                                  false,
		"256.0.0.1":                          false, // a mistyped IP, not a name
		"10.0.0":                             false,
		"10.0.0.99999999999999999999":        false, // too long for an int, still digits
		"127.0.0.1:80":                       false, // a port is configured apart
		"[::1]":                              false,
		"not a host!":                        false,
		"-lead.example":                      false,
		"trail-.example":                     false,
		"double..dot":                        false,
		"under_score":                        false,
		"ünicode.example":                    false,
		strings.Repeat("a", 64) + ".example": false,
		strings.Repeat(strings.Repeat("a", 9)+".", 26) + "com": false, // 263 bytes
	} {
		assert.Equal(t, want, Valid(h), "%q", h)
	}
}
