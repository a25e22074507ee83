package main

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/throttle"
)

// stack is the engine with what it stands on: the stores cfg selects,
// the limiters of wrong passwords, and the background work that shared
// stores need.
type stack struct {
	engine *engine.Engine
	// claim is held on a PostgreSQL database that only this instance
	// writes history to; it holds nothing otherwise.
	claim *sqlstore.Claim
	// limiters count wrong room passwords per user and room, per user and
	// per room (api.Config's Limiter, UserLimiter, RoomLimiter).
	limiters [3]api.Limiter
	// close closes the stores once the engine is closed.
	close func()
}

// The throttles of wrong room passwords, per minute: per user and room,
// per user, and per room across users.
var throttles = [3]struct {
	max    int
	bucket string
}{{5, "chat_throttle_user_room"}, {20, "chat_throttle_user"}, {50, "chat_throttle_room"}}

// openStack opens the stores cfg selects, imports a registry file left
// by an earlier version, and returns the engine over them.
func openStack(ctx context.Context, cfg config.Config, log *zap.Logger) (*stack, error) {
	if cfg.Shared() {
		return openShared(ctx, cfg, log)
	}
	// One process owns a data directory at a time: the lock also keeps
	// two instances from sequencing the same SQLite history.
	dir, err := store.Open(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	retain := engine.Retained(cfg.HistorySize, cfg.MaxQueueSize)
	db, err := sqlstore.Open(ctx, sqlstore.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Timeout: cfg.DBTimeout, Retain: retain})
	if err != nil {
		dir.Close()
		return nil, err
	}
	claim, err := db.Claim(ctx)
	if err != nil {
		_ = db.Close()
		dir.Close()
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
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
		return nil, err
	}
	var history engine.Log = db
	if cfg.HistoryStore == "memory" {
		history = memstore.NewLog(retain)
	}
	eng, err := engine.New(engineConfig(cfg, log), db, history)
	if err != nil {
		closeAll()
		return nil, err
	}
	st := &stack{engine: eng, claim: claim, close: closeAll}
	for i, th := range throttles {
		st.limiters[i] = throttle.New(th.max, time.Minute)
	}
	return st, nil
}

// engineConfig is the engine's configuration, but for presence.
func engineConfig(cfg config.Config, log *zap.Logger) engine.Config {
	return engine.Config{
		CodeLength: cfg.ShortCodeLength, HistorySize: cfg.HistorySize,
		QueueSize: cfg.MaxQueueSize, IdleTTL: cfg.RoomIdleTTL,
		// A room token names its room by code only: keep a deleted room's
		// code unused until every token for it has expired.
		ReuseAfter:      cfg.RoomTokenDuration + token.Leeway + time.Minute,
		MaxRoomsPerUser: cfg.MaxRoomsPerUser, MaxStreamsPerUser: cfg.MaxStreamsPerUser,
		MaxRoomMembers: cfg.MaxRoomMembers, PresenceWindow: cfg.PresenceWindow,
		PresenceTTL: presenceTTL,
		Report:      func(err error) { log.Error("engine", zap.Error(err)) },
	}
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
