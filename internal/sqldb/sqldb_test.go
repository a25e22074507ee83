package sqldb_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
)

// TestOpen: on each backend Open answers with a migrated database whose
// calls fail as unavailable once it is closed.
func TestOpen(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			db := open(t, b.config(t))
			assert.Equal(t, b.name, db.Dialect())
			assert.Equal(t, 10*time.Second, db.Timeout())
			assert.Equal(t, []int64{1, 2}, versions(t, db, "test_schema_migrations"))
			require.NoError(t, db.Ping(ctx(t)))

			require.NoError(t, db.Close())
			assert.ErrorIs(t, db.Ping(ctx(t)), sqldb.ErrUnavailable)
			err := db.Gorm().WithContext(ctx(t)).Exec("INSERT INTO tags (name) VALUES ('x')").Error
			assert.ErrorIs(t, sqldb.Classify(ctx(t), err), sqldb.ErrUnavailable)
		})
	}
}

func TestDefaultTimeout(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.Timeout = 0
	assert.Equal(t, sqldb.DefaultTimeout, open(t, cfg).Timeout())
}

// TestBound: a call bound by Config.Timeout that runs out is unavailable
// and says whose deadline it was.
func TestBound(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.Timeout = 50 * time.Millisecond
	db := open(t, cfg)
	c, cancel := db.Bound(ctx(t))
	defer cancel()
	<-c.Done()
	err := sqldb.Classify(c, db.Gorm().WithContext(c).Exec("INSERT INTO tags (name) VALUES ('x')").Error)
	assert.ErrorIs(t, err, sqldb.ErrUnavailable)
	assert.ErrorIs(t, err, sqldb.ErrTimeout)
}

// TestOpenRefuses: a configuration Open cannot use is refused at start,
// naming what is wrong.
func TestOpenRefuses(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, cfg *sqldb.Config)
		want  string
	}{
		{"unknown scheme", func(_ *testing.T, cfg *sqldb.Config) { cfg.DatabaseURL = "mysql://x" }, "DATABASE_URL"},
		{"no data dir", func(_ *testing.T, cfg *sqldb.Config) { cfg.DataDir = "" }, "DATA_DIR is empty"},
		{"no file name", func(_ *testing.T, cfg *sqldb.Config) { cfg.FileName = "" }, "FileName"},
		{"no migrations", func(_ *testing.T, cfg *sqldb.Config) { cfg.Migrations.FS = nil }, "Migrations.FS"},
		{"version table is not an identifier", func(_ *testing.T, cfg *sqldb.Config) {
			cfg.Migrations.Table = "versions; DROP TABLE notes"
		}, "not an SQL identifier"},
		{"data dir is a file", func(t *testing.T, cfg *sqldb.Config) {
			cfg.DataDir = filepath.Join(t.TempDir(), "file")
			require.NoError(t, os.WriteFile(cfg.DataDir, nil, 0o600))
		}, "DATA_DIR "},
		{"database file is a directory", func(t *testing.T, cfg *sqldb.Config) {
			require.NoError(t, os.Mkdir(filepath.Join(cfg.DataDir, cfg.FileName), 0o700))
		}, "database file"},
		{"read-only data dir", func(t *testing.T, cfg *sqldb.Config) {
			if os.Geteuid() == 0 {
				t.Skip("root writes to read-only directories; run as another user to check this case")
			}
			require.NoError(t, os.Chmod(cfg.DataDir, 0o500))
			t.Cleanup(func() { _ = os.Chmod(cfg.DataDir, 0o700) }) // let TempDir remove it
		}, "must be writable"},
		{"misnamed migration", func(_ *testing.T, cfg *sqldb.Config) {
			fs := schema()
			fs["sqlite/notes.sql"] = fs["sqlite/0001_notes.sql"]
			cfg.Migrations.FS = fs
		}, "sqlite/notes.sql: name must start with a positive version number"},
		{"duplicate version", func(_ *testing.T, cfg *sqldb.Config) {
			fs := schema()
			fs["sqlite/0002_other.sql"] = fs["sqlite/0002_tags.sql"]
			cfg.Migrations.FS = fs
		}, "duplicate migration version 2"},
		{"failing migration", func(_ *testing.T, cfg *sqldb.Config) {
			fs := schema()
			fs["sqlite/0003_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE broken (")}
			cfg.Migrations.FS = fs
		}, "migration 0003_broken.sql"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := sqliteConfig(t)
			tt.setup(t, &cfg)
			_, err := sqldb.Open(context.Background(), cfg)
			assert.ErrorContains(t, err, tt.want)
			assert.NotErrorIs(t, err, sqldb.ErrUnavailable, "a mistake to fix, not an outage to wait out")
		})
	}
}

