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
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/pkg/token"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/password"
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

	RegisterRate  int // REGISTER_RATE, registrations per hour per client address
	RegisterBurst int // REGISTER_BURST, registrations at once per client address
}

// The OWASP minimum for argon2id, below which Load refuses to start:
// hashes cheaper than this are too cheap to guess against offline.
const (
	MinArgon2MemoryKiB = 19 * 1024
	MinArgon2Time      = 2
)

// Load parses args (without the program name) for --config FILE, reads
// that file if given, and builds the Config from lookup (os.LookupEnv in
// production) falling back to the file, then to defaults.
func Load(args []string, lookup func(string) (string, bool)) (Config, error) {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "load settings from this .env `file` (environment variables win)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: %w; usage: auth [--config FILE]", err)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q; usage: auth [--config FILE]", fs.Arg(0))
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
		Argon2MemoryKiB:         uint32(r.integer("ARGON2_MEMORY_KIB", MinArgon2MemoryKiB, MinArgon2MemoryKiB, password.MaxMemoryKiB)),
		Argon2Time:              uint32(r.integer("ARGON2_TIME", MinArgon2Time, MinArgon2Time, 100)),
		Argon2Threads:           uint8(r.integer("ARGON2_THREADS", 1, 1, 255)),
		RequestTimeout:          r.duration("REQUEST_TIMEOUT", 10*time.Second, 10*time.Millisecond, 10*time.Minute),
		ShutdownTimeout:         r.duration("SHUTDOWN_TIMEOUT", 15*time.Second, time.Millisecond, 10*time.Minute),
		MaxBodyBytes:            int64(r.integer("MAX_BODY_BYTES", 4096, 512, 1<<20)),
		TrustedProxies:          r.list("TRUSTED_PROXIES"),
		LoginMaxFailures:        r.integer("LOGIN_MAX_FAILURES", 5, 1, 1000),
		LoginMaxAddressFailures: r.integer("LOGIN_MAX_ADDRESS_FAILURES", 20, 1, 100000),
		LoginFailureWindow:      r.duration("LOGIN_FAILURE_WINDOW", 15*time.Minute, time.Second, 24*time.Hour),
		LoginLockout:            r.duration("LOGIN_LOCKOUT", 5*time.Minute, time.Second, 24*time.Hour),
		ThrottleMaxEntries:      r.integer("THROTTLE_MAX_ENTRIES", 100000, 10, 10000000),
		RegisterRate:            r.integer("REGISTER_RATE", 30, 1, 1000000),
		RegisterBurst:           r.integer("REGISTER_BURST", 10, 1, 1000000),
	}
	if err := c.LogLevel.UnmarshalText([]byte(r.str("LOG_LEVEL", "info"))); err != nil {
		r.fail("LOG_LEVEL", "must be one of debug, info, warn, error")
	}
	switch {
	case c.Secret == "":
		r.fail("SECRET", "is required")
	case len(c.Secret) < token.MinSecretBytes:
		r.fail("SECRET", fmt.Sprintf("must be at least %d bytes, got %d", token.MinSecretBytes, len(c.Secret)))
	case placeholder(c.Secret):
		r.fail("SECRET", placeholderHelp)
	}
	switch {
	case c.SecretPrevious == "":
	case len(c.SecretPrevious) < token.MinSecretBytes:
		r.fail("SECRET_PREVIOUS", fmt.Sprintf("must be empty or at least %d bytes, got %d", token.MinSecretBytes, len(c.SecretPrevious)))
	case placeholder(c.SecretPrevious):
		r.fail("SECRET_PREVIOUS", placeholderHelp)
	}
	if why := checkHost(c.Address); why != "" {
		r.fail("REST_SERVER_ADDRESS", why)
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				r.fail("TRUSTED_PROXIES", fmt.Sprintf("must be comma-separated IP addresses or CIDRs, got %q", p))
			}
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		r.fail("DATABASE_URL", "must be empty (SQLite) or start with postgres:// or postgresql://")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		r.fail("DATA_DIR", "must not be empty when DATABASE_URL is empty")
	}
	if err := errors.Join(r.errs...); err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	return c, nil
}

const placeholderHelp = "looks like a placeholder (one repeated character, or contains " +
	"\"replace\", \"changeme\" or \"example\"); generate one with: openssl rand -hex 32"

// placeholder reports whether secret is an obvious stand-in, such as the
// value in an example env file, rather than a random secret.
func placeholder(secret string) bool {
	if strings.Count(secret, secret[:1]) == len(secret) {
		return true
	}
	lower := strings.ToLower(secret)
	for _, word := range []string{"replace", "changeme", "example"} {
		if strings.Contains(lower, word) {
			return true
		}
	}
	return false
}

// checkHost returns why addr cannot be a listening host, or "" if it is
// an IP address or a well-formed host name, so that a typo fails at start
// naming the key rather than later at listen.
func checkHost(addr string) string {
	const help = "must be an IP address or a host name"
	if net.ParseIP(addr) != nil {
		return ""
	}
	if addr == "" || len(addr) > 253 {
		return help + fmt.Sprintf(", got %q", addr)
	}
	labels := strings.Split(strings.TrimSuffix(addr, "."), ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return help + fmt.Sprintf(", got %q", addr)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return help + fmt.Sprintf(", got %q", addr)
			}
		}
	}
	// A name ending in a numeric label is a mistyped IP address, such as
	// 256.0.0.1 or 10.0.0.
	if _, err := strconv.Atoi(labels[len(labels)-1]); err == nil {
		return help + fmt.Sprintf(", got %q", addr)
	}
	return ""
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
		zap.Int("REGISTER_RATE", c.RegisterRate),
		zap.Int("REGISTER_BURST", c.RegisterBurst),
	}
}

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}

// redactURL hides the password of a database URL, both the user:pass@
// form and a password query parameter (which libpq and pgx accept, in any
// case of the key); an unparsable URL is hidden entirely, since it might
// still contain one.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "***"
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "***"
	}
	for k := range q {
		if strings.EqualFold(k, "password") {
			q[k] = []string{"xxxxx"}
		}
	}
	u.RawQuery = q.Encode()
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
