package dburl

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestRedacted(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", ""},
		{"postgres://u:secret@db:5432/chat", "postgres://u:xxxxx@db:5432/chat"},
		{"postgres://u@db/chat?PassWord=secret&sslmode=disable", "postgres://u@db/chat?PassWord=xxxxx&sslmode=disable"},
		{"postgres://u@db/chat?sslmode=%zz", "***"},
		{"postgres://u:sec ret@db:5432\x7f/chat", "***"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got := Redacted(tc.in)
			assert.Equal(t, tc.want, got)
			assert.NotContains(t, got, "secret")
		})
	}
}
