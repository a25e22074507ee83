package password

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var fast = Params{MemoryKiB: 64, Time: 1, Threads: 1}

func TestHashVerify(t *testing.T) {
	h := NewHasher(fast)
	ctx := context.Background()
	hash, err := h.Hash(ctx, "s3cret")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(hash, "$argon2id$v=19$m=64,t=1,p=1$"), hash)

	ok, err := h.Verify(ctx, "s3cret", hash)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, err = h.Verify(ctx, "s3cret!", hash)
	require.NoError(t, err)
	assert.False(t, ok)

	other, err := h.Hash(ctx, "s3cret")
	require.NoError(t, err)
	assert.NotEqual(t, hash, other, "salt must be random")
}

func TestVerifyMalformed(t *testing.T) {
	h := NewHasher(fast)
	for _, bad := range []string{"", "plain", "$argon2i$v=19$m=64,t=1,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=0,t=1,p=1$c2FsdHNhbHQ$a2V5a2V5a2V5a2V5a2V5a2V5"} {
		_, err := h.Verify(context.Background(), "x", bad)
		assert.ErrorIs(t, err, ErrMalformedHash, bad)
	}
}

func TestHashHonoursContext(t *testing.T) {
	h := NewHasher(fast)
	for range cap(h.slots) {
		h.slots <- struct{}{}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := h.Hash(ctx, "x")
	assert.ErrorIs(t, err, context.Canceled)
}
