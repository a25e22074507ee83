package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/natsstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/sqlstore"
)

// presenceTTL is how long the users of an instance that vanished stay
// listed: its presence lease, which a live instance renews three times
// per lease.
const presenceTTL = 15 * time.Second

// The JetStream names the shared mode uses. Instances that share rooms
// must use the same.
const (
	historyStream  = "CHAT_HISTORY"
	historySubject = "chat.history"
)

// openShared opens the stores of the shared mode: rooms in the SQL
// database that every instance uses (PostgreSQL, or one SQLite file on
// one machine), history, presence and the password throttles on NATS
// JetStream. No instance owns the data directory or the database: none
// takes the directory's lock or the database's claim.
func openShared(ctx context.Context, cfg config.Config, log *zap.Logger) (*stack, error) {
	id := cfg.InstanceID
	if id == "" {
		id = instanceID()
	}
	log = log.With(zap.String("instance", id))
	where := "NATS_URL " + cfg.Masked().NATSURL
	nc, js, err := natsstore.Connect(ctx, natsstore.ConnConfig{
		URLs: cfg.NATSURL, Name: "chat " + id, Timeout: cfg.DBTimeout,
		CredsFile: cfg.NATSCredsFile, CAFile: cfg.NATSTLSCAFile, CertFile: cfg.NATSTLSCertFile, KeyFile: cfg.NATSTLSKeyFile,
		Event: func(msg string, err error) { log.Warn(msg, zap.Error(err)) },
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	retain := engine.Retained(cfg.HistorySize, cfg.MaxQueueSize)
	db, err := sqlstore.Open(ctx, sqlstore.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Timeout: cfg.DBTimeout, Retain: retain})
	if err != nil {
		nc.Close()
		return nil, err
	}
	// The feeds run until the stores close, after the engine.
	feeds, stopFeeds := context.WithCancel(context.Background())
	var stopHistory func()
	closeAll := func() {
		stopFeeds()
		if stopHistory != nil {
			stopHistory()
		}
		if err := nc.Drain(); err != nil {
			nc.Close()
		}
		if err := db.Close(); err != nil {
			log.Warn("close database", zap.Error(err))
		}
	}
	fail := func(what string, err error) (*stack, error) {
		closeAll()
		return nil, fmt.Errorf("%s: %s: %w", where, what, err)
	}
	var history *natsstore.Log
	err = settle(ctx, log, "history stream", func() (err error) {
		history, err = natsstore.OpenLog(ctx, nc, js, natsstore.LogConfig{
			Stream: historyStream, Subject: historySubject, Replicas: cfg.NATSReplicas, Retain: retain, Origin: id,
		})
		return err
	})
	if err != nil {
		return fail("history", err)
	}
	var table *natsstore.Presence
	err = settle(ctx, log, "presence buckets", func() (err error) {
		table, err = natsstore.NewPresence(ctx, js, natsstore.PresenceConfig{TTL: presenceTTL, Replicas: cfg.NATSReplicas})
		return err
	})
	if err != nil {
		return fail("presence", err)
	}
	holder := table.Holder(id)
	st := &stack{claim: &sqlstore.Claim{}, close: closeAll}
	for i, th := range throttles {
		err = settle(ctx, log, th.bucket, func() (err error) {
			st.limiters[i], err = natsstore.NewLimiter(ctx, js, natsstore.LimiterConfig{Bucket: th.bucket, Max: th.max, Window: time.Minute, Replicas: cfg.NATSReplicas})
			return err
		})
		if err != nil {
			return fail("throttle", err)
		}
	}
	ecfg := engineConfig(cfg, log)
	ecfg.Presence = holder
	eng, err := engine.New(ecfg, db, history)
	if err != nil {
		return fail("engine", err)
	}
	st.engine = eng
	// Both feeds start before the service takes calls: a room loaded
	// from the log afterwards hears of every later change.
	report := func(err error) { log.Warn("history feed", zap.Error(err)) }
	if stopHistory, err = history.Watch(feeds, eng.Apply, report); err != nil {
		return fail("history feed", err)
	}
	if err := holder.Watch(feeds, eng.Notify); err != nil {
		return fail("presence feed", err)
	}
	log.Info("shared mode", zap.String("nats", cfg.Masked().NATSURL), zap.Int("replicas", cfg.NATSReplicas))
	return st, nil
}

// settleFor bounds how long the start waits for JetStream to answer for
// a stream or bucket: a cluster that is itself starting elects their
// leaders within seconds.
const settleFor = 30 * time.Second

// settle runs f until it succeeds, fails for another reason than NATS
// being unavailable, or settleFor has passed.
func settle(ctx context.Context, log *zap.Logger, what string, f func() error) error {
	deadline := time.Now().Add(settleFor)
	for {
		err := f()
		if err == nil || !errors.Is(err, rooms.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		log.Warn("waiting for NATS", zap.String("for", what), zap.Error(err))
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Second):
		}
	}
}

// instanceID names an instance that was not given INSTANCE_ID: its host
// name and a random suffix, in the characters a NATS subject token and a
// KV key both allow.
func instanceID() string {
	host, _ := os.Hostname()
	host = strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '-'
	}, host)
	if len(host) > 40 {
		host = host[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return strings.TrimLeft(host+"-"+hex.EncodeToString(b[:]), "-")
}
