package enginetest_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/enginetest"
)

func TestWindows(t *testing.T) {
	var w enginetest.Windows
	var ended []string
	w.After(time.Second, func() { ended = append(ended, "a") })
	w.After(time.Hour, func() {
		ended = append(ended, "b")
		w.After(time.Second, func() { ended = append(ended, "opened by b") })
	})
	assert.Empty(t, ended, "nothing ends before End")
	assert.Equal(t, 2, w.End())
	assert.Equal(t, []string{"a", "b"}, ended)
	assert.Equal(t, 1, w.End(), "the window b opened is kept for the next End")
	assert.Equal(t, []string{"a", "b", "opened by b"}, ended)
	assert.Zero(t, w.End())
}
