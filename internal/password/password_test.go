package password_test

import (
	"context"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/password"
)

var cheap = password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHasher(t testing.TB, p password.Params, opts ...password.Option) *password.Hasher {
	t.Helper()
	h, err := password.New(p, opts...)
	require.NoError(t, err)
	return h
}

func TestHashIsPHCAndVerifies(t *testing.T) {
	h := newHasher(t, cheap)
	enc, err := h.Hash(t.Context(), "correct horse")
	require.NoError(t, err)
	assert.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, enc)

	again, err := h.Hash(t.Context(), "correct horse")
	require.NoError(t, err)
	assert.NotEqual(t, enc, again, "fresh salt every time")

	ok, stale, err := h.Verify(t.Context(), "correct horse", enc)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.False(t, stale)

	ok, stale, err = h.Verify(t.Context(), "correct horsE", enc)
	require.NoError(t, err)
	assert.False(t, ok)
	assert.False(t, stale, "only a matching password is reported stale")
}

func TestDefaultsAreTheOWASPMinimum(t *testing.T) {
	assert.Equal(t, password.Params{MemoryKiB: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, password.DefaultParams())
	assert.Equal(t, 19*1024, password.MinMemoryKiB)
	assert.Equal(t, 2, password.MinTime)
	_, err := password.New(password.DefaultParams())
	assert.NoError(t, err)
}

// TestZeroLengthsMeanDefaults: a caller that only sets the cost gets a
// 16-byte salt and a 32-byte key.
func TestZeroLengthsMeanDefaults(t *testing.T) {
	h := newHasher(t, password.Params{MemoryKiB: 64, Time: 1, Threads: 1})
	enc, err := h.Hash(t.Context(), "pw")
	require.NoError(t, err)
	assert.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, enc)

	ok, stale, err := newHasher(t, cheap).Verify(t.Context(), "pw", enc)
	require.NoError(t, err)
	assert.True(t, ok)
	assert.False(t, stale, "the same parameters, spelled out")
}

func TestStaleWhenParametersRaised(t *testing.T) {
	enc, err := newHasher(t, cheap).Hash(t.Context(), "pw")
	require.NoError(t, err)
	tests := []struct {
		name  string
		p     password.Params
		stale bool
	}{
		{"same", cheap, false},
		{"more memory", password.Params{MemoryKiB: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"more time", password.Params{MemoryKiB: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"longer key", password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 64}, true},
		{"less memory", password.Params{MemoryKiB: 32, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
		{"other threads only", password.Params{MemoryKiB: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ok, stale, err := newHasher(t, tt.p).Verify(t.Context(), "pw", enc)
			require.NoError(t, err)
			assert.True(t, ok, "old hashes keep verifying with their own parameters")
			assert.Equal(t, tt.stale, stale)
		})
	}
}

func TestNewRejectsBadParams(t *testing.T) {
	tests := []struct {
		name string
		p    password.Params
	}{
		{"zero time", password.Params{MemoryKiB: 64, Time: 0, Threads: 1}},
		{"time above the cap", password.Params{MemoryKiB: 64, Time: password.MaxTime + 1, Threads: 1}},
		{"zero threads", password.Params{MemoryKiB: 64, Time: 1, Threads: 0}},
		{"under 8 KiB per thread", password.Params{MemoryKiB: 15, Time: 1, Threads: 2}},
		{"memory above the cap", password.Params{MemoryKiB: password.MaxMemoryKiB + 1, Time: 1, Threads: 1}},
		{"short salt", password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 4}},
		{"long salt", password.Params{MemoryKiB: 64, Time: 1, Threads: 1, SaltLen: 65}},
		{"short key", password.Params{MemoryKiB: 64, Time: 1, Threads: 1, KeyLen: 8}},
		{"long key", password.Params{MemoryKiB: 64, Time: 1, Threads: 1, KeyLen: 1 << 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := password.New(tt.p)
			assert.Error(t, err)
			assert.Nil(t, h)
		})
	}
	for _, p := range []password.Params{
		{MemoryKiB: 16, Time: 1, Threads: 2},
		{MemoryKiB: password.MaxMemoryKiB, Time: password.MaxTime, Threads: 1, SaltLen: 64, KeyLen: 64},
	} {
		_, err := password.New(p)
		assert.NoError(t, err, "the limits themselves are accepted: %+v", p)
	}
}

func TestGivesUpWhenContextEnds(t *testing.T) {
	h := newHasher(t, cheap)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := h.Hash(ctx, "pw")
	assert.ErrorIs(t, err, password.ErrBusy)
	assert.ErrorIs(t, err, context.Canceled)
}

// TestConcurrencyIsBounded checks that no more hashes run at once than
// configured, however many callers there are.
func TestConcurrencyIsBounded(t *testing.T) {
	var running, peak atomic.Int32
	slow := password.Params{MemoryKiB: 4096, Time: 3, Threads: 1, SaltLen: 16, KeyLen: 32}
	h := newHasher(t, slow, password.WithConcurrency(2), password.WithObserver(func(string, time.Duration) {
		// Called inside the slot, right after argon2 returns.
		n := running.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(20 * time.Millisecond)
		running.Add(-1)
	}))
	done := make(chan error, 8)
	for range 8 {
		go func() { // ends after one hash
			_, err := h.Hash(context.Background(), "pw")
			done <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-done)
	}
	assert.LessOrEqual(t, peak.Load(), int32(2))
	assert.Positive(t, peak.Load())
}

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, password.DefaultParams())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}

