package sqlstore_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

// One instance writes a PostgreSQL database's history at a time: a second
// claim fails until the first is released, or its process ends.
func TestClaim(t *testing.T) {
	cfg := postgresConfig(t)
	first, second := open(t, cfg), open(t, cfg)
	release, err := first.Claim(ctx(t))
	require.NoError(t, err)
	_, err = second.Claim(ctx(t))
	require.ErrorIs(t, err, sqlstore.ErrClaimed)
	release()
	again, err := second.Claim(ctx(t))
	require.NoError(t, err, "free once released")
	again()
	require.NoError(t, first.Close())
}

// An SQLite file is claimed by the data directory's lock: Claim itself
// does nothing there.
func TestClaimSQLite(t *testing.T) {
	cfg := sqliteConfig(t)
	release, err := open(t, cfg).Claim(ctx(t))
	require.NoError(t, err)
	release()
	release2, err := open(t, cfg).Claim(ctx(t))
	assert.NoError(t, err)
	release2()
}
