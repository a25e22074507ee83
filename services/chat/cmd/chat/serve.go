package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"google.golang.org/grpc"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/api"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/config"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/throttle"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/web"
)

// webHandler serves the page, the WebSocket stream and the HTTP/JSON
// calls on the web listener.
func webHandler(cfg config.Config, srv *api.Server, ws *api.WebSocket) http.Handler {
	return web.Handler(web.Config{
		AuthURL: cfg.WebAuthURL, Chat: ws,
		API: srv.HTTP(cfg.WSAllowedOrigins), APIPrefix: api.HTTPPrefix,
	})
}

// options are serve's hooks into its caller.
type options struct {
	// ready, if not nil, receives the gRPC listener's address once the
	// service accepts calls.
	ready chan<- net.Addr
	// force, once closed during the graceful shutdown, closes every
	// connection at once (a second signal).
	force <-chan struct{}
	// logOut receives the JSON log.
	logOut zapcore.WriteSyncer
}

// newLogger returns the service's JSON logger: ISO 8601 timestamps under
// "ts" and durations as strings, like the auth service's.
func newLogger(level string, out zapcore.WriteSyncer) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("LOG_LEVEL: %w", err)
	}
	enc := zap.NewProductionEncoderConfig()
	enc.TimeKey = "ts"
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	return zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), out, lvl), zap.AddCaller(), zap.ErrorOutput(out)), nil
}