// watchedCtx signals when a caller starts waiting on Done, which derive
// does only once it has found no free slot.
type watchedCtx struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func (c *watchedCtx) Done() <-chan struct{} {
	c.once.Do(func() { close(c.waiting) })
	return c.Context.Done()
}

// TestGivesUpWaitingForASlot fills the only slot with a hash that blocks,
// then lets a second caller's context end while it waits: it gets ErrBusy
// with the context's error and never hashes.
func TestGivesUpWaitingForASlot(t *testing.T) {
	var hashes atomic.Int32
	entered, release := make(chan struct{}), make(chan struct{})
	h := newHasher(t, cheap, password.WithConcurrency(1), password.WithObserver(func(string, time.Duration) {
		if hashes.Add(1) == 1 {
			close(entered)
			<-release // holds the slot
		}
	}))
	first := make(chan error, 1)
	go func() { // ends once release is closed
		_, err := h.Hash(context.Background(), "pw")
		first <- err
	}()
	<-entered

	parent, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	ctx := &watchedCtx{Context: parent, waiting: make(chan struct{})}
	second := make(chan error, 1)
	go func() { // ends when ctx is cancelled
		_, err := h.Hash(ctx, "pw")
		second <- err
	}()
	<-ctx.waiting
	cancel()
	err := <-second
	assert.ErrorIs(t, err, password.ErrBusy)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, int32(1), hashes.Load(), "the second caller never hashed")

	close(release)
	require.NoError(t, <-first)
	assert.Equal(t, int32(1), hashes.Load())
}

// TestSlotsAccountForThreads: a hash with p threads keeps p CPUs busy, so
// the default number of slots is GOMAXPROCS / p, at least one.
func TestSlotsAccountForThreads(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(8))
	for threads, want := range map[uint8]int{1: 8, 2: 4, 3: 2, 8: 1, 16: 1} {
		p := cheap
		p.Threads, p.MemoryKiB = threads, 8*uint32(threads)
		assert.Equal(t, want, newHasher(t, p).Slots(), "p=%d", threads)
	}
	assert.Equal(t, 3, newHasher(t, cheap, password.WithConcurrency(3)).Slots())
}

func TestDefaultParamsCannotBeChanged(t *testing.T) {
	p := password.DefaultParams()
	p.MemoryKiB = 1
	assert.Equal(t, uint32(19*1024), password.DefaultParams().MemoryKiB)
}
