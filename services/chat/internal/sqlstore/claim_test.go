package sqlstore_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

// One instance writes a PostgreSQL database's history at a time: a second
// claim fails until the first is released, or its session ends, which
// Check then reports.
func TestClaim(t *testing.T) {
	cfg := postgresConfig(t)
	first, second := open(t, cfg), open(t, cfg)
	claim, err := first.Claim(ctx(t))
	require.NoError(t, err)
	require.NoError(t, claim.Check(ctx(t)))
	_, err = second.Claim(ctx(t))
	require.ErrorIs(t, err, sqlstore.ErrClaimed)
	claim.Release()
	again, err := second.Claim(ctx(t))
	require.NoError(t, err, "free once released")

	// The holder's session ends (a failover, a cut connection): the claim
	// is free for others, and its holder learns so.
	var pid int
	require.NoError(t, second.DB().WithContext(ctx(t)).Raw(`SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND objsubid = 1`).Scan(&pid).Error)
	require.NotZero(t, pid)
	require.NoError(t, first.DB().WithContext(ctx(t)).Exec("SELECT pg_terminate_backend(?)", pid).Error)
	assert.ErrorIs(t, again.Check(ctx(t)), sqlstore.ErrClaimLost)
	// pg_terminate_backend signals the session; it ends a moment later.
	var third *sqlstore.Claim
	require.Eventually(t, func() bool {
		third, err = first.Claim(ctx(t))
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "free once the session ended: %v", err)
	third.Release()
	again.Release()
}

// An SQLite file is claimed by the data directory's lock: Claim itself
// holds nothing there.
func TestClaimSQLite(t *testing.T) {
	cfg := sqliteConfig(t)
	claim, err := open(t, cfg).Claim(ctx(t))
	require.NoError(t, err)
	require.NoError(t, claim.Check(ctx(t)))
	claim.Release()
	other, err := open(t, cfg).Claim(ctx(t))
	assert.NoError(t, err)
	other.Release()
}