// serve runs the service until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Config, o options) error {
	log, err := newLogger(cfg.LogLevel, o.logOut)
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()
	log.Info("starting", zap.Object("config", cfg))

	signer, err := token.NewSigner(cfg.Secret, cfg.SecretPrevious)
	if err != nil {
		return err
	}
	st, err := openStack(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer st.close()
	eng := st.engine
	// On the paths that return early; the normal one closes it below,
	// and a second Close does nothing.
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
		defer cancel()
		_ = eng.Close(ctx)
	}()
	log.Info("engine ready", zap.String("epoch", eng.Epoch()), zap.String("history", cfg.HistoryStore))
	met := metrics.New(func() int { return eng.Len(context.Background()) })
	hasher, err := password.New(cfg.Argon2())
	if err != nil {
		return fmt.Errorf("ARGON2_*: %w", err)
	}
	srv, err := api.New(api.Config{
		Signer: signer, Hasher: hasher,
		Limiter: st.limiters[0], UserLimiter: st.limiters[1],
		RoomLimiter: st.limiters[2], Logger: log, Metrics: met,
		// Per instance: it guards this process's CPU from hashing;
		// MAX_ROOMS_PER_USER bounds the rooms across instances.
		CreateLimiter:   throttle.NewRate(cfg.RoomCreateBurst, cfg.RoomCreateInterval),
		MaxMessageBytes: cfg.MaxMessageBytes, RoomTokenTTL: cfg.RoomTokenDuration,
		MaxBacklog:     engine.Retained(cfg.HistorySize, cfg.MaxQueueSize),
		WSPingInterval: cfg.WSPingInterval,
		SendLimit:      api.SendLimit{Rate: cfg.MaxSendRate, Burst: cfg.MaxSendBurst},
		UserSendLimit:  api.SendLimit{Rate: cfg.MaxUserSendRate, Burst: cfg.MaxUserSendBurst},
	}, eng)
	if err != nil {
		return err
	}

	// Every listener is bound before anything is served, so a bad or
	// busy address stops the start before the service takes calls.
	var mlis net.Listener
	if cfg.MetricsAddress != "" {
		if mlis, err = net.Listen("tcp", cfg.MetricsAddress); err != nil {
			return fmt.Errorf("METRICS_ADDRESS %s: %w", cfg.MetricsAddress, err)
		}
	}
	lis, err := api.ListenGRPC(ctx, cfg.GRPCListenAddress())
	if err != nil {
		if mlis != nil {
			mlis.Close()
		}
		return fmt.Errorf("listen %s: %w", cfg.GRPCListenAddress(), err)
	}
	wlis, err := net.Listen("tcp", cfg.WebListenAddress())
	if err != nil {
		lis.Close()
		if mlis != nil {
			mlis.Close()
		}
		return fmt.Errorf("WEB_SERVER_ADDRESS/WEB_SERVER_PORT %s: %w", cfg.WebListenAddress(), err)
	}
	ws := srv.WebSocket(cfg.WSAllowedOrigins)
	web := &http.Server{
		Handler: webHandler(cfg, srv, ws),
		// Headers must come quickly; a WebSocket, once upgraded, is the
		// stream core's to time out (Open timeout, pings).
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          zap.NewStdLog(log.WithOptions(zap.IncreaseLevel(zap.WarnLevel))),
	}
	// WaitForHandlers: GracefulStop and Stop return only after every
	// handler has, so the final save below sees the rooms as they left.
	gs, health := srv.GRPCServer(grpc.WaitForHandlers(true))

	bg, cancelBG := context.WithCancel(context.Background())
	defer cancelBG()
	errc := make(chan error, 4)
	workers := 2
	if mlis != nil {
		workers++
		// Owner: serve. Exit: Serve returns when bg is cancelled below.
		go func() { errc <- met.Serve(bg, mlis, cfg.PprofEnabled) }()
	}
	// Owner: serve. Exit: Run returns when bg is cancelled below.
	go func() { errc <- eng.Run(bg) }()
	workers++
	// Owner: serve. Exit: when bg is cancelled below, or at once when the
	// claim on the database is lost, which stops the service.
	go func() { errc <- keepClaim(bg, st.claim) }()

	// Owner: serve. Exit: Serve returns after Shutdown/Close below.
	go func() {
		err := web.Serve(wlis)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	}()
	workers++
	// Owner: serve. Exit: Serve returns after GracefulStop/Stop below.
	go func() {
		err := gs.Serve(lis)
		if errors.Is(err, grpc.ErrServerStopped) { // stopped before it started
			err = nil
		}
		errc <- err
	}()
	log.Info("serving", zap.Stringer("grpc", lis.Addr()), zap.String("web", "http://"+wlis.Addr().String()),
		zap.String("metrics", cfg.MetricsAddress))
	if o.ready != nil {
		o.ready <- lis.Addr()
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
	// away with Unavailable, once it has what was accepted before, so
	// clients reconnect and resume elsewhere.
	health.Shutdown()
	drainCtx, cancelDrain := context.WithTimeout(context.Background(), cfg.ShutdownTimeout/2)
	srv.Drain(drainCtx)
	cancelDrain()
	// Shutdown stops accepting and waits for HTTP calls, and for every
	// WebSocket handler to reach its upgrade; upgraded (hijacked)
	// connections it leaves to ws.Wait: their handlers end once Drain has
	// ended their streams (within DrainGrace and the close grace).
	webCtx, cancelWeb := context.WithTimeout(context.Background(), cfg.ShutdownTimeout/2)
	if err := web.Shutdown(webCtx); err != nil {
		_ = web.Close()
	}
	if err := ws.Wait(webCtx); err != nil {
		// A handler held up (e.g. by a store that does not answer): its
		// stream is ended and its connection dropped.
		log.Warn("websocket streams still open; closing them", zap.Error(err))
		ws.Close()
		closeCtx, cancelClose := context.WithTimeout(context.Background(), time.Second)
		_ = ws.Wait(closeCtx)
		cancelClose()
	}
	cancelWeb()
	done := make(chan struct{})
	// Owner: serve. Exit: GracefulStop returns once handlers are done, or
	// at the latest after Stop below closes every connection.
	go func() { gs.GracefulStop(); close(done) }()
	timer := time.NewTimer(cfg.ShutdownTimeout)
	defer timer.Stop()
	select {
	case <-done:
	case <-callsEnded(srv, done):
		// A client that stopped reading cannot take its stream's status:
		// gRPC keeps it behind the data the client has not read, and the
		// connection would hold GracefulStop until SHUTDOWN_TIMEOUT.
		log.Warn("every call has ended; closing the connections still open (clients that stopped reading)")
		gs.Stop()
		<-done
	case <-timer.C:
		log.Warn("graceful stop timed out; closing connections")
		gs.Stop()
		<-done
	case <-o.force:
		log.Warn("second signal; closing connections")
		gs.Stop()
		<-done
	}
	cancelBG()
	for range workers {
		if err := <-errc; err != nil && runErr == nil {
			runErr = err
		}
	}
	// Messages accepted until the last handler returned go to the log
	// before the process exits.
	closeCtx, cancelClose := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancelClose()
	if err := eng.Close(closeCtx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("close engine: %w", err))
	}
	log.Info("stopped")
	return runErr
}

// connectionGrace is how long connections may take to finish once every
// gRPC handler has returned: what a handler's end queues (the status, the
// last frames) goes out within milliseconds to a client that reads.
const connectionGrace = 500 * time.Millisecond

// callsEnded returns a channel that is closed once no gRPC handler has
// run for connectionGrace. After Drain, Chat handlers return within the
// drain grace even for clients that stopped reading; unary calls when
// they are done.
func callsEnded(srv *api.Server, done <-chan struct{}) <-chan struct{} {
	ended := make(chan struct{})
	// Owner: serve's shutdown. Exit: once the handlers have ended, or
	// when done closes (GracefulStop returned).
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		var since time.Time // when the handlers were last seen to have ended
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				switch {
				case srv.Calls() > 0:
					since = time.Time{}
				case since.IsZero():
					since = now
				case now.Sub(since) >= connectionGrace:
					close(ended)
					return
				}
			}
		}
	}()
	return ended
}
