package password

import (
	"context"
	"fmt"
	"runtime"
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

// Each hash keeps Threads CPUs busy, so the hasher runs GOMAXPROCS /
// Threads at once, and never fewer than one.
func TestSlotsPerThreads(t *testing.T) {
	cases := []struct {
		procs   int
		threads uint8
		want    int
	}{
		{8, 1, 8},
		{8, 2, 4},
		{8, 3, 2},
		{2, 4, 1},
		{1, 255, 1},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("procs=%d threads=%d", tc.procs, tc.threads), func(t *testing.T) {
			assert.Equal(t, tc.want, slotsFor(tc.procs, tc.threads))
		})
	}
	threads := uint8(runtime.GOMAXPROCS(0)*2 + 1)
	assert.Equal(t, 1, NewHasher(Params{MemoryKiB: 64, Time: 1, Threads: threads}).Slots())
	assert.Equal(t, runtime.GOMAXPROCS(0), NewHasher(fast).Slots())
}
