package sqlstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456000, time.UTC)

func testRoom(code string) rooms.Room {
	return rooms.Room{Code: code, Name: "n", PasswordHash: "h", OwnerID: "u1", CreatedAt: t0, IdleSince: t0}
}

// TestOpenFailsClearly: a data directory Open cannot use is refused at
// start, naming what is wrong.
func TestOpenFailsClearly(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T) (cfg sqlstore.Config, want string)
	}{
		{"read-only data dir", func(t *testing.T) (sqlstore.Config, string) {
			if os.Geteuid() == 0 {
				t.Skip("root writes to read-only directories; run as another user to check this case")
			}
			dir := filepath.Join(t.TempDir(), "ro")
			require.NoError(t, os.Mkdir(dir, 0o500))
			return sqlstore.Config{DataDir: dir, Retain: 1}, "DATA_DIR " + dir + " must be writable"
		}},
		{"database in a read-only data dir", func(t *testing.T) (sqlstore.Config, string) {
			if os.Geteuid() == 0 {
				t.Skip("root writes to read-only directories; run as another user to check this case")
			}
			cfg := sqlstore.Config{DataDir: filepath.Join(t.TempDir(), "ro"), Retain: 1}
			s, err := sqlstore.Open(context.Background(), cfg)
			require.NoError(t, err)
			require.NoError(t, s.Close())
			require.NoError(t, os.Chmod(cfg.DataDir, 0o500))
			t.Cleanup(func() { _ = os.Chmod(cfg.DataDir, 0o700) }) // let TempDir remove it
			return cfg, "DATA_DIR " + cfg.DataDir + " must be writable"
		}},
		{"data dir is a file", func(t *testing.T) (sqlstore.Config, string) {
			file := filepath.Join(t.TempDir(), "file")
			require.NoError(t, os.WriteFile(file, nil, 0o600))
			return sqlstore.Config{DataDir: file, Retain: 1}, "DATA_DIR " + file
		}},
		{"database file is a directory", func(t *testing.T) (sqlstore.Config, string) {
			dir := t.TempDir()
			require.NoError(t, os.Mkdir(filepath.Join(dir, sqlstore.FileName), 0o700))
			return sqlstore.Config{DataDir: dir, Retain: 1}, "database file"
		}},
		{"no data dir", func(*testing.T) (sqlstore.Config, string) {
			return sqlstore.Config{Retain: 1}, "DATA_DIR is empty"
		}},
		{"unknown scheme", func(*testing.T) (sqlstore.Config, string) {
			return sqlstore.Config{DatabaseURL: "mysql://x", Retain: 1}, "DATABASE_URL"
		}},
		{"no retention", func(t *testing.T) (sqlstore.Config, string) {
			return sqlstore.Config{DataDir: t.TempDir()}, "Retain"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, want := tt.setup(t)
			_, err := sqlstore.Open(context.Background(), cfg)
			assert.ErrorContains(t, err, want)
		})
	}
}

// TestSilentDatabaseTimesOut points the store at a server that accepts
// connections and never answers: Open gives up after Config.Timeout
// instead of the driver's own, much longer, connect timeout.
func TestSilentDatabaseTimesOut(t *testing.T) {
	start := time.Now()
	_, err := sqlstore.Open(ctx(t), sqlstore.Config{
		DatabaseURL: "postgres://u@" + sqldbtest.SilentServer(t) + "/db?sslmode=disable",
		Timeout:     300 * time.Millisecond, Retain: 1,
	})
	assert.ErrorIs(t, err, rooms.ErrUnavailable)
	assert.ErrorIs(t, err, sqlstore.ErrTimeout)
	assert.Less(t, time.Since(start), 5*time.Second)
}

// TestReopen checks, on both backends, what survives a restart: the
// schema is not migrated twice, the epoch stays, and the registry is
// intact.
func TestReopen(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			s := open(t, cfg)
			epoch := s.Epoch()
			assert.Regexp(t, `^[0-9a-f]{16}$`, epoch)
			require.NoError(t, s.Create(ctx(t), testRoom("KEEP23"), engine.CreateRules{}))
			require.NoError(t, s.Create(ctx(t), testRoom("GONE23"), engine.CreateRules{}))
			require.NoError(t, s.Delete(ctx(t), "GONE23", "u1", t0.Add(time.Hour)))
			require.NoError(t, s.Close())

			for i := range 2 {
				s := open(t, cfg)
				assert.Equal(t, epoch, s.Epoch(), "start %d", i+2)
				got, err := s.Room(ctx(t), "KEEP23")
				require.NoError(t, err)
				assert.Equal(t, testRoom("KEEP23"), got)
				again := testRoom("GONE23")
				again.CreatedAt = t0.Add(90 * time.Minute)
				assert.ErrorIs(t, s.Create(ctx(t), again, engine.CreateRules{ReuseAfter: time.Hour}), rooms.ErrCodeTaken,
					"the tombstone survived")
				require.NoError(t, s.Close())
			}
			assert.NotEqual(t, epoch, open(t, b.config(t)).Epoch(), "another database, another epoch")
		})
	}
}

