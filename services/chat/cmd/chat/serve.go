package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/pkg/token"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/password"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/store"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/throttle"
)

// serve runs the service until ctx ends. ready, if not nil, receives the
// gRPC listener's address once the service accepts calls.
func serve(ctx context.Context, cfg config.Config, ready chan<- net.Addr) error {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return fmt.Errorf("LOG_LEVEL: %w", err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	log, err := zc.Build()
	if err != nil {
		return fmt.Errorf("logger: %w", err)
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.Object("config", cfg))

	signer, err := token.NewSigner(cfg.Secret, cfg.SecretPrevious)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.DataDir)
	if err != nil {
		return err
	}
	defer st.Close()
	eng, err := engine.New(engine.Config{
		CodeLength: cfg.ShortCodeLength, HistorySize: cfg.HistorySize,
		QueueSize: cfg.MaxQueueSize, IdleTTL: cfg.RoomIdleTTL,
		// A room token names its room by code only: keep a deleted room's
		// code unused until every token for it has expired.
		ReuseAfter:      cfg.RoomTokenDuration + token.Leeway + time.Minute,
		MaxRoomsPerUser: cfg.MaxRoomsPerUser, MaxStreamsPerUser: cfg.MaxStreamsPerUser,
	}, st)
	if err != nil {
		return err
	}
	log.Info("engine ready", zap.String("epoch", eng.Epoch()), zap.Int("rooms", eng.Len()))
	met := metrics.New(eng.Len)
	srv, err := api.New(api.Config{
		Signer: signer, Hasher: password.NewHasher(cfg.Argon2()),
		Limiter: throttle.New(5, time.Minute), UserLimiter: throttle.New(20, time.Minute),
		RoomLimiter: throttle.New(50, time.Minute), Logger: log, Metrics: met,
		MaxMessageBytes: cfg.MaxMessageBytes, RoomTokenTTL: cfg.RoomTokenDuration,
	}, eng)
	if err != nil {
		return err
	}

	lis, err := net.Listen("tcp", cfg.GRPCListenAddress())
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.GRPCListenAddress(), err)
	}
	gs, health := srv.GRPCServer()

	bg, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	errc := make(chan error, 3)
	workers := 2
	// Owner: serve. Exit: Serve returns after GracefulStop/Stop below.
	go func() { errc <- gs.Serve(lis) }()
	// Owner: serve. Exit: Run returns when bg is cancelled below.
	go func() {
		errc <- eng.Run(bg, func(err error) { log.Error("idle sweep", zap.Error(err)) })
	}()
	if cfg.MetricsAddress != "" {
		mlis, err := net.Listen("tcp", cfg.MetricsAddress)
		if err != nil {
			gs.Stop()
			cancelBG()
			return errors.Join(fmt.Errorf("METRICS_ADDRESS %s: %w", cfg.MetricsAddress, err), <-errc, <-errc)
		}
		workers++
		// Owner: serve. Exit: Serve returns when bg is cancelled below.
		go func() { errc <- met.Serve(bg, mlis) }()
	}
	log.Info("serving", zap.Stringer("grpc", lis.Addr()), zap.String("metrics", cfg.MetricsAddress))
	if ready != nil {
		ready <- lis.Addr()
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down")
	case runErr = <-errc:
		workers--
		log.Error("component failed", zap.Error(runErr))
	}

	// Stop taking new work, tell load balancers, and send every stream
	// away with Unavailable so clients reconnect and resume elsewhere.
	health.Shutdown()
	srv.Drain()
	done := make(chan struct{})
	// Owner: serve. Exit: GracefulStop returns once handlers are done, or
	// at the latest after Stop below closes every connection.
	go func() { gs.GracefulStop(); close(done) }()
	select {
	case <-done:
	case <-time.After(cfg.ShutdownTimeout):
		log.Warn("graceful stop timed out; closing connections")
		gs.Stop()
		<-done
	}
	cancelBG()
	for range workers {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	if err := eng.Persist(); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("persist rooms: %w", err))
	}
	log.Info("stopped")
	return runErr
}
