package api

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"

	"github.com/grpcchatter/grpcchatter/internal/password"
)

// Room password hashes in rooms.json written by the service's former
// hasher (16-byte salt, 32-byte key, unpadded standard base64) still
// verify with internal/password.
func TestFormerRoomHashesVerify(t *testing.T) {
	salt := []byte("0123456789abcdef")
	key := argon2.IDKey([]byte("pw"), salt, 1, 64, 1, 32)
	b64 := base64.RawStdEncoding
	old := fmt.Sprintf("$argon2id$v=%d$m=64,t=1,p=1$%s$%s", argon2.Version, b64.EncodeToString(salt), b64.EncodeToString(key))
	h, err := password.New(password.Params{MemoryKiB: 64, Time: 1, Threads: 1})
	require.NoError(t, err)
	ok, _, err := h.Verify(context.Background(), "pw", old)
	require.NoError(t, err)
	assert.True(t, ok)
	ok, _, err = h.Verify(context.Background(), "nope", old)
	require.NoError(t, err)
	assert.False(t, ok)
}