// TestRetentionTrims: beyond the contract's "at least Retain", the log
// keeps at most Retain plus one trimming interval.
func TestRetentionTrims(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			cfg := b.config(t)
			cfg.Retain = 10
			s := open(t, cfg)
			for seq := uint64(1); seq <= 300; seq++ {
				require.NoError(t, s.Append(ctx(t), []rooms.Message{{Room: "TRIM23", Seq: seq, SentAt: t0}}))
			}
			got, err := s.Since(ctx(t), "TRIM23", 0, 0)
			require.NoError(t, err)
			assert.GreaterOrEqual(t, len(got), 10)
			assert.LessOrEqual(t, len(got), 10+63)
			assert.Equal(t, uint64(300), got[len(got)-1].Seq)
		})
	}
}

// TestClosedStoreIsUnavailable: every call on a closed store fails with
// rooms.ErrUnavailable, which the transport answers with "try again".
func TestClosedStoreIsUnavailable(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.config(t))
			require.NoError(t, s.Close())
			_, err := s.Room(ctx(t), "ABC234")
			assert.ErrorIs(t, err, rooms.ErrUnavailable, "Room")
			assert.ErrorIs(t, s.Create(ctx(t), testRoom("ABC234"), engine.CreateRules{}), rooms.ErrUnavailable, "Create")
			assert.ErrorIs(t, s.Touch(ctx(t), "ABC234", t0), rooms.ErrUnavailable, "Touch")
			assert.ErrorIs(t, s.Delete(ctx(t), "ABC234", "u1", t0), rooms.ErrUnavailable, "Delete")
			_, err = s.DeleteIdle(ctx(t), "ABC234", t0, t0)
			assert.ErrorIs(t, err, rooms.ErrUnavailable, "DeleteIdle")
			_, err = s.Idle(ctx(t), t0)
			assert.ErrorIs(t, err, rooms.ErrUnavailable, "Idle")
			_, err = s.Count(ctx(t))
			assert.ErrorIs(t, err, rooms.ErrUnavailable, "Count")
			assert.ErrorIs(t, s.Append(ctx(t), []rooms.Message{{Room: "ABC234", Seq: 1}}), rooms.ErrUnavailable, "Append")
			_, err = s.Head(ctx(t), "ABC234")
			assert.ErrorIs(t, err, rooms.ErrUnavailable, "Head")
			_, err = s.Since(ctx(t), "ABC234", 0, 0)
			assert.ErrorIs(t, err, rooms.ErrUnavailable, "Since")
			assert.ErrorIs(t, s.Drop(ctx(t), "ABC234"), rooms.ErrUnavailable, "Drop")
			assert.ErrorIs(t, s.Ping(ctx(t)), rooms.ErrUnavailable, "Ping")
		})
	}
}

// TestTwoInstances: two stores on one PostgreSQL database, as two chat
// instances would be, still keep the owner limit and the sequence.
func TestTwoInstances(t *testing.T) {
	cfg := postgresConfig(t)
	a, b := open(t, cfg), open(t, cfg)
	require.Equal(t, a.Epoch(), b.Epoch(), "one database, one epoch")
	stores := []*sqlstore.Store{a, b}

	var (
		wg                sync.WaitGroup
		mu                sync.Mutex
		created, appended int
		unexpected        []error
		rules             = engine.CreateRules{MaxOwned: 3}
		start             = make(chan struct{})
		tally             = func(err error, ok *int, sentinel error) {
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				*ok++
			case !errors.Is(err, sentinel):
				unexpected = append(unexpected, err)
			}
		}
	)
	for i := range 20 {
		wg.Add(1)
		go func() { // ends after one Create and one Append
			defer wg.Done()
			<-start
			s := stores[i%2]
			tally(s.Create(ctx(t), rooms.Room{Code: fmt.Sprintf("TWO%03d", i), OwnerID: "u1", CreatedAt: t0, IdleSince: t0},
				rules), &created, rooms.ErrTooManyRooms)
			tally(s.Append(ctx(t), []rooms.Message{{Room: "TWO234", Seq: 1, SentAt: t0}}), &appended, rooms.ErrSeqConflict)
		}()
	}
	close(start)
	wg.Wait()
	assert.Empty(t, unexpected)
	assert.Equal(t, 3, created)
	assert.Equal(t, 1, appended)
}

