package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/pkg/token"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
)

// openEngine opens the stores cfg selects, imports a registry file left
// by an earlier version, and returns the engine over them with the
// function that closes the stores once the engine is closed.
func openEngine(ctx context.Context, cfg config.Config, log *zap.Logger) (*engine.Engine, *sqlstore.Claim, func(), error) {
	// One process owns a data directory at a time: the lock also keeps
	// two instances from sequencing the same SQLite history.
	dir, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, nil, nil, err
	}
	retain := engine.Retained(cfg.HistorySize, cfg.MaxQueueSize)
	db, err := sqlstore.Open(ctx, sqlstore.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Timeout: cfg.DBTimeout, Retain: retain})
	if err != nil {
		dir.Close()
		return nil, nil, nil, err
	}
	claim, err := db.Claim(ctx)
	if err != nil {
		_ = db.Close()
		dir.Close()
		return nil, nil, nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	closeAll := func() {
		claim.Release()
		if err := db.Close(); err != nil {
			log.Warn("close database", zap.Error(err))
		}
		dir.Close()
	}
	if err := importRegistry(ctx, dir, db, log); err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	var history engine.Log = db
	if cfg.HistoryStore == "memory" {
		history = memstore.NewLog(retain)
	}
	eng, err := engine.New(engine.Config{
		CodeLength: cfg.ShortCodeLength, HistorySize: cfg.HistorySize,
		QueueSize: cfg.MaxQueueSize, IdleTTL: cfg.RoomIdleTTL,
		// A room token names its room by code only: keep a deleted room's
		// code unused until every token for it has expired.
		ReuseAfter:      cfg.RoomTokenDuration + token.Leeway + time.Minute,
		MaxRoomsPerUser: cfg.MaxRoomsPerUser, MaxStreamsPerUser: cfg.MaxStreamsPerUser,
		Report: func(err error) { log.Error("engine", zap.Error(err)) },
	}, db, history)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return eng, claim, closeAll, nil
}

// importRegistry moves the rooms of a registry file written by an earlier
// version (rooms.json) into the database, once: the file is renamed after
// the import, which skips rooms already present, so a crash in between
// loses nothing and imports nothing twice.
func importRegistry(ctx context.Context, dir *store.File, db *sqlstore.Store, log *zap.Logger) error {
	n, err := db.ImportFile(ctx, dir)
	if err != nil {
		return fmt.Errorf("import %s: %w", store.FileName, err)
	}
	if n > 0 {
		log.Info("imported rooms", zap.Int("rooms", n), zap.String("renamed_to", store.RetiredName))
	}
	return nil
}

// claimCheckEvery is how often the service confirms that it still holds
// its database (see sqlstore.Claim).
const claimCheckEvery = 5 * time.Second

// keepClaim checks the claim until ctx ends, and returns ErrClaimLost's
// error as soon as a check fails: the service must stop before another
// instance's writes and its own collide. The caller owns the goroutine
// that runs it.
func keepClaim(ctx context.Context, claim *sqlstore.Claim) error {
	t := time.NewTicker(claimCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := claim.Check(ctx); err != nil && ctx.Err() == nil {
				return fmt.Errorf("DATABASE_URL: %w", err)
			}
		}
	}
}
