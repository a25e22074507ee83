package sqlstore_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
)

// dataDir returns a data directory holding testdata/name as rooms.json.
// testdata/rooms.v2.json was written by the JSON store's Save (the
// version before the database) and is kept as it wrote it.
func dataDir(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, store.FileName), b, 0o600))
	return dir
}

// importDir imports dir's registry file the way the service does: holding
// the data directory.
func importDir(t *testing.T, s *sqlstore.Store, dir string) (int, error) {
	t.Helper()
	f, err := store.Open(dir)
	require.NoError(t, err)
	defer f.Close()
	return s.ImportFile(ctx(t), f)
}

// at parses a time in the fixture's format.
func at(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return v.UTC()
}

func TestImportJSON(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			t.Run("nothing lost", func(t *testing.T) { importAll(t, open(t, b.config(t))) })
			t.Run("again after a crash before the rename", func(t *testing.T) { importTwice(t, open(t, b.config(t))) })
			t.Run("codes already present are skipped", func(t *testing.T) { importSkips(t, open(t, b.config(t))) })
			t.Run("version 1 rooms are idle from now", func(t *testing.T) { importV1(t, open(t, b.config(t))) })
		})
	}
	t.Run("no file", func(t *testing.T) {
		s := open(t, sqliteConfig(t))
		n, err := importDir(t, s, t.TempDir())
		require.NoError(t, err)
		assert.Zero(t, n)
	})
}

func importAll(t *testing.T, s *sqlstore.Store) {
	dir := dataDir(t, "rooms.v2.json")
	before := time.Now()
	n, err := importDir(t, s, dir)
	require.NoError(t, err)
	assert.Equal(t, 3, n)
	assert.NoFileExists(t, filepath.Join(dir, store.FileName))
	assert.FileExists(t, filepath.Join(dir, store.RetiredName))

	// The fixture's times, to the microsecond, in UTC.
	us := func(s string) time.Time { return at(t, s).Truncate(time.Microsecond) }
	want := map[string]rooms.Room{
		"ABC234": {Code: "ABC234", Name: "général ☕", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDE$aGFzaDE", OwnerID: "7",
			CreatedAt: us("2025-03-04T05:06:07.891234567+01:00"), IdleSince: us("2025-03-04T08:06:07.891234567+01:00")},
		"MNP456": {Code: "MNP456", Name: "busy", PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdDM$aGFzaDM", OwnerID: "7",
			CreatedAt: us("2025-03-04T05:08:07.891234567+01:00"), IdleSince: us("2025-03-06T04:06:07.891234567Z")},
	}
	for code, w := range want {
		got, err := s.Room(ctx(t), code)
		require.NoError(t, err, code)
		assert.Equal(t, w, got, code)
	}
	quiet, err := s.Room(ctx(t), "XYZ789")
	require.NoError(t, err)
	assert.WithinRange(t, quiet.IdleSince, before.Add(-time.Microsecond), time.Now(),
		"saved without an idle time: idle from the import")

	// Owners' counts came along.
	assert.ErrorIs(t, s.Create(ctx(t), rooms.Room{Code: "NEW234", OwnerID: "7", CreatedAt: t0}, engine.CreateRules{MaxOwned: 2}),
		rooms.ErrTooManyRooms)

	// Tombstones came along, at their times (tried in time order, as
	// creates come: a create forgets tombstones older than its reuse time).
	tests := []struct {
		code    string
		deleted time.Time
	}{
		{"GHJ234", at(t, "2025-03-03T04:06:07.891234567Z")},
		{"DEF567", at(t, "2025-03-04T06:06:07.891234567+01:00")},
	}
	rules := engine.CreateRules{ReuseAfter: time.Hour}
	for _, tt := range tests {
		r := rooms.Room{Code: tt.code, OwnerID: "9", CreatedAt: tt.deleted.Add(time.Hour - 2*time.Microsecond)}
		assert.ErrorIs(t, s.Create(ctx(t), r, rules), rooms.ErrCodeTaken, tt.code)
		r.CreatedAt = tt.deleted.Add(time.Hour)
		assert.NoError(t, s.Create(ctx(t), r, rules), tt.code)
	}

	n, err = importDir(t, s, dir)
	require.NoError(t, err)
	assert.Zero(t, n, "the retired file is not read again")
}

func importTwice(t *testing.T, s *sqlstore.Store) {
	dir := dataDir(t, "rooms.v2.json")
	f, err := store.Open(dir)
	require.NoError(t, err)
	reg, found, err := f.Load()
	require.NoError(t, err)
	require.True(t, found)
	n, err := s.Import(ctx(t), reg) // and then the process died
	require.NoError(t, err)
	require.Equal(t, 3, n)
	require.NoError(t, f.Close())

	n, err = importDir(t, s, dir)
	require.NoError(t, err)
	assert.Zero(t, n)
	count, err := s.Count(ctx(t))
	require.NoError(t, err)
	assert.Equal(t, 3, count)
	assert.FileExists(t, filepath.Join(dir, store.RetiredName))
}

func importSkips(t *testing.T, s *sqlstore.Store) {
	mine := rooms.Room{Code: "ABC234", Name: "already here", PasswordHash: "h", OwnerID: "1", CreatedAt: t0, IdleSince: t0}
	require.NoError(t, s.Create(ctx(t), mine, engine.CreateRules{}))
	n, err := importDir(t, s, dataDir(t, "rooms.v2.json"))
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	got, err := s.Room(ctx(t), "ABC234")
	require.NoError(t, err)
	assert.Equal(t, mine, got, "the database's room wins")
}

func importV1(t *testing.T, s *sqlstore.Store) {
	before := time.Now()
	n, err := importDir(t, s, dataDir(t, "rooms.v1.json"))
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	got, err := s.Room(ctx(t), "QRS234")
	require.NoError(t, err)
	assert.Equal(t, "from version 1", got.Name)
	assert.Equal(t, at(t, "2024-01-02T03:04:05Z"), got.CreatedAt)
	assert.WithinRange(t, got.IdleSince, before.Add(-time.Microsecond), time.Now())
	idle, err := s.Idle(ctx(t), before.Add(-time.Second))
	require.NoError(t, err)
	assert.Empty(t, idle, "not swept at once")
}
