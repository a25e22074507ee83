package store_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/internal/sqldb/sqldbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/dbtest"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

func TestMain(m *testing.M) {
	// database/sql and pgx keep a connection opener per pool; every
	// store is closed by its test, so nothing may be left behind.
	goleak.VerifyTestMain(m)
}

// TestContract runs the same behaviours against every backend.
func TestContract(t *testing.T) {
	cases := []struct {
		name string
		run  func(t *testing.T, s *store.Store)
	}{
		{"create returns the stored user", func(t *testing.T, s *store.Store) {
			before := time.Now().Add(-time.Second)
			u, err := s.Create(ctx(t), "Alice", "hash1")
			require.NoError(t, err)
			assert.Positive(t, u.ID)
			assert.Equal(t, "Alice", u.Name)
			assert.Equal(t, "hash1", u.PasswordHash)
			assert.WithinRange(t, u.CreatedAt, before, time.Now().Add(time.Second))

			got, err := s.ByName(ctx(t), "Alice")
			require.NoError(t, err)
			assert.Equal(t, u, got, "read back equals what Create returned")
		}},
		{"ids are distinct", func(t *testing.T, s *store.Store) {
			a, err := s.Create(ctx(t), "first", "h")
			require.NoError(t, err)
			b, err := s.Create(ctx(t), "second", "h")
			require.NoError(t, err)
			assert.NotEqual(t, a.ID, b.ID)
		}},
		{"duplicate in any case is taken", func(t *testing.T, s *store.Store) {
			_, err := s.Create(ctx(t), "Alice", "h")
			require.NoError(t, err)
			for _, name := range []string{"Alice", "alice", "ALICE", "aLiCe"} {
				_, err := s.Create(ctx(t), name, "other")
				assert.ErrorIs(t, err, users.ErrNameTaken, name)
			}
		}},
		{"get by name ignores case and keeps the registered spelling", func(t *testing.T, s *store.Store) {
			_, err := s.Create(ctx(t), "Bob.Smith", "h")
			require.NoError(t, err)
			got, err := s.ByName(ctx(t), "bob.smith")
			require.NoError(t, err)
			assert.Equal(t, "Bob.Smith", got.Name)
		}},
		{"unknown name is not found", func(t *testing.T, s *store.Store) {
			_, err := s.ByName(ctx(t), "nobody")
			assert.ErrorIs(t, err, users.ErrNotFound)
		}},
		{"update hash", func(t *testing.T, s *store.Store) {
			u, err := s.Create(ctx(t), "carol", "old")
			require.NoError(t, err)
			require.NoError(t, s.UpdateHash(ctx(t), u.ID, "new"))
			got, err := s.ByName(ctx(t), "carol")
			require.NoError(t, err)
			assert.Equal(t, "new", got.PasswordHash)
			assert.Equal(t, u.CreatedAt, got.CreatedAt)
		}},
		{"update hash of unknown id", func(t *testing.T, s *store.Store) {
			assert.ErrorIs(t, s.UpdateHash(ctx(t), 999999, "x"), users.ErrNotFound)
		}},
		{"concurrent duplicates: exactly one wins", func(t *testing.T, s *store.Store) {
			const n = 50
			var (
				wg          sync.WaitGroup
				mu          sync.Mutex
				ok, taken   int
				otherErrors []error
			)
			start := make(chan struct{})
			for i := range n {
				wg.Add(1)
				go func() { // ends after one Create
					defer wg.Done()
					<-start
					_, err := s.Create(context.Background(), []string{"dave", "Dave", "DAVE"}[i%3], "h")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case errors.Is(err, users.ErrNameTaken):
						taken++
					default:
						otherErrors = append(otherErrors, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			assert.Empty(t, otherErrors)
			assert.Equal(t, 1, ok)
			assert.Equal(t, n-1, taken)
		}},
		{"closed store is unavailable", func(t *testing.T, s *store.Store) {
			require.NoError(t, s.Close())
			_, err := s.ByName(ctx(t), "alice")
			assert.ErrorIs(t, err, users.ErrUnavailable)
			_, err = s.Create(ctx(t), "alice", "h")
			assert.ErrorIs(t, err, users.ErrUnavailable)
			assert.ErrorIs(t, s.Ping(ctx(t)), users.ErrUnavailable)
		}},
	}
	for _, b := range dbtest.Backends() {
		t.Run(b.Name, func(t *testing.T) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) { c.run(t, b.Open(t)) })
			}
		})
	}
}

// TestMigrationsAreIdempotent starts twice on the same database: the
// second start must not re-run a migration (CREATE TABLE would fail) and
// must keep the data.
func TestMigrationsAreIdempotent(t *testing.T) {
	configs := map[string]func(t *testing.T) store.Config{
		"sqlite":   func(t *testing.T) store.Config { return store.Config{DataDir: t.TempDir()} },
		"postgres": func(t *testing.T) store.Config { return store.Config{DatabaseURL: sqldbtest.PostgresURL(t)} },
	}
	for name, cfg := range configs {
		t.Run(name, func(t *testing.T) {
			c := cfg(t)
			for i := range 2 {
				s, err := store.Open(context.Background(), c)
				require.NoError(t, err, "start %d", i+1)
				if i == 0 {
					_, err = s.Create(ctx(t), "survivor", "h")
					require.NoError(t, err)
				}
				_, err = s.ByName(ctx(t), "survivor")
				assert.NoError(t, err, "start %d", i+1)
				require.NoError(t, s.Close())
			}
		})
	}
}

func TestOpenRejectsUnknownScheme(t *testing.T) {
	_, err := store.Open(context.Background(), store.Config{DatabaseURL: "mysql://x"})
	assert.ErrorContains(t, err, "DATABASE_URL")
}

func ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}
