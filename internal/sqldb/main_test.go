package sqldb_test

import (
	"context"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
)

func TestMain(m *testing.M) {
	// database/sql and pgx keep a connection opener per pool; every pool
	// is closed by its test, so nothing may be left behind.
	goleak.VerifyTestMain(m)
}

// schema is a two-version schema in both dialects, in the layout a
// server's migrations package embeds.
func schema() fstest.MapFS {
	return fstest.MapFS{
		"sqlite/0001_notes.sql":   {Data: []byte("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL);\nCREATE UNIQUE INDEX notes_body_idx ON notes (body);")},
		"sqlite/0002_tags.sql":    {Data: []byte("CREATE TABLE tags (name TEXT PRIMARY KEY)")},
		"postgres/0001_notes.sql": {Data: []byte("CREATE TABLE notes (id BIGSERIAL PRIMARY KEY, body TEXT NOT NULL);\nCREATE UNIQUE INDEX notes_body_idx ON notes (body);")},
		"postgres/0002_tags.sql":  {Data: []byte("CREATE TABLE tags (name TEXT PRIMARY KEY)")},
	}
}

// backend makes the configuration of a new, empty database, migrated to
// schema() when opened.
type backend struct {
	name   string
	config func(t testing.TB) sqldb.Config
}

func backends() []backend {
	return []backend{{sqldb.SQLite, sqliteConfig}, {sqldb.Postgres, postgresConfig}}
}

func migrations(fs fstest.MapFS) sqldb.Migrations {
	return sqldb.Migrations{FS: fs, Table: "test_schema_migrations", LockID: 0x74657374}
}

func sqliteConfig(t testing.TB) sqldb.Config {
	return sqldb.Config{DataDir: t.TempDir(), FileName: "test.db", Timeout: 10 * time.Second, Migrations: migrations(schema())}
}

func postgresConfig(t testing.TB) sqldb.Config {
	return sqldb.Config{DatabaseURL: sqldbtest.PostgresURL(t), Timeout: 10 * time.Second, Migrations: migrations(schema())}
}

// open opens cfg, closing the pool at the end of the test.
func open(t testing.TB, cfg sqldb.Config) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	return db
}

// versions reads the recorded migration versions.
func versions(t testing.TB, db *sqldb.DB, table string) []int64 {
	t.Helper()
	var v []int64
	require.NoError(t, db.Gorm().Raw("SELECT version FROM "+table+" ORDER BY version").Scan(&v).Error)
	return v
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}
