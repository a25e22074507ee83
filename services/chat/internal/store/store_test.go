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

// A registry file of the last format is read whole, then retired.
func TestLoadAndRetire(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	f := open(t, dir)

	got, found, err := f.Load()
	require.NoError(t, err)
	assert.False(t, found, "no file")
	assert.Empty(t, got.Rooms)

	doc := `{"version":2,"rooms":[{"short_code":"ABC234","name":"général","password_hash":"$argon2id$x","owner_id":"u1",
		"created_at":"2023-11-14T22:13:20Z","idle_since":"2023-11-14T23:13:20Z"}],
		"tombstones":[{"short_code":"XYZ789","deleted_at":"2023-11-14T22:13:20Z"}]}`
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte(doc), 0o600))
	at := time.Unix(1700000000, 0).UTC()
	want := rooms.Registry{
		Rooms:      []rooms.Room{{Code: "ABC234", Name: "général", PasswordHash: "$argon2id$x", OwnerID: "u1", CreatedAt: at, IdleSince: at.Add(time.Hour)}},
		Tombstones: []rooms.Tombstone{{Code: "XYZ789", DeletedAt: at}},
	}
	got, found, err = f.Load()
	require.NoError(t, err)
	assert.True(t, found)
	assert.Equal(t, want, got)

	to, err := f.Retire()
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, RetiredName), to)
	assert.NoFileExists(t, filepath.Join(dir, FileName))
	b, err := os.ReadFile(to)
	require.NoError(t, err)
	assert.Equal(t, doc, string(b), "kept as it was")
	_, found, err = f.Load()
	require.NoError(t, err)
	assert.False(t, found, "never read again")
}

func TestLoadCorrupt(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, FileName), []byte("{"), 0o600))
	_, _, err := open(t, dir).Load()
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
			_, _, err := open(t, dir).Load()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
