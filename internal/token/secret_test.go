package token_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/internal/token"
)

func TestCheckSecret(t *testing.T) {
	tests := []struct {
		name   string
		secret string
		want   error
	}{
		{"random hex", "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", nil},
		{"exactly 32 bytes", "0123456789abcdef0123456789abcdeF", nil},
		{"empty", "", token.ErrInvalidSecret},
		{"31 bytes", strings.Repeat("ab", 15) + "c", token.ErrInvalidSecret},
		{"one repeated character", strings.Repeat("x", 48), token.ErrWeakSecret},
		{"example file value", "replace-with-at-least-32-random-bytes-xxxxxxxx", token.ErrWeakSecret},
		{"changeme in capitals", "CHANGEME-0123456789abcdef0123456789", token.ErrWeakSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := token.CheckSecret(tt.secret)
			if tt.want == nil {
				assert.NoError(t, err)
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
}
