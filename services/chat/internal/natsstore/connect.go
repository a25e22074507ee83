package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ConnConfig is how an instance reaches NATS.
type ConnConfig struct {
	// URLs are the servers, comma-separated.
	URLs string
	// Name names the connection in the servers' monitoring.
	Name string
	// CredsFile, CAFile, CertFile and KeyFile are optional: a .creds file
	// (JWT and NKey), a CA to trust, a client certificate and its key.
	CredsFile, CAFile, CertFile, KeyFile string
	// Timeout bounds connecting and each JetStream request.
	Timeout time.Duration
	// Event hears of disconnections, reconnections and asynchronous
	// errors, for the service's log; nil drops them.
	Event func(msg string, err error)
}

// Connect connects to NATS and checks that JetStream answers. It fails at
// once, rather than retrying in the background, when no server answers:
// a service must not start without its shared state. Once connected, the
// connection reconnects for ever; meanwhile requests fail with errors that
// the stores report as rooms.ErrUnavailable.
func Connect(ctx context.Context, cfg ConnConfig) (*nats.Conn, jetstream.JetStream, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Second
	}
	event := cfg.Event
	if event == nil {
		event = func(string, error) {}
	}
	opts := []nats.Option{
		nats.Name(cfg.Name),
		nats.Timeout(cfg.Timeout),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(time.Second),
		nats.ReconnectJitter(500*time.Millisecond, time.Second),
		// Nothing is buffered while disconnected: a request fails at once,
		// and the service answers UNAVAILABLE, rather than waiting out the
		// caller's deadline.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil { // nil: this side closed it
				event("nats disconnected", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { event("nats reconnected to "+nc.ConnectedUrlRedacted(), nil) }),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { event("nats error", err) }),
	}
	if cfg.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(cfg.CredsFile))
	}
	if cfg.CAFile != "" {
		opts = append(opts, nats.RootCAs(cfg.CAFile))
	}
	if cfg.CertFile != "" {
		opts = append(opts, nats.ClientCert(cfg.CertFile, cfg.KeyFile))
	}
	urls := strings.Join(strings.Fields(strings.ReplaceAll(cfg.URLs, ",", " ")), ",")
	nc, err := nats.Connect(urls, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("natsstore: connect: %w", err)
	}
	// Stream metadata (the history's epoch) came with 2.10, the expiry of
	// deleted keys' markers (LimitMarkerTTL, on the buckets) with 2.11.
	if !atLeast(nc.ConnectedServerVersion(), 2, 11) {
		v := nc.ConnectedServerVersion()
		nc.Close()
		return nil, nil, fmt.Errorf("natsstore: NATS server %s is too old: the shared mode needs 2.11 or later", v)
	}
	js, err := jetstream.New(nc, jetstream.WithDefaultTimeout(cfg.Timeout))
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		_, err = js.AccountInfo(ctx)
		cancel()
		if errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount) {
			err = fmt.Errorf("%w (start nats-server with -js)", err)
		}
	}
	if err != nil {
		nc.Close()
		return nil, nil, fmt.Errorf("natsstore: JetStream: %w", err)
	}
	return nc, js, nil
}

// atLeast reports whether version (major.minor.patch, perhaps with a
// suffix) is major.minor or later.
func atLeast(version string, major, minor int) bool {
	var ma, mi int
	if _, err := fmt.Sscanf(version, "%d.%d", &ma, &mi); err != nil {
		return false
	}
	return ma > major || ma == major && mi >= minor
}