// TestAppendRacesAnotherWriter holds another writer's transaction open
// with the room's next message in it, so that Append reads the old head
// and then meets that writer: it must answer rooms.ErrSeqConflict, not a
// raw key violation, once the other commits. On PostgreSQL this is the
// primary key path; on SQLite Append waits for the write lock and sees
// the new head.
func TestAppendRacesAnotherWriter(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.config(t))
			require.NoError(t, s.Append(ctx(t), []rooms.Message{{Room: "RACE23", Seq: 1, SentAt: t0}}))

			other := s.DB().WithContext(ctx(t)).Begin()
			require.NoError(t, other.Error)
			chunk := sqlstore.EncodeChunk([]rooms.Message{{Room: "RACE23", Seq: 2, SentAt: t0, Body: "other"}})
			require.NoError(t, other.Exec(`INSERT INTO message_chunks (room, first_seq, last_seq, data)
				VALUES ('RACE23', 2, 2, ?)`, chunk).Error)

			done := make(chan error, 1)
			go func() { // ends when Append returns, after other commits
				done <- s.Append(ctx(t), []rooms.Message{{Room: "RACE23", Seq: 2, SentAt: t0, Body: "mine"}})
			}()
			waitBlocked(t, s, b.name)
			require.NoError(t, other.Commit().Error)
			assert.ErrorIs(t, <-done, rooms.ErrSeqConflict)

			got, err := s.Since(ctx(t), "RACE23", 1, 0)
			require.NoError(t, err)
			require.Len(t, got, 1)
			assert.Equal(t, "other", got[0].Body)
		})
	}
}

// waitBlocked returns once Append waits on the other transaction: on
// PostgreSQL when a lock is awaited; SQLite cannot tell, so it waits a
// while instead (the outcome is the same either way, only the path taken
// differs).
func waitBlocked(t *testing.T, s *sqlstore.Store, backend string) {
	t.Helper()
	if backend != "postgres" {
		time.Sleep(100 * time.Millisecond)
		return
	}
	require.Eventually(t, func() bool {
		var waiting int64
		err := s.DB().Raw("SELECT count(*) FROM pg_locks WHERE NOT granted").Scan(&waiting).Error
		return err == nil && waiting > 0
	}, 10*time.Second, 5*time.Millisecond)
}

// A create forgets tombstones past their reuse time, so the table holds
// only those that still protect a code.
func TestTombstonesArePruned(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			s := open(t, b.config(t))
			rules := engine.CreateRules{ReuseAfter: time.Hour}
			for i, code := range []string{"OLD234", "OLD567", "NEW234"} {
				at := t0.Add(time.Duration(i) * 30 * time.Minute)
				require.NoError(t, s.Create(ctx(t), rooms.Room{Code: code, OwnerID: "u", CreatedAt: at, IdleSince: at}, rules))
				require.NoError(t, s.Delete(ctx(t), code, "u", at))
			}
			count := func() int64 {
				var n int64
				require.NoError(t, s.DB().WithContext(ctx(t)).Raw("SELECT COUNT(*) FROM tombstones").Scan(&n).Error)
				return n
			}
			require.Equal(t, int64(2), count(), "NEW234's create (60 min) forgot OLD234's (0 min)")
			later := t0.Add(100 * time.Minute) // OLD567 (30 min) is past its hour too
			require.NoError(t, s.Create(ctx(t), rooms.Room{Code: "ANY234", OwnerID: "v", CreatedAt: later, IdleSince: later}, rules))
			assert.Equal(t, int64(1), count(), "only NEW234's (60 min) still protects its code")
			assert.ErrorIs(t, s.Create(ctx(t), rooms.Room{Code: "NEW234", OwnerID: "v", CreatedAt: later, IdleSince: later}, rules),
				rooms.ErrCodeTaken)
		})
	}
}
