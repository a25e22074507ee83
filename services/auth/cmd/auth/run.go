package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/token"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/api"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/config"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/metrics"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/store"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/throttle"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/users"
)

// option adjusts run; only tests pass any. Being code rather than a
// setting, no deployment can switch one on by accident.
type option func(*options)

type options struct {
	hashParams *password.Params
}

// withHashParams replaces the argon2id parameters from the config, which
// may not go below the OWASP minimum, with cheap ones that keep tests fast.
func withHashParams(p password.Params) option {
	return func(o *options) { o.hashParams = &p }
}

// run starts the service and serves until ctx ends, then shuts down
// gracefully. Settings come from args and the process environment (see
// config.Load), logs go to logOut, and ready, if not nil, is called with
// the API's and the metrics listener's addresses (nil when
// METRICS_ADDRESS is empty) once the service accepts connections (tests
// listen on port 0 and need to know where).
func run(ctx context.Context, args []string, logOut io.Writer, ready func(api, metrics net.Addr), opts ...option) error {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	cfg, err := config.Load(args)
	if err != nil {
		return err
	}
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	log := zap.New(zapcore.NewCore(
		zapcore.NewJSONEncoder(enc),
		zapcore.Lock(zapcore.AddSync(logOut)),
		cfg.LogLevel,
	)).With(zap.String("service", "auth"))
	defer func() { _ = log.Sync() }()
	log.Info("starting", cfg.Fields()...)

	signer, err := token.NewSigner(cfg.Secret, cfg.SecretPrevious)
	if err != nil {
		return fmt.Errorf("token: %w", err)
	}
	db, err := store.Open(ctx, store.Config{DatabaseURL: cfg.DatabaseURL, DataDir: cfg.DataDir, Timeout: cfg.DBTimeout})
	if err != nil {
		return err
	}
	defer func() {
		if err := db.Close(); err != nil {
			log.Warn("close database", zap.Error(err))
		}
	}()
	log.Info("database ready", zap.String("dialect", db.Dialect()))

	m := metrics.New()
	params := password.DefaultParams()
	params.MemoryKiB, params.Time, params.Threads = cfg.Argon2MemoryKiB, cfg.Argon2Time, cfg.Argon2Threads
	if o.hashParams != nil {
		params = *o.hashParams
	}
	hasher, err := password.New(params, password.WithObserver(m.ObserveHash))
	if err != nil {
		return err
	}
	gc := gcPercent(cfg.GCPercent, hasher.Slots())
	// Restored on return for the sake of tests, which run the service
	// inside their own process.
	defer debug.SetGCPercent(debug.SetGCPercent(gc))
	log.Info("garbage collector", zap.Int("gc_percent", gc), zap.Bool("from_GOGC", cfg.GCPercent != nil),
		zap.Int("hash_slots", hasher.Slots()))
	logins := throttle.NewLogins(throttle.LoginConfig{
		PairFailures:    cfg.LoginMaxFailures,
		AddressFailures: cfg.LoginMaxAddressFailures,
		AccountFailures: cfg.LoginMaxAccountFailures,
		Window:          cfg.LoginFailureWindow,
		Lockout:         cfg.LoginLockout,
		MaxLockout:      cfg.LoginMaxLockout,
		KnownFor:        cfg.LoginKnownAddressTTL,
		MaxEntries:      cfg.ThrottleMaxEntries,
	}, time.Now)
	svc, err := users.NewService(ctx, db, hasher, logins, log)
	if err != nil {
		return err
	}
	router, err := api.New(api.Config{
		TokenDuration:      cfg.TokenDuration,
		RequestTimeout:     cfg.RequestTimeout,
		MaxBodyBytes:       cfg.MaxBodyBytes,
		TrustedProxies:     cfg.TrustedProxies,
		CORSAllowedOrigins: cfg.CORSAllowedOrigins,
	}, api.Deps{
		Accounts:      svc,
		Registrations: throttle.NewLimiter(float64(cfg.RegisterRate), cfg.RegisterBurst, cfg.ThrottleMaxEntries, time.Now),
		Issuer:        signer, DB: db, Metrics: m, Log: log,
	})
	if err != nil {
		return err
	}

	// Both listeners are bound before anything is served, so a bad or
	// busy address stops the start before the service takes requests.
	var mlis net.Listener
	if cfg.MetricsAddress != "" {
		if mlis, err = net.Listen("tcp", cfg.MetricsAddress); err != nil {
			return fmt.Errorf("listen on METRICS_ADDRESS %s: %w", cfg.MetricsAddress, err)
		}
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(cfg.Address, strconv.Itoa(cfg.Port)))
	if err != nil {
		if mlis != nil {
			_ = mlis.Close()
		}
		return fmt.Errorf("listen on REST_SERVER_ADDRESS:REST_SERVER_PORT: %w", err)
	}
	srv := &http.Server{
		Handler:           router,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      cfg.RequestTimeout + 5*time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // returns once Shutdown or Close is called

	metricsCtx, stopMetrics := context.WithCancel(context.Background())
	defer stopMetrics()
	var metricsDone chan error // nil, never ready, while no metrics listener runs
	if mlis != nil {
		metricsDone = make(chan error, 1)
		// Owner: run. Exit: Serve returns when stopMetrics is called below,
		// after the API has drained, so a last scrape sees every request;
		// or at once if the listener fails, which stops the service.
		go func() { metricsDone <- m.Serve(metricsCtx, mlis) }()
	}
	log.Info("listening", zap.Stringer("address", ln.Addr()), zap.String("metrics", listenAddr(mlis)))
	if ready != nil {
		var maddr net.Addr
		if mlis != nil {
			maddr = mlis.Addr()
		}
		ready(ln.Addr(), maddr)
	}

	var failed error
	select {
	case err := <-served:
		stopMetrics()
		if metricsDone != nil {
			<-metricsDone
		}
		return fmt.Errorf("serve: %w", err)
	case err := <-metricsDone:
		metricsDone = nil // ended already
		if err == nil {
			err = errors.New("stopped")
		}
		failed = fmt.Errorf("metrics on METRICS_ADDRESS: %w", err)
		log.Error("metrics listener failed; stopping", zap.Error(err))
	case <-ctx.Done():
	}
	log.Info("shutting down", zap.Duration("timeout", cfg.ShutdownTimeout))
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = srv.Shutdown(sctx)
	if err != nil {
		log.Warn("in-flight requests did not finish in time; closing connections", zap.Error(err))
		_ = srv.Close()
	}
	stopMetrics()
	if metricsDone != nil {
		if merr := <-metricsDone; merr != nil {
			log.Warn("metrics listener", zap.Error(merr))
		}
	}
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", serr)
	}
	if failed != nil {
		return failed
	}
	log.Info("stopped")
	return nil
}

// listenAddr is l's address for the log, or "off".
func listenAddr(l net.Listener) string {
	if l == nil {
		return "off"
	}
	return l.Addr().String()
}
