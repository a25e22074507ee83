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

func open(t *testing.T, dir string) *File {
	t.Helper()
	f, err := Open(dir)
	require.NoError(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func TestSaveLoad(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	f := open(t, dir)

	got, err := f.Load()
	require.NoError(t, err)
	assert.Empty(t, got.Rooms, "missing file is an empty registry")

	at := time.Unix(1700000000, 0).UTC()
	want := rooms.Registry{
		Rooms:      []rooms.Room{{Code: "ABC234", Name: "général", PasswordHash: "$argon2id$x", OwnerID: "u1", CreatedAt: at, IdleSince: at.Add(time.Hour)}},
		Tombstones: []rooms.Tombstone{{Code: "XYZ789", DeletedAt: at}},
	}
	require.NoError(t, f.Save(want))
	require.NoError(t, f.Save(want)) // overwrite works
	got, err = f.Load()
	require.NoError(t, err)
	assert.Equal(t, want, got)

	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	names := []string{}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{FileName, lockName}, names, "no temp files left behind")
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600))
	_, err := open(t, dir).Load()
	assert.Error(t, err)
}

// A second process on the same DATA_DIR fails fast, naming it.
func TestOpenLocksDataDir(t *testing.T) {
	dir := t.TempDir()
	f := open(t, dir)
	_, err := Open(dir)
	require.ErrorIs(t, err, ErrLocked)
	assert.Contains(t, err.Error(), "DATA_DIR "+dir)
	require.NoError(t, f.Close())
	open(t, dir) // free again
}

// Temporary files left by a crash during a save are removed at Open.
func TestOpenRemovesStaleTemp(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, FileName+".12345.tmp")
	require.NoError(t, os.WriteFile(stale, []byte("{"), 0o600))
	open(t, dir)
	assert.NoFileExists(t, stale)
}

// Load refuses a registry with a bad entry and names it.
func TestLoadValidates(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"version", `{"version":3,"rooms":[]}`, "version 3"},
		{"empty code", `{"version":2,"rooms":[{"short_code":"","password_hash":"h","owner_id":"u"}]}`, "rooms[0]"},
		{"lower-case code", `{"version":2,"rooms":[{"short_code":"abc234","password_hash":"h","owner_id":"u"}]}`, `"abc234"`},
		{"no hash", `{"version":2,"rooms":[{"short_code":"ABC234","password_hash":"","owner_id":"u"}]}`, "rooms[0] (ABC234): password_hash"},
		{"no owner", `{"version":1,"rooms":[{"short_code":"ABC234","password_hash":"h","owner_id":""}]}`, "rooms[0] (ABC234): owner_id"},
		{"duplicate", `{"version":2,"rooms":[{"short_code":"ABC234","password_hash":"h","owner_id":"u"},{"short_code":"ABC234","password_hash":"h","owner_id":"u"}]}`, "rooms[1]: short_code \"ABC234\" appears twice"},
		{"bad tombstone", `{"version":2,"rooms":[],"tombstones":[{"short_code":"x"}]}`, "tombstones[0]"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(tc.doc), 0o600))
			_, err := open(t, dir).Load()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
