package sqlstore_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/contract"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

var (
	_ engine.Registry = (*sqlstore.Store)(nil)
	_ engine.Log      = (*sqlstore.Store)(nil)
)

func TestRegistryContract(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			contract.Registry(t, func(t *testing.T) engine.Registry { return open(t, b.config(t)) })
		})
	}
}

func TestLogContract(t *testing.T) {
	for _, b := range backends() {
		t.Run(b.name, func(t *testing.T) {
			contract.Log(t, func(t *testing.T, retain int) (engine.Log, func() engine.Log) {
				cfg := b.config(t)
				cfg.Retain = retain
				cur := open(t, cfg)
				reopen := func() engine.Log {
					require.NoError(t, cur.Close())
					cur = open(t, cfg) // closed by its own cleanup
					return cur
				}
				return cur, reopen
			})
		})
	}
}
