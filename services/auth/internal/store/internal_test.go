package store

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSQLitePragmas checks that every pooled connection, not just the
// first, runs in WAL mode with a busy timeout: without them concurrent
// registrations fail with SQLITE_BUSY instead of a clean 409.
func TestSQLitePragmas(t *testing.T) {
	s, err := Open(context.Background(), Config{DataDir: t.TempDir(), Timeout: 5 * time.Second})
	require.NoError(t, err)
	defer s.Close()
	sqlDB, err := s.db.DB()
	require.NoError(t, err)

	ctx := t.Context()
	var conns []interface{ Close() error }
	for range 3 { // hold several connections so that each is a distinct one
		c, err := sqlDB.Conn(ctx)
		require.NoError(t, err)
		conns = append(conns, c)
		var mode string
		var timeout int
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode))
		require.NoError(t, c.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&timeout))
		assert.Equal(t, "wal", mode)
		assert.Equal(t, 5000, timeout)
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
}

// TestMigrationsRecordVersions opens the same database twice on each
// backend: the second start applies nothing and keeps the recorded
// versions.
func TestMigrationsRecordVersions(t *testing.T) {
	all, err := load("sqlite")
	require.NoError(t, err)
	pg, err := load("postgres")
	require.NoError(t, err)
	require.Equal(t, len(all), len(pg), "every migration exists for both dialects")
	for i := range all {
		assert.Equal(t, all[i].version, pg[i].version)
	}

	dir := t.TempDir()
	for range 2 {
		s, err := Open(context.Background(), Config{DataDir: dir})
		require.NoError(t, err)
		var versions []int64
		require.NoError(t, s.db.Raw("SELECT version FROM schema_migrations ORDER BY version").Scan(&versions).Error)
		assert.Equal(t, []int64{1}, versions)
		require.NoError(t, s.Close())
	}
}
