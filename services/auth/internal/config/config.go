// Package config loads the auth service's settings from the environment,
// optionally preceded by a .env file given with --config FILE. Real
// environment variables win over the file. Every setting is validated at
// start; an invalid one fails with an error naming its key.
package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/pkg/token"
)

// Config is every setting of the auth service.
type Config struct {
	Address string // REST_SERVER_ADDRESS
	Port    int    // REST_SERVER_PORT; 0 picks a free port

	TokenDuration  time.Duration // TOKEN_DURATION
	Secret         string        // SECRET, signs user tokens
	SecretPrevious string        // SECRET_PREVIOUS, verification only

	DatabaseURL string        // DATABASE_URL; empty selects SQLite
	DataDir     string        // DATA_DIR, holds auth.db for SQLite
	DBTimeout   time.Duration // DB_TIMEOUT, per database call

	LogLevel zapcore.Level // LOG_LEVEL

	Argon2MemoryKiB uint32 // ARGON2_MEMORY_KIB
	Argon2Time      uint32 // ARGON2_TIME
	Argon2Threads   uint8  // ARGON2_THREADS

	RequestTimeout  time.Duration // REQUEST_TIMEOUT, whole request incl. queueing for a hash slot
	ShutdownTimeout time.Duration // SHUTDOWN_TIMEOUT, for in-flight requests
	MaxBodyBytes    int64         // MAX_BODY_BYTES
	TrustedProxies  []string      // TRUSTED_PROXIES, comma-separated IPs/CIDRs

	LoginMaxFailures        int           // LOGIN_MAX_FAILURES, per account
	LoginMaxAddressFailures int           // LOGIN_MAX_ADDRESS_FAILURES, per client address
	LoginFailureWindow      time.Duration // LOGIN_FAILURE_WINDOW
	LoginLockout            time.Duration // LOGIN_LOCKOUT
	ThrottleMaxEntries      int           // THROTTLE_MAX_ENTRIES, per table
}

// OWASPMemoryKiB is the argon2id memory below which Load still accepts a
// setting but the service warns at start.
const OWASPMemoryKiB = 19 * 1024

