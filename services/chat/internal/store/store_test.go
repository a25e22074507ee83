package store

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	f, err := Open(dir)
	require.NoError(t, err)

	got, err := f.Load()
	require.NoError(t, err)
	assert.Empty(t, got, "missing file is an empty registry")

	want := []rooms.Room{{Code: "ABC234", Name: "général", PasswordHash: "$argon2id$x", OwnerID: "u1", CreatedAt: time.Unix(1700000000, 0).UTC()}}
	require.NoError(t, f.Save(want))
	require.NoError(t, f.Save(want)) // overwrite works
	got, err = f.Load()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp files left behind")
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600))
	f, err := Open(dir)
	require.NoError(t, err)
	_, err = f.Load()
	assert.Error(t, err)
}