// TestSilentDatabaseTimesOut points Open at a server that accepts
// connections and never answers: it gives up after Config.Timeout, well
// before the driver's own 30 s connect timeout or the caller's deadline.
func TestSilentDatabaseTimesOut(t *testing.T) {
	c, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	start := time.Now()
	_, err := sqldb.Open(c, sqldb.Config{
		DatabaseURL: "postgres://u@" + sqldbtest.SilentServer(t) + "/db?sslmode=disable&connect_timeout=30",
		Timeout:     300 * time.Millisecond,
		Migrations:  migrations(schema()),
	})
	assert.ErrorIs(t, err, sqldb.ErrUnavailable)
	assert.ErrorIs(t, err, sqldb.ErrTimeout, "Open's own deadline fired")
	assert.NoError(t, c.Err(), "not the caller's")
	assert.Less(t, time.Since(start), 10*time.Second)
}

// TestSQLitePragmas checks that every pooled connection, not just the
// first, runs in WAL mode with a busy timeout and enforced foreign keys:
// without the first two concurrent writers fail with SQLITE_BUSY.
func TestSQLitePragmas(t *testing.T) {
	sqlDB, err := open(t, sqliteConfig(t)).Gorm().DB()
	require.NoError(t, err)

	var conns []*sql.Conn
	for range 3 { // hold several connections so that each is a distinct one
		c, err := sqlDB.Conn(ctx(t))
		require.NoError(t, err)
		conns = append(conns, c)
		var mode string
		var timeout, fk int
		require.NoError(t, c.QueryRowContext(ctx(t), "PRAGMA journal_mode").Scan(&mode))
		require.NoError(t, c.QueryRowContext(ctx(t), "PRAGMA busy_timeout").Scan(&timeout))
		require.NoError(t, c.QueryRowContext(ctx(t), "PRAGMA foreign_keys").Scan(&fk))
		assert.Equal(t, "wal", mode)
		assert.Equal(t, 5000, timeout)
		assert.Equal(t, 1, fk)
	}
	for _, c := range conns {
		require.NoError(t, c.Close())
	}
}

// TestSQLiteFilesArePrivate: the database holds password hashes, so the
// directory is 0700 and the files 0600, also when they existed before
// with wider modes.
func TestSQLiteFilesArePrivate(t *testing.T) {
	cfg := sqliteConfig(t)
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	require.NoError(t, os.Mkdir(cfg.DataDir, 0o755))
	file := filepath.Join(cfg.DataDir, cfg.FileName)
	mode := func(p string) os.FileMode {
		fi, err := os.Stat(p)
		require.NoError(t, err, p)
		return fi.Mode().Perm()
	}
	for range 2 { // fresh, then over files made wide in between
		db, err := sqldb.Open(context.Background(), cfg)
		require.NoError(t, err)
		require.NoError(t, db.Gorm().Exec("INSERT INTO tags (name) VALUES ('x') ON CONFLICT DO NOTHING").Error) // keeps the -wal and -shm files
		assert.Equal(t, os.FileMode(0o700), mode(cfg.DataDir))
		for _, f := range []string{file, file + "-wal", file + "-shm"} {
			assert.Equal(t, os.FileMode(0o600), mode(f), f)
		}
		require.NoError(t, db.Close())
		// SQLite removes its -wal and -shm files when the last connection
		// closes; an older version or a crash may have left them, wider.
		require.NoError(t, os.Chmod(cfg.DataDir, 0o755))
		require.NoError(t, os.Chmod(file, 0o644))
		for _, f := range []string{file + "-wal", file + "-shm"} {
			require.NoError(t, os.WriteFile(f, nil, 0o644))
			require.NoError(t, os.Chmod(f, 0o644))
		}
	}
}