// Load parses args (without the program name) for --config FILE, reads
// that file if given, and builds the Config from lookup (os.LookupEnv in
// production) falling back to the file, then to defaults.
func Load(args []string, lookup func(string) (string, bool)) (Config, error) {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "load settings from this .env `file` (environment variables win)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	var fromFile map[string]string
	if *file != "" {
		var err error
		if fromFile, err = godotenv.Read(*file); err != nil {
			return Config{}, fmt.Errorf("config: --config %s: %w", *file, err)
		}
	}
	r := reader{lookup: func(key string) (string, bool) {
		if v, ok := lookup(key); ok {
			return v, true
		}
		v, ok := fromFile[key]
		return v, ok
	}}

	c := Config{
		Address:                 r.str("REST_SERVER_ADDRESS", "0.0.0.0"),
		Port:                    r.integer("REST_SERVER_PORT", 8080, 0, 65535),
		TokenDuration:           r.duration("TOKEN_DURATION", 15*time.Minute, time.Second, 7*24*time.Hour),
		Secret:                  r.str("SECRET", ""),
		SecretPrevious:          r.str("SECRET_PREVIOUS", ""),
		DatabaseURL:             r.str("DATABASE_URL", ""),
		DataDir:                 r.str("DATA_DIR", "./data"),
		DBTimeout:               r.duration("DB_TIMEOUT", 3*time.Second, 10*time.Millisecond, time.Minute),
		Argon2MemoryKiB:         uint32(r.integer("ARGON2_MEMORY_KIB", OWASPMemoryKiB, 64, 4*1024*1024)),
		Argon2Time:              uint32(r.integer("ARGON2_TIME", 2, 1, 100)),
		Argon2Threads:           uint8(r.integer("ARGON2_THREADS", 1, 1, 255)),
		RequestTimeout:          r.duration("REQUEST_TIMEOUT", 10*time.Second, 10*time.Millisecond, 10*time.Minute),
		ShutdownTimeout:         r.duration("SHUTDOWN_TIMEOUT", 15*time.Second, 0, 10*time.Minute),
		MaxBodyBytes:            int64(r.integer("MAX_BODY_BYTES", 4096, 512, 1<<20)),
		TrustedProxies:          r.list("TRUSTED_PROXIES"),
		LoginMaxFailures:        r.integer("LOGIN_MAX_FAILURES", 5, 1, 1000),
		LoginMaxAddressFailures: r.integer("LOGIN_MAX_ADDRESS_FAILURES", 20, 1, 100000),
		LoginFailureWindow:      r.duration("LOGIN_FAILURE_WINDOW", 15*time.Minute, time.Second, 24*time.Hour),
		LoginLockout:            r.duration("LOGIN_LOCKOUT", 5*time.Minute, time.Second, 24*time.Hour),
		ThrottleMaxEntries:      r.integer("THROTTLE_MAX_ENTRIES", 100000, 10, 10000000),
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.str("LOG_LEVEL", "info"))); err != nil {
		r.fail("LOG_LEVEL", "must be one of debug, info, warn, error")
	}
	switch {
	case c.Secret == "":
		r.fail("SECRET", "is required")
	case len(c.Secret) < token.MinSecretBytes:
		r.fail("SECRET", fmt.Sprintf("must be at least %d bytes, got %d", token.MinSecretBytes, len(c.Secret)))
	}
	if c.SecretPrevious != "" && len(c.SecretPrevious) < token.MinSecretBytes {
		r.fail("SECRET_PREVIOUS", fmt.Sprintf("must be empty or at least %d bytes, got %d", token.MinSecretBytes, len(c.SecretPrevious)))
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		r.fail("DATABASE_URL", "must be empty (SQLite) or start with postgres:// or postgresql://")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		r.fail("DATA_DIR", "must not be empty when DATABASE_URL is empty")
	}
	if c.Argon2MemoryKiB < 8*uint32(c.Argon2Threads) {
		r.fail("ARGON2_MEMORY_KIB", "must be at least 8 × ARGON2_THREADS")
	}
	if err := errors.Join(r.errs...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

// Fields returns the settings for the start-up log line, secrets masked.
func (c Config) Fields() []zap.Field {
	return []zap.Field{
		zap.String("REST_SERVER_ADDRESS", c.Address),
		zap.Int("REST_SERVER_PORT", c.Port),
		zap.Duration("TOKEN_DURATION", c.TokenDuration),
		zap.String("SECRET", mask(c.Secret)),
		zap.String("SECRET_PREVIOUS", mask(c.SecretPrevious)),
		zap.String("DATABASE_URL", redactURL(c.DatabaseURL)),
		zap.String("DATA_DIR", c.DataDir),
		zap.Duration("DB_TIMEOUT", c.DBTimeout),
		zap.Stringer("LOG_LEVEL", c.LogLevel),
		zap.Uint32("ARGON2_MEMORY_KIB", c.Argon2MemoryKiB),
		zap.Uint32("ARGON2_TIME", c.Argon2Time),
		zap.Uint8("ARGON2_THREADS", c.Argon2Threads),
		zap.Duration("REQUEST_TIMEOUT", c.RequestTimeout),
		zap.Duration("SHUTDOWN_TIMEOUT", c.ShutdownTimeout),
		zap.Int64("MAX_BODY_BYTES", c.MaxBodyBytes),
		zap.Strings("TRUSTED_PROXIES", c.TrustedProxies),
		zap.Int("LOGIN_MAX_FAILURES", c.LoginMaxFailures),
		zap.Int("LOGIN_MAX_ADDRESS_FAILURES", c.LoginMaxAddressFailures),
		zap.Duration("LOGIN_FAILURE_WINDOW", c.LoginFailureWindow),
		zap.Duration("LOGIN_LOCKOUT", c.LoginLockout),
		zap.Int("THROTTLE_MAX_ENTRIES", c.ThrottleMaxEntries),
	}
}

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}

// redactURL hides the password of a database URL; an unparsable URL is
// hidden entirely, since it might still contain one.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "***"
	}
	return u.Redacted()
}

// reader looks up keys and collects one error per bad key.
type reader struct {
	lookup func(string) (string, bool)
	errs   []error
}

func (r *reader) fail(key, why string) {
	r.errs = append(r.errs, fmt.Errorf("%s %s", key, why))
}

func (r *reader) str(key, def string) string {
	if v, ok := r.lookup(key); ok {
		return v
	}
	return def
}

func (r *reader) integer(key string, def, lo, hi int) int {
	v, ok := r.lookup(key)
	if !ok || v == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		r.fail(key, fmt.Sprintf("must be an integer from %d to %d, got %q", lo, hi, v))
		return def
	}
	return n
}

func (r *reader) duration(key string, def, lo, hi time.Duration) time.Duration {
	v, ok := r.lookup(key)
	if !ok || v == "" {
		return def
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || d < lo || d > hi {
		r.fail(key, fmt.Sprintf("must be a duration (like 15m or 30s) from %s to %s, got %q", lo, hi, v))
		return def
	}
	return d
}

func (r *reader) list(key string) []string {
	var out []string
	for _, s := range strings.Split(r.str(key, ""), ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}
