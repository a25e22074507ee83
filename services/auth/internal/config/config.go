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
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
	"github.com/kelseyhightower/envconfig"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/internal/dburl"
	"github.com/grpcchatter/grpcchatter/internal/hostname"
	"github.com/grpcchatter/grpcchatter/internal/origin"
	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/internal/token"
)

// Config is every setting of the auth service. The envconfig tag names
// each environment key; Load fills in the default when a key is unset.
type Config struct {
	Address string `envconfig:"REST_SERVER_ADDRESS" default:"0.0.0.0"`
	Port    int    `envconfig:"REST_SERVER_PORT" default:"8080"` // 0 picks a free port
	// MetricsAddress (host:port) serves /metrics on a listener of its own,
	// off the public API port; empty disables it. The default is loopback
	// only, next to the chat service's 127.0.0.1:9090.
	MetricsAddress string `envconfig:"METRICS_ADDRESS" default:"127.0.0.1:9091"`

	TokenDuration  time.Duration `envconfig:"TOKEN_DURATION" default:"15m"`
	Secret         string        `envconfig:"SECRET"`          // signs user tokens
	SecretPrevious string        `envconfig:"SECRET_PREVIOUS"` // verification only

	DatabaseURL string        `envconfig:"DATABASE_URL"`              // empty selects SQLite
	DataDir     string        `envconfig:"DATA_DIR" default:"./data"` // holds auth.db for SQLite
	DBTimeout   time.Duration `envconfig:"DB_TIMEOUT" default:"3s"`   // per database call
	LogLevel    zapcore.Level `envconfig:"LOG_LEVEL" default:"info"`  // debug, info, warn or error

	// The defaults are the OWASP minimum, password.MinMemoryKiB and
	// password.MinTime, below which Load refuses to start: cheaper hashes
	// are too cheap to guess against offline.
	Argon2MemoryKiB uint32 `envconfig:"ARGON2_MEMORY_KIB" default:"19456"`
	Argon2Time      uint32 `envconfig:"ARGON2_TIME" default:"2"`
	Argon2Threads   uint8  `envconfig:"ARGON2_THREADS" default:"1"`

	RequestTimeout  time.Duration `envconfig:"REQUEST_TIMEOUT" default:"10s"`  // whole request incl. queueing for a hash slot
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"15s"` // for in-flight requests
	MaxBodyBytes    int64         `envconfig:"MAX_BODY_BYTES" default:"4096"`
	TrustedProxies  []string      `envconfig:"TRUSTED_PROXIES"` // comma-separated IPs/CIDRs

	// CORSAllowedOrigins are the origins (scheme://host[:port]) whose
	// pages may call the API from a browser, or just "*" for any; empty
	// allows none but the service's own.
	CORSAllowedOrigins []string `envconfig:"CORS_ALLOWED_ORIGINS"`

	// Failed logins are limited per (account, client address), per client
	// address across accounts, and per account from addresses it has not
	// logged in from within LOGIN_KNOWN_ADDRESS_TTL; see throttle.Logins.
	LoginMaxFailures        int           `envconfig:"LOGIN_MAX_FAILURES" default:"5"`           // per account and client address
	LoginMaxAddressFailures int           `envconfig:"LOGIN_MAX_ADDRESS_FAILURES" default:"100"` // per client address
	LoginMaxAccountFailures int           `envconfig:"LOGIN_MAX_ACCOUNT_FAILURES" default:"50"`  // per account, from new addresses
	LoginFailureWindow      time.Duration `envconfig:"LOGIN_FAILURE_WINDOW" default:"15m"`       // how long a failure counts
	LoginLockout            time.Duration `envconfig:"LOGIN_LOCKOUT" default:"5m"`               // first lockout; doubles with each further one
	LoginMaxLockout         time.Duration `envconfig:"LOGIN_MAX_LOCKOUT" default:"1h"`           // cap of the doubling
	LoginKnownAddressTTL    time.Duration `envconfig:"LOGIN_KNOWN_ADDRESS_TTL" default:"720h"`   // exempts an owner's address from the account ceiling
	ThrottleMaxEntries      int           `envconfig:"THROTTLE_MAX_ENTRIES" default:"100000"`    // per table

	RegisterRate  int `envconfig:"REGISTER_RATE" default:"30"`  // registrations per hour per client address
	RegisterBurst int `envconfig:"REGISTER_BURST" default:"10"` // registrations at once per client address

	// GCPercent is the Go runtime's own GOGC, read here as well so that it
	// is validated and logged. Unset (nil), the service picks a value from
	// its hashing slots (see cmd/auth). "off" is refused: every hash
	// leaves ARGON2_MEMORY_KIB of garbage, so a heap that is never
	// collected grows by that much per login.
	GCPercent *int `envconfig:"GOGC"`
}

// The range of GOGC that Load accepts.
const (
	MinGCPercent = 25
	MaxGCPercent = 1000
)

const usage = "usage: auth [--config FILE]"

// Load parses args (without the program name) for --config FILE, loads
// that file into the process environment without overriding variables
// already set (so the real environment wins), then reads the Config from
// the environment and validates it. Every error names its key.
func Load(args []string) (Config, error) {
	fs := flag.NewFlagSet("auth", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	file := fs.String("config", "", "load settings from this .env `file` (environment variables win)")
	if err := fs.Parse(args); err != nil {
		return Config{}, fmt.Errorf("config: %w; %s", err, usage)
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("config: unexpected argument %q; %s", fs.Arg(0), usage)
	}
	if *file != "" {
		if err := godotenv.Load(*file); err != nil {
			return Config{}, fmt.Errorf("config: --config %s: %w", *file, err)
		}
	}
	var c Config
	if err := envconfig.Process("", &c); err != nil {
		return Config{}, fmt.Errorf("config: %w", keyError(err))
	}
	c.TrustedProxies = trimList(c.TrustedProxies)
	c.CORSAllowedOrigins = trimList(c.CORSAllowedOrigins)
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Validate checks what the types alone do not: ranges, formats and the
// secrets. It reports every invalid key at once, each as "KEY: why".
func (c Config) Validate() error {
	var errs []error
	fail := func(key, why string) { errs = append(errs, fmt.Errorf("%s: %s", key, why)) }

	if c.Secret == "" {
		fail("SECRET", "is required; generate one with: openssl rand -hex 32")
	} else if err := token.CheckSecret(c.Secret); err != nil {
		errs = append(errs, fmt.Errorf("SECRET: %w", err))
	}
	if c.SecretPrevious != "" {
		if err := token.CheckSecret(c.SecretPrevious); err != nil {
			errs = append(errs, fmt.Errorf("SECRET_PREVIOUS: %w", err))
		}
	}
	if why := checkHost(c.Address); why != "" {
		fail("REST_SERVER_ADDRESS", why)
	}
	if c.MetricsAddress != "" && !validHostPort(c.MetricsAddress) {
		fail("METRICS_ADDRESS", fmt.Sprintf("must be host:port, e.g. 127.0.0.1:9091, or empty to disable, got %q", c.MetricsAddress))
	}
	for _, n := range c.numbers() {
		if n.value < n.lo || n.value > n.hi {
			fail(n.key, fmt.Sprintf("%s, got %s", n.want(), n.format(n.value)))
		}
	}
	if c.LoginMaxAccountFailures <= c.LoginMaxFailures {
		fail("LOGIN_MAX_ACCOUNT_FAILURES", fmt.Sprintf("must be greater than LOGIN_MAX_FAILURES (%d), or one client address alone could lock the account for everyone, got %d",
			c.LoginMaxFailures, c.LoginMaxAccountFailures))
	}
	if c.LoginMaxLockout < c.LoginLockout {
		fail("LOGIN_MAX_LOCKOUT", fmt.Sprintf("must be at least LOGIN_LOCKOUT (%s), got %s", c.LoginLockout, c.LoginMaxLockout))
	}
	if g := c.GCPercent; g != nil && (*g < MinGCPercent || *g > MaxGCPercent) {
		fail("GOGC", fmt.Sprintf("%s, got %d", gcHelp, *g))
	}
	if c.LogLevel < zapcore.DebugLevel || c.LogLevel > zapcore.FatalLevel {
		fail("LOG_LEVEL", logLevelHelp)
	}
	for _, p := range c.TrustedProxies {
		if net.ParseIP(p) == nil {
			if _, _, err := net.ParseCIDR(p); err != nil {
				fail("TRUSTED_PROXIES", fmt.Sprintf("must be comma-separated IP addresses or CIDRs, got %q", p))
			}
		}
	}
	for _, o := range c.CORSAllowedOrigins {
		if o == "*" {
			if len(c.CORSAllowedOrigins) > 1 {
				fail("CORS_ALLOWED_ORIGINS", fmt.Sprintf("* allows every origin and cannot be listed with others, got %q",
					strings.Join(c.CORSAllowedOrigins, ",")))
			}
		} else if err := origin.Check(o); err != nil {
			fail("CORS_ALLOWED_ORIGINS", fmt.Sprintf("%s, got %q: %v", originHelp, o, err))
		}
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		fail("DATABASE_URL", "must be empty (SQLite) or start with postgres:// or postgresql://")
	}
	if c.DatabaseURL == "" && c.DataDir == "" {
		fail("DATA_DIR", "must not be empty when DATABASE_URL is empty")
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

const originHelp = "must be * or comma-separated origins scheme://host[:port] (http or https; no path, query or trailing slash)"

const logLevelHelp = "must be one of debug, info, warn, error"

var gcHelp = fmt.Sprintf("must be unset or an integer from %d to %d (off is refused: every hash leaves its memory as garbage)", MinGCPercent, MaxGCPercent)

// number is an integer or duration setting and its inclusive range.
type number struct {
	key           string
	value, lo, hi int64
	duration      bool
}

// numbers lists the range of every integer and duration setting, for
// Validate and for the message when a value does not parse at all.
func (c Config) numbers() []number {
	i := func(key string, v, lo, hi int64) number { return number{key, v, lo, hi, false} }
	d := func(key string, v, lo, hi time.Duration) number {
		return number{key, int64(v), int64(lo), int64(hi), true}
	}
	return []number{
		i("REST_SERVER_PORT", int64(c.Port), 0, 65535),
		d("TOKEN_DURATION", c.TokenDuration, time.Second, 7*24*time.Hour),
		d("DB_TIMEOUT", c.DBTimeout, 10*time.Millisecond, time.Minute),
		i("ARGON2_MEMORY_KIB", int64(c.Argon2MemoryKiB), password.MinMemoryKiB, password.MaxMemoryKiB),
		i("ARGON2_TIME", int64(c.Argon2Time), password.MinTime, password.MaxTime),
		i("ARGON2_THREADS", int64(c.Argon2Threads), 1, 255),
		d("REQUEST_TIMEOUT", c.RequestTimeout, 10*time.Millisecond, 10*time.Minute),
		d("SHUTDOWN_TIMEOUT", c.ShutdownTimeout, time.Millisecond, 10*time.Minute),
		i("MAX_BODY_BYTES", c.MaxBodyBytes, 512, 1<<20),
		i("LOGIN_MAX_FAILURES", int64(c.LoginMaxFailures), 1, 1000),
		i("LOGIN_MAX_ADDRESS_FAILURES", int64(c.LoginMaxAddressFailures), 1, 100000),
		i("LOGIN_MAX_ACCOUNT_FAILURES", int64(c.LoginMaxAccountFailures), 2, 100000),
		d("LOGIN_FAILURE_WINDOW", c.LoginFailureWindow, time.Second, 24*time.Hour),
		d("LOGIN_LOCKOUT", c.LoginLockout, time.Second, 24*time.Hour),
		d("LOGIN_MAX_LOCKOUT", c.LoginMaxLockout, time.Second, 7*24*time.Hour),
		d("LOGIN_KNOWN_ADDRESS_TTL", c.LoginKnownAddressTTL, 0, 365*24*time.Hour),
		i("THROTTLE_MAX_ENTRIES", int64(c.ThrottleMaxEntries), 10, 10000000),
		i("REGISTER_RATE", int64(c.RegisterRate), 1, 1000000),
		i("REGISTER_BURST", int64(c.RegisterBurst), 1, 1000000),
	}
}

func (n number) want() string {
	if n.duration {
		return fmt.Sprintf("must be a duration (like 15m or 30s) from %s to %s", n.format(n.lo), n.format(n.hi))
	}
	return fmt.Sprintf("must be an integer from %d to %d", n.lo, n.hi)
}

func (n number) format(v int64) string {
	if n.duration {
		return time.Duration(v).String()
	}
	return strconv.FormatInt(v, 10)
}

// keyError rewords envconfig's parse error, which names the Go field and
// type, as "KEY: what it must be, got VALUE". Only typed settings can fail
// to parse and none of them is secret, so quoting the value is safe.
func keyError(err error) error {
	var pe *envconfig.ParseError
	if !errors.As(err, &pe) {
		return err
	}
	for _, n := range (Config{}).numbers() {
		if n.key == pe.KeyName {
			return fmt.Errorf("%s: %s, got %q", pe.KeyName, n.want(), pe.Value)
		}
	}
	switch pe.KeyName {
	case "LOG_LEVEL":
		return fmt.Errorf("%s: %s, got %q", pe.KeyName, logLevelHelp, pe.Value)
	case "GOGC":
		return fmt.Errorf("%s: %s, got %q", pe.KeyName, gcHelp, pe.Value)
	}
	return fmt.Errorf("%s: %w", pe.KeyName, pe.Err)
}

// trimList drops the blanks around and between comma-separated values,
// which envconfig keeps, so that "a, b," means [a b].
func trimList(in []string) []string {
	var out []string
	for _, s := range in {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

// checkHost returns why addr cannot be a listening host, or "" if it is
// an IP address or a well-formed host name (see hostname.Valid).
func checkHost(addr string) string {
	if !hostname.Valid(addr) {
		return fmt.Sprintf("must be an IP address or a host name, got %q", addr)
	}
	return ""
}

// validHostPort reports whether a is host:port with a port from 0 to 65535
// and an IP address, a host name or nothing (every interface) as host.
func validHostPort(a string) bool {
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535 && (host == "" || hostname.Valid(host))
}

// Fields returns the settings for the start-up log line, secrets masked.
func (c Config) Fields() []zap.Field {
	return []zap.Field{
		zap.String("REST_SERVER_ADDRESS", c.Address),
		zap.Int("REST_SERVER_PORT", c.Port),
		zap.String("METRICS_ADDRESS", c.MetricsAddress),
		zap.Duration("TOKEN_DURATION", c.TokenDuration),
		zap.String("SECRET", mask(c.Secret)),
		zap.String("SECRET_PREVIOUS", mask(c.SecretPrevious)),
		zap.String("DATABASE_URL", dburl.Redacted(c.DatabaseURL)),
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
		zap.Strings("CORS_ALLOWED_ORIGINS", c.CORSAllowedOrigins), // not secret
		zap.Int("LOGIN_MAX_FAILURES", c.LoginMaxFailures),
		zap.Int("LOGIN_MAX_ADDRESS_FAILURES", c.LoginMaxAddressFailures),
		zap.Int("LOGIN_MAX_ACCOUNT_FAILURES", c.LoginMaxAccountFailures),
		zap.Duration("LOGIN_FAILURE_WINDOW", c.LoginFailureWindow),
		zap.Duration("LOGIN_LOCKOUT", c.LoginLockout),
		zap.Duration("LOGIN_MAX_LOCKOUT", c.LoginMaxLockout),
		zap.Duration("LOGIN_KNOWN_ADDRESS_TTL", c.LoginKnownAddressTTL),
		zap.Int("THROTTLE_MAX_ENTRIES", c.ThrottleMaxEntries),
		zap.Int("REGISTER_RATE", c.RegisterRate),
		zap.Int("REGISTER_BURST", c.RegisterBurst),
		gcField(c.GCPercent),
	}
}

func gcField(p *int) zap.Field {
	if p == nil {
		return zap.String("GOGC", "unset")
	}
	return zap.Int("GOGC", *p)
}

func mask(secret string) string {
	if secret == "" {
		return ""
	}
	return "***"
}
