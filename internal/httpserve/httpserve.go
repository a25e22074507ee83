// Package httpserve runs a small operator's HTTP endpoint (metrics,
// profiles) on a listener of its own for as long as a context lasts, with
// timeouts that keep a slow or hostile client from holding its
// connections.
package httpserve

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// NewServer is an *http.Server for h that wants request headers within
// 5 s and the whole request within 10 s, gives a response 30 s, closes
// keep-alive connections idle for a minute and refuses headers over
// 16 KiB. The net/http/pprof handlers that stream for a requested
// duration (profile, trace, delta profiles) extend their own write
// deadline by that duration, so a 30 s CPU profile still fits.
func NewServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    16 << 10,
	}
}

// Serve serves srv on lis until ctx ends. Then it shuts srv down, giving
// requests in progress up to grace to finish before it closes their
// connections, and returns nil. If serving fails sooner (the listener
// breaks), it returns that error at once. The caller owns the goroutine
// that runs Serve.
func Serve(ctx context.Context, srv *http.Server, lis net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	// Owner: Serve. Exit: srv.Serve returns once Shutdown or Close below
	// runs, or at once when the listener fails.
	go func() { errc <- srv.Serve(lis) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		// Past grace: a request still running (a long profile) is cut.
		_ = srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
