// Package config loads the chat service's configuration from the
// environment, optionally seeded from a .env file.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/internal/dburl"
	"github.com/grpcchatter/grpcchatter/internal/hostname"
	"github.com/grpcchatter/grpcchatter/internal/origin"
	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/token"
)

// Config is the chat service's configuration.
type Config struct {
	GRPCAddress string `envconfig:"GRPC_SERVER_ADDRESS" default:"0.0.0.0"`
	GRPCPort    int    `envconfig:"GRPC_SERVER_PORT" default:"5050"`
	// The web listener: the browser page, the WebSocket Chat stream and
	// the unary calls over HTTP/JSON.
	WebAddress string `envconfig:"WEB_SERVER_ADDRESS" default:"0.0.0.0"`
	WebPort    int    `envconfig:"WEB_SERVER_PORT" default:"8081"`
	// WebAuthURL is the auth service's URL as browsers reach it, for the
	// page; empty means the page's host on port 8080.
	WebAuthURL string `envconfig:"WEB_AUTH_URL"`
	// WSAllowedOrigins are other origins whose pages may open the
	// WebSocket and call the HTTP API (the listener's own always may).
	WSAllowedOrigins origin.List `envconfig:"WS_ALLOWED_ORIGINS"`
	// WSPingInterval paces the WebSocket pings; a browser that answers
	// none for as long again is dropped.
	WSPingInterval    time.Duration `envconfig:"WS_PING_INTERVAL" default:"15s"`
	Secret            string        `envconfig:"SECRET" required:"true"`
	SecretPrevious    string        `envconfig:"SECRET_PREVIOUS"`
	ShortCodeLength   int           `envconfig:"SHORT_CODE_LENGTH" default:"6"`
	MaxQueueSize      int           `envconfig:"MAX_MESSAGE_QUEUE_SIZE" default:"256"`
	RoomTokenDuration time.Duration `envconfig:"ROOM_TOKEN_DURATION" default:"1h"`
	HistorySize       int           `envconfig:"HISTORY_SIZE" default:"100"`
	MaxRoomsPerUser   int           `envconfig:"MAX_ROOMS_PER_USER" default:"100"`
	MaxStreamsPerUser int           `envconfig:"MAX_STREAMS_PER_USER" default:"16"`
	// RoomCreateBurst rooms may be created by one user at once, and one
	// more every RoomCreateInterval: each costs a password hash.
	RoomCreateBurst    int           `envconfig:"ROOM_CREATE_BURST" default:"10"`
	RoomCreateInterval time.Duration `envconfig:"ROOM_CREATE_INTERVAL" default:"6s"`
	MaxMessageBytes    int           `envconfig:"MAX_MESSAGE_BYTES" default:"4096"`
	RoomIdleTTL        time.Duration `envconfig:"ROOM_IDLE_TTL" default:"24h"`
	MetricsAddress     string        `envconfig:"METRICS_ADDRESS" default:"127.0.0.1:9090"`

	// MaxRoomMembers bounds the users online in one room (0: unlimited):
	// a further user's stream is refused with ROOM_FULL.
	MaxRoomMembers int `envconfig:"MAX_ROOM_MEMBERS" default:"5000"`
	// PresenceWindow is how long a room gathers joins and leaves before
	// its streams hear of them, together (0: each at once).
	PresenceWindow time.Duration `envconfig:"PRESENCE_WINDOW" default:"200ms"`
	// PprofEnabled also serves net/http/pprof under /debug/pprof/ on
	// METRICS_ADDRESS, for profiling a live service.
	PprofEnabled bool   `envconfig:"PPROF_ENABLED" default:"false"`
	DataDir      string `envconfig:"DATA_DIR" default:"./data"`
	// DatabaseURL selects PostgreSQL for rooms and history; empty selects
	// SQLite in DATA_DIR/chat.db.
	DatabaseURL string `envconfig:"DATABASE_URL"`
	// HistoryStore is where messages are kept: "database" (the rooms'
	// database, surviving restarts) or "memory" (lost on restart, for
	// ephemeral deployments).
	HistoryStore string        `envconfig:"HISTORY_STORE" default:"database"`
	DBTimeout    time.Duration `envconfig:"DB_TIMEOUT" default:"5s"`
	// NATSURL selects the shared mode: instances that use the same NATS
	// (JetStream) servers, comma-separated, and the same rooms database
	// share rooms, history, presence and limits. Empty: one instance.
	NATSURL string `envconfig:"NATS_URL"`
	// NATS credentials and TLS, as nats.go takes them: a .creds file
	// (JWT and NKey), a CA to trust, a client certificate and key.
	NATSCredsFile   string `envconfig:"NATS_CREDS_FILE"`
	NATSTLSCAFile   string `envconfig:"NATS_TLS_CA_FILE"`
	NATSTLSCertFile string `envconfig:"NATS_TLS_CERT_FILE"`
	NATSTLSKeyFile  string `envconfig:"NATS_TLS_KEY_FILE"`
	// NATSReplicas is the replica count of the streams and buckets this
	// service creates: 1, or 3 on a cluster of 3 or more nodes, which
	// then survives the loss of one node.
	NATSReplicas int `envconfig:"NATS_REPLICAS" default:"1"`
	// InstanceID names this instance among those sharing NATS; empty
	// makes one from the host name and a random suffix.
	InstanceID      string        `envconfig:"INSTANCE_ID"`
	LogLevel        string        `envconfig:"LOG_LEVEL" default:"info"`
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"10s"`
	// Argon2id cost of room passwords, as in the auth service.
	Argon2MemoryKiB uint32 `envconfig:"ARGON2_MEMORY_KIB" default:"19456"`
	Argon2Time      uint32 `envconfig:"ARGON2_TIME" default:"2"`
	Argon2Threads   uint8  `envconfig:"ARGON2_THREADS" default:"1"`

	// Flow control of senders: after a burst of MaxSendBurst frames, a
	// Chat stream's client may send MaxSendRate a second, and a user's
	// streams on this instance together MaxUserSendRate after a burst of
	// MaxUserSendBurst. A faster client is not cut: the service reads it
	// no faster, and its transport makes it wait.
	MaxSendRate      float64 `envconfig:"MAX_SEND_RATE" default:"20"`
	MaxSendBurst     int     `envconfig:"MAX_SEND_BURST" default:"50"`
	MaxUserSendRate  float64 `envconfig:"MAX_USER_SEND_RATE" default:"40"`
	MaxUserSendBurst int     `envconfig:"MAX_USER_SEND_BURST" default:"100"`
}

// The OWASP minimum for argon2id, below which Load refuses to start: room
// password hashes cheaper than this are too cheap to guess against offline.
// The maxima are what password.Verify accepts in a stored hash.
const (
	MinArgon2MemoryKiB = password.MinMemoryKiB
	MinArgon2Time      = password.MinTime
	MaxArgon2MemoryKiB = password.MaxMemoryKiB
	MaxArgon2Time      = password.MaxTime
)

// The range of MAX_SEND_RATE and MAX_USER_SEND_RATE: a million messages a
// second is beyond what one instance publishes, so it is as good as no
// limit, for benchmarks.
const (
	minSendRate = 0.001
	maxSendRate = 1_000_000
)

// Usage is the command line the service accepts.
const Usage = "usage: chat [--config FILE]"

// Load parses args (only --config FILE), loads FILE into the environment
// without overriding variables already set, then reads and validates the
// environment. Errors name the offending key.
func Load(args []string) (Config, error) {
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "`.env file` to load before the environment (real variables win)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: %w; %s", err, Usage)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q; %s", fs.Arg(0), Usage)
	}
	if *file != "" {
		// godotenv.Load never overrides variables that are already set.
		if err := godotenv.Load(*file); err != nil {
			return Config{}, fmt.Errorf("config: --config %s: %w", *file, err)
		}
	}
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Validate checks ranges that the types alone do not.
func (c Config) Validate() error {
	var errs []error
	check := func(ok bool, key, msg string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s %s", key, msg))
		}
	}
	// token.CheckSecret is the rule the auth service applies too: long
	// enough, and not a stand-in such as a value from an example file.
	if err := token.CheckSecret(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("SECRET: %w", err))
	}
	if c.SecretPrevious != "" {
		if err := token.CheckSecret(c.SecretPrevious); err != nil {
			errs = append(errs, fmt.Errorf("SECRET_PREVIOUS (empty, or a secret like SECRET): %w", err))
		}
	}
	check(c.GRPCPort > 0 && c.GRPCPort < 65536, "GRPC_SERVER_PORT", "must be 1-65535")
	check(validHost(c.GRPCAddress), "GRPC_SERVER_ADDRESS", "must be an IP address or a host name (empty listens on all interfaces)")
	check(c.WebPort > 0 && c.WebPort < 65536, "WEB_SERVER_PORT", "must be 1-65535")
	check(validHost(c.WebAddress), "WEB_SERVER_ADDRESS", "must be an IP address or a host name (empty listens on all interfaces)")
	check(c.WebPort != c.GRPCPort || c.WebAddress != c.GRPCAddress, "WEB_SERVER_PORT", "must differ from GRPC_SERVER_PORT")
	check(c.WebAuthURL == "" || validBaseURL(c.WebAuthURL), "WEB_AUTH_URL",
		"must be empty or the auth service's base URL as browsers reach it, e.g. https://auth.example.com")
	for _, o := range c.WSAllowedOrigins {
		if err := origin.Check(o); err != nil {
			errs = append(errs, fmt.Errorf("WS_ALLOWED_ORIGINS must be comma-separated origins scheme://host[:port] as browsers send them, got %q: %w", o, err))
		}
	}
	check(c.WSPingInterval >= time.Second && c.WSPingInterval <= 5*time.Minute, "WS_PING_INTERVAL", "must be 1s-5m")
	check(c.MetricsAddress == "" || validHostPort(c.MetricsAddress), "METRICS_ADDRESS", "must be host:port, e.g. 127.0.0.1:9090, or empty to disable")
	check(!c.PprofEnabled || c.MetricsAddress != "", "PPROF_ENABLED", "needs METRICS_ADDRESS, which serves it")
	check(c.ShortCodeLength >= 4 && c.ShortCodeLength <= 32, "SHORT_CODE_LENGTH", "must be 4-32")
	check(c.MaxQueueSize >= 1 && c.MaxQueueSize <= 1<<20, "MAX_MESSAGE_QUEUE_SIZE", "must be 1-1048576")
	check(c.RoomTokenDuration > 0, "ROOM_TOKEN_DURATION", "must be positive")
	check(c.HistorySize >= 1 && c.HistorySize <= 1<<20, "HISTORY_SIZE", "must be 1-1048576")
	check(c.MaxMessageBytes >= 1 && c.MaxMessageBytes <= 1<<20, "MAX_MESSAGE_BYTES", "must be 1-1048576")
	check(c.MaxRoomsPerUser >= 1, "MAX_ROOMS_PER_USER", "must be at least 1")
	check(c.MaxStreamsPerUser >= 1, "MAX_STREAMS_PER_USER", "must be at least 1")
	check(c.RoomCreateBurst >= 1 && c.RoomCreateBurst <= 1000, "ROOM_CREATE_BURST", "must be 1-1000")
	check(c.RoomCreateInterval >= time.Millisecond && c.RoomCreateInterval <= 24*time.Hour, "ROOM_CREATE_INTERVAL", "must be 1ms-24h")
	check(c.MaxRoomMembers >= 0 && c.MaxRoomMembers <= 1_000_000, "MAX_ROOM_MEMBERS", "must be 0 (unlimited) to 1000000")
	check(c.PresenceWindow >= 0 && c.PresenceWindow <= 5*time.Second, "PRESENCE_WINDOW", "must be 0 (no coalescing) to 5s")
	check(c.MaxSendRate >= minSendRate && c.MaxSendRate <= maxSendRate, "MAX_SEND_RATE", "must be 0.001-1000000 messages a second")
	check(c.MaxSendBurst >= 1 && c.MaxSendBurst <= 1<<20, "MAX_SEND_BURST", "must be 1-1048576")
	check(c.MaxUserSendRate >= minSendRate && c.MaxUserSendRate <= maxSendRate, "MAX_USER_SEND_RATE", "must be 0.001-1000000 messages a second")
	check(c.MaxUserSendBurst >= 1 && c.MaxUserSendBurst <= 1<<20, "MAX_USER_SEND_BURST", "must be 1-1048576")
	check(c.RoomIdleTTL > 0, "ROOM_IDLE_TTL", "must be positive")
	check(c.ShutdownTimeout > 0, "SHUTDOWN_TIMEOUT", "must be positive")
	check(c.DataDir != "", "DATA_DIR", "must not be empty")
	check(c.DatabaseURL == "" || strings.HasPrefix(c.DatabaseURL, "postgres://") || strings.HasPrefix(c.DatabaseURL, "postgresql://"),
		"DATABASE_URL", "must be empty (SQLite in DATA_DIR) or start with postgres:// or postgresql://")
	check(c.HistoryStore == "database" || c.HistoryStore == "memory", "HISTORY_STORE", "must be database or memory")
	check(c.DBTimeout > 0, "DB_TIMEOUT", "must be positive")
	check(c.NATSURL == "" || validNATSURLs(c.NATSURL), "NATS_URL",
		"must be empty (one instance) or comma-separated nats://, tls://, ws:// or wss:// URLs")
	check(c.NATSURL == "" || c.HistoryStore == "database", "HISTORY_STORE",
		"must be database with NATS_URL: the shared history is kept in JetStream")
	check((c.NATSTLSCertFile == "") == (c.NATSTLSKeyFile == ""), "NATS_TLS_CERT_FILE", "and NATS_TLS_KEY_FILE go together")
	check(c.NATSReplicas >= 1 && c.NATSReplicas <= 5, "NATS_REPLICAS", "must be 1-5")
	check(c.InstanceID == "" || validInstanceID(c.InstanceID), "INSTANCE_ID", "must be 1-64 letters, digits, '-' or '_'")
	check(c.Argon2MemoryKiB >= MinArgon2MemoryKiB && c.Argon2MemoryKiB <= MaxArgon2MemoryKiB, "ARGON2_MEMORY_KIB",
		fmt.Sprintf("must be %d-%d (OWASP minimum for argon2id: 19 MiB)", MinArgon2MemoryKiB, MaxArgon2MemoryKiB))
	check(c.Argon2Time >= MinArgon2Time && c.Argon2Time <= MaxArgon2Time, "ARGON2_TIME",
		fmt.Sprintf("must be %d-%d (OWASP minimum for argon2id: 2 passes)", MinArgon2Time, MaxArgon2Time))
	check(c.Argon2Threads >= 1, "ARGON2_THREADS", "must be 1-255")
	_, err := zapcore.ParseLevel(c.LogLevel)
	check(err == nil, "LOG_LEVEL", "must be debug, info, warn or error")
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

// Argon2 returns the argon2id parameters for new room password hashes.
func (c Config) Argon2() password.Params {
	return password.Params{MemoryKiB: c.Argon2MemoryKiB, Time: c.Argon2Time, Threads: c.Argon2Threads}
}

// WebListenAddress is host:port for the web listener.
func (c Config) WebListenAddress() string {
	return net.JoinHostPort(c.WebAddress, strconv.Itoa(c.WebPort))
}

// GRPCListenAddress is host:port for the gRPC listener.
func (c Config) GRPCListenAddress() string {
	return net.JoinHostPort(c.GRPCAddress, strconv.Itoa(c.GRPCPort))
}

// validNATSURLs accepts a comma-separated list of NATS server URLs.
func validNATSURLs(s string) bool {
	for _, one := range strings.Split(s, ",") {
		u, err := url.Parse(strings.TrimSpace(one))
		if err != nil || u.Host == "" {
			return false
		}
		switch u.Scheme {
		case "nats", "tls", "ws", "wss":
		default:
			return false
		}
	}
	return true
}

// validBaseURL accepts an http or https URL with a host, and maybe a
// path, but no user, query or fragment.
func validBaseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != "" && validHost(u.Hostname()) &&
		u.User == nil && u.RawQuery == "" && u.Fragment == "" && !u.ForceQuery
}

// validInstanceID accepts what can appear in a NATS subject token and a
// KV key alike.
func validInstanceID(s string) bool {
	if len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// Shared reports whether the instance shares rooms with others over NATS.
func (c Config) Shared() bool { return c.NATSURL != "" }

// validHost accepts an IP address, a DNS host name (see hostname.Valid),
// or "" (all interfaces).
func validHost(h string) bool { return h == "" || hostname.Valid(h) }

// validHostPort accepts host:port with a valid host and a port 0-65535.
func validHostPort(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535 && validHost(host)
}

// Masked returns the configuration with secrets replaced, for logging.
func (c Config) Masked() Config {
	c.Secret = mask(c.Secret)
	c.SecretPrevious = mask(c.SecretPrevious)
	c.DatabaseURL = dburl.Redacted(c.DatabaseURL)
	urls := strings.Split(c.NATSURL, ",")
	for i, u := range urls {
		urls[i] = dburl.Redacted(strings.TrimSpace(u))
	}
	c.NATSURL = strings.Join(urls, ",")
	return c
}

func mask(s string) string {
	if s == "" {
		return ""
	}
	return strings.Repeat("*", 8)
}
