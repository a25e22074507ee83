package sqldb_test

import (
	"context"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb"
)

// only returns the migrations of fs up to version 1.
func only1(fs fstest.MapFS) fstest.MapFS {
	return fstest.MapFS{"sqlite/0001_notes.sql": fs["sqlite/0001_notes.sql"], "postgres/0001_notes.sql": fs["postgres/0001_notes.sql"]}
}

// TestMigrate checks, on both backends, what a restart does to the schema.
func TestMigrate(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, cfg sqldb.Config)
	}{
		{"a second start applies nothing and keeps the data", func(t *testing.T, cfg sqldb.Config) {
			db, err := sqldb.Open(context.Background(), cfg)
			require.NoError(t, err)
			require.NoError(t, db.Gorm().Exec("INSERT INTO notes (body) VALUES ('kept')").Error)
			require.NoError(t, db.Close())

			db = open(t, cfg)
			assert.Equal(t, []int64{1, 2}, versions(t, db, cfg.Migrations.Table))
			var n int64
			require.NoError(t, db.Gorm().Raw("SELECT COUNT(*) FROM notes WHERE body = 'kept'").Scan(&n).Error)
			assert.EqualValues(t, 1, n)
		}},
		{"a new version applies on the next start", func(t *testing.T, cfg sqldb.Config) {
			all := cfg.Migrations.FS.(fstest.MapFS)
			cfg.Migrations.FS = only1(all)
			db, err := sqldb.Open(context.Background(), cfg)
			require.NoError(t, err)
			assert.Equal(t, []int64{1}, versions(t, db, cfg.Migrations.Table))
			require.NoError(t, db.Close())

			cfg.Migrations.FS = all
			assert.Equal(t, []int64{1, 2}, versions(t, open(t, cfg), cfg.Migrations.Table))
		}},
		{"a failing migration leaves the schema where it was", func(t *testing.T, cfg sqldb.Config) {
			all := cfg.Migrations.FS.(fstest.MapFS)
			cfg.Migrations.FS = only1(all)
			require.NoError(t, open(t, cfg).Close())

			all["sqlite/0003_broken.sql"] = &fstest.MapFile{Data: []byte("CREATE TABLE broken (")}
			all["postgres/0003_broken.sql"] = all["sqlite/0003_broken.sql"]
			cfg.Migrations.FS = all
			_, err := sqldb.Open(context.Background(), cfg)
			require.ErrorContains(t, err, "migration 0003_broken.sql")

			cfg.Migrations.FS = only1(all)
			db := open(t, cfg)
			assert.Equal(t, []int64{1}, versions(t, db, cfg.Migrations.Table))
			assert.Error(t, db.Gorm().Exec("SELECT * FROM tags").Error, "0002 was rolled back with 0003")
		}},
		{"servers with their own version tables share a database", func(t *testing.T, cfg sqldb.Config) {
			other := cfg
			other.Migrations = sqldb.Migrations{Table: "other_schema_migrations", LockID: 0x6f74686572, FS: fstest.MapFS{
				"sqlite/0001_other.sql":   {Data: []byte("CREATE TABLE other (id INTEGER PRIMARY KEY)")},
				"postgres/0001_other.sql": {Data: []byte("CREATE TABLE other (id BIGINT PRIMARY KEY)")},
			}}
			a, b := open(t, cfg), open(t, other)
			assert.Equal(t, []int64{1, 2}, versions(t, a, cfg.Migrations.Table))
			assert.Equal(t, []int64{1}, versions(t, b, other.Migrations.Table))
			require.NoError(t, a.Gorm().Exec("SELECT * FROM other").Error, "the second server's version 1 ran, though the first's was recorded")
		}},
		{"instances starting together migrate once", func(t *testing.T, cfg sqldb.Config) {
			const n = 5
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { // ends after one Open
					db, err := sqldb.Open(context.Background(), cfg)
					if err == nil {
						err = db.Close()
					}
					errs[i] = err
				})
			}
			wg.Wait()
			for _, err := range errs {
				assert.NoError(t, err)
			}
			assert.Equal(t, []int64{1, 2}, versions(t, open(t, cfg), cfg.Migrations.Table))
		}},
	}
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.config(t)) })
			}
		})
	}
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(fs fstest.MapFS)
		want   string // empty: no error
	}{
		{"both dialects alike", func(fstest.MapFS) {}, ""},
		{"a version one dialect lacks", func(fs fstest.MapFS) { delete(fs, "postgres/0002_tags.sql") },
			"sqlite has versions [1 2], postgres [1]"},
		{"misnamed", func(fs fstest.MapFS) { fs["postgres/two.sql"] = fs["postgres/0002_tags.sql"] }, "postgres/two.sql"},
		{"zero version", func(fs fstest.MapFS) { fs["sqlite/0000_none.sql"] = fs["sqlite/0002_tags.sql"] }, "sqlite/0000_none.sql"},
		{"duplicate version", func(fs fstest.MapFS) { fs["sqlite/02_again.sql"] = fs["sqlite/0002_tags.sql"] }, "duplicate migration version 2"},
		{"no directory for a dialect", func(fs fstest.MapFS) {
			delete(fs, "postgres/0001_notes.sql")
			delete(fs, "postgres/0002_tags.sql")
		}, "migrations"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := schema()
			tt.change(fs)
			err := migrations(fs).Check()
			if tt.want == "" {
				assert.NoError(t, err)
			} else {
				assert.ErrorContains(t, err, tt.want)
			}
		})
	}
}
