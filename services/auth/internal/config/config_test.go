package config_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/joho/godotenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/grpcchatter/grpcchatter/internal/password"
	"github.com/grpcchatter/grpcchatter/services/auth/internal/config"
)

const secret = "0123456789abcdef0123456789abcdef"

// setEnv gives t an environment with only m set among the keys that
// Config reads and those in files, which Load copies into the environment;
// all of them are restored when t ends. Tests that call it cannot run in
// parallel, since the environment belongs to the process.
func setEnv(t *testing.T, m map[string]string, files ...string) {
	t.Helper()
	var keys []string
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		keys = append(keys, typ.Field(i).Tag.Get("envconfig"))
	}
	for _, f := range files {
		vars, err := godotenv.Read(f)
		require.NoError(t, err)
		for k := range vars {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		t.Setenv(k, "") // registers the restore
		require.NoError(t, os.Unsetenv(k))
	}
	for k, v := range m {
		t.Setenv(k, v)
	}
}

func TestDefaults(t *testing.T) {
	setEnv(t, map[string]string{"SECRET": secret})
	c, err := config.Load(nil)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0", c.Address)
	assert.Equal(t, 8080, c.Port)
	assert.Equal(t, 15*time.Minute, c.TokenDuration)
	assert.Equal(t, "", c.DatabaseURL)
	assert.Equal(t, "./data", c.DataDir)
	assert.Equal(t, 3*time.Second, c.DBTimeout)
	assert.Equal(t, zapcore.InfoLevel, c.LogLevel)
	assert.Equal(t, uint32(password.MinMemoryKiB), c.Argon2MemoryKiB)
	assert.Equal(t, uint32(password.MinTime), c.Argon2Time)
	assert.Equal(t, uint8(1), c.Argon2Threads)
	assert.Equal(t, 10*time.Second, c.RequestTimeout)
	assert.Equal(t, 15*time.Second, c.ShutdownTimeout)
	assert.Equal(t, int64(4096), c.MaxBodyBytes)
	assert.Nil(t, c.TrustedProxies)
	assert.Nil(t, c.CORSAllowedOrigins, "no other origin by default")
	assert.Equal(t, 5, c.LoginMaxFailures)
	assert.Equal(t, 100, c.LoginMaxAddressFailures)
	assert.Equal(t, 50, c.LoginMaxAccountFailures)
	assert.Equal(t, 15*time.Minute, c.LoginFailureWindow)
	assert.Equal(t, 5*time.Minute, c.LoginLockout)
	assert.Equal(t, time.Hour, c.LoginMaxLockout)
	assert.Equal(t, 30*24*time.Hour, c.LoginKnownAddressTTL)
	assert.Equal(t, "127.0.0.1:9091", c.MetricsAddress, "loopback only, off the API port")
	assert.Equal(t, 100000, c.ThrottleMaxEntries)
	assert.Equal(t, 30, c.RegisterRate)
	assert.Equal(t, 10, c.RegisterBurst)
	assert.Nil(t, c.GCPercent, "unset GOGC leaves the choice to the service")
}

func TestInvalidValuesNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"missing secret", map[string]string{}, "SECRET: is required"},
		{"empty secret", map[string]string{"SECRET": ""}, "SECRET: is required"},
		{"short secret", map[string]string{"SECRET": "short"}, "SECRET: invalid secret: must be at least 32 bytes, got 5"},
		{"short previous", map[string]string{"SECRET": secret, "SECRET_PREVIOUS": "x"}, "SECRET_PREVIOUS: invalid secret: must be at least 32 bytes"},
		{"bad duration", map[string]string{"SECRET": secret, "TOKEN_DURATION": "soon"}, `TOKEN_DURATION: must be a duration (like 15m or 30s) from 1s to 168h0m0s, got "soon"`},
		{"negative duration", map[string]string{"SECRET": secret, "TOKEN_DURATION": "-1m"}, "TOKEN_DURATION: must be a duration (like 15m or 30s) from 1s to 168h0m0s, got -1m0s"},
		{"empty duration", map[string]string{"SECRET": secret, "TOKEN_DURATION": ""}, `TOKEN_DURATION: must be a duration`},
		{"bad shutdown", map[string]string{"SECRET": secret, "SHUTDOWN_TIMEOUT": "1 minute"}, `SHUTDOWN_TIMEOUT: must be a duration (like 15m or 30s) from 1ms to 10m0s, got "1 minute"`},
		{"port not a number", map[string]string{"SECRET": secret, "REST_SERVER_PORT": "abc"}, `REST_SERVER_PORT: must be an integer from 0 to 65535, got "abc"`},
		{"port too big", map[string]string{"SECRET": secret, "REST_SERVER_PORT": "65536"}, "REST_SERVER_PORT: must be an integer from 0 to 65535, got 65536"},
		{"negative port", map[string]string{"SECRET": secret, "REST_SERVER_PORT": "-1"}, "REST_SERVER_PORT: must be an integer from 0 to 65535, got -1"},
		{"empty port", map[string]string{"SECRET": secret, "REST_SERVER_PORT": ""}, `REST_SERVER_PORT: must be an integer from 0 to 65535, got ""`},
		{"log level", map[string]string{"SECRET": secret, "LOG_LEVEL": "loud"}, `LOG_LEVEL: must be one of debug, info, warn, error, got "loud"`},
		{"database scheme", map[string]string{"SECRET": secret, "DATABASE_URL": "mysql://x"}, "DATABASE_URL: must be empty (SQLite) or start with postgres://"},
		{"empty data dir", map[string]string{"SECRET": secret, "DATA_DIR": ""}, "DATA_DIR: must not be empty when DATABASE_URL is empty"},
		{"db timeout", map[string]string{"SECRET": secret, "DB_TIMEOUT": "1ms"}, "DB_TIMEOUT: must be a duration"},
		{"request timeout", map[string]string{"SECRET": secret, "REQUEST_TIMEOUT": "11m"}, "REQUEST_TIMEOUT: must be a duration"},
		{"max body bytes", map[string]string{"SECRET": secret, "MAX_BODY_BYTES": "100"}, "MAX_BODY_BYTES: must be an integer from 512 to 1048576, got 100"},
		{"argon2 time", map[string]string{"SECRET": secret, "ARGON2_TIME": "0"}, "ARGON2_TIME: must be an integer from 2 to 16, got 0"},
		{"negative argon2 time", map[string]string{"SECRET": secret, "ARGON2_TIME": "-1"}, `ARGON2_TIME: must be an integer from 2 to 16, got "-1"`},
		{"argon2 memory", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "lots"}, `ARGON2_MEMORY_KIB: must be an integer from 19456 to 1048576, got "lots"`},
		{"argon2 memory below OWASP", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "64"}, "ARGON2_MEMORY_KIB: must be an integer from 19456 to 1048576, got 64"},
		{"argon2 memory just below OWASP", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "19455"}, "ARGON2_MEMORY_KIB: must be an integer from 19456"},
		{"argon2 memory above cap", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "4194304"}, "ARGON2_MEMORY_KIB: must be an integer from 19456 to 1048576, got 4194304"},
		{"argon2 time below OWASP", map[string]string{"SECRET": secret, "ARGON2_TIME": "1"}, "ARGON2_TIME: must be an integer from 2"},
		{"argon2 time above cap", map[string]string{"SECRET": secret, "ARGON2_TIME": "17"}, "ARGON2_TIME: must be an integer from 2 to 16, got 17"},
		{"argon2 threads", map[string]string{"SECRET": secret, "ARGON2_THREADS": "0"}, "ARGON2_THREADS: must be an integer from 1 to 255, got 0"},
		{"argon2 threads overflow", map[string]string{"SECRET": secret, "ARGON2_THREADS": "256"}, `ARGON2_THREADS: must be an integer from 1 to 255, got "256"`},
		{"throttle", map[string]string{"SECRET": secret, "LOGIN_MAX_FAILURES": "0"}, "LOGIN_MAX_FAILURES: must be an integer from 1 to 1000"},
		{"address throttle", map[string]string{"SECRET": secret, "LOGIN_MAX_ADDRESS_FAILURES": "100001"}, "LOGIN_MAX_ADDRESS_FAILURES: must be an integer from 1 to 100000"},
		{"account ceiling", map[string]string{"SECRET": secret, "LOGIN_MAX_ACCOUNT_FAILURES": "1"}, "LOGIN_MAX_ACCOUNT_FAILURES: must be an integer from 2 to 100000"},
		{"account ceiling below pair", map[string]string{"SECRET": secret, "LOGIN_MAX_FAILURES": "10", "LOGIN_MAX_ACCOUNT_FAILURES": "10"}, "LOGIN_MAX_ACCOUNT_FAILURES: must be greater than LOGIN_MAX_FAILURES (10), or one client address alone could lock the account for everyone, got 10"},
		{"max lockout", map[string]string{"SECRET": secret, "LOGIN_MAX_LOCKOUT": "169h"}, "LOGIN_MAX_LOCKOUT: must be a duration"},
		{"max lockout below lockout", map[string]string{"SECRET": secret, "LOGIN_LOCKOUT": "10m", "LOGIN_MAX_LOCKOUT": "5m"}, "LOGIN_MAX_LOCKOUT: must be at least LOGIN_LOCKOUT (10m0s), got 5m0s"},
		{"known address TTL", map[string]string{"SECRET": secret, "LOGIN_KNOWN_ADDRESS_TTL": "-1h"}, "LOGIN_KNOWN_ADDRESS_TTL: must be a duration"},
		{"metrics address without port", map[string]string{"SECRET": secret, "METRICS_ADDRESS": "127.0.0.1"}, `METRICS_ADDRESS: must be host:port, e.g. 127.0.0.1:9091, or empty to disable, got "127.0.0.1"`},
		{"metrics port", map[string]string{"SECRET": secret, "METRICS_ADDRESS": "127.0.0.1:70000"}, "METRICS_ADDRESS: must be host:port"},
		{"failure window", map[string]string{"SECRET": secret, "LOGIN_FAILURE_WINDOW": "25h"}, "LOGIN_FAILURE_WINDOW: must be a duration"},
		{"lockout", map[string]string{"SECRET": secret, "LOGIN_LOCKOUT": "500ms"}, "LOGIN_LOCKOUT: must be a duration"},
		{"throttle entries", map[string]string{"SECRET": secret, "THROTTLE_MAX_ENTRIES": "9"}, "THROTTLE_MAX_ENTRIES: must be an integer from 10"},
		{"zero shutdown", map[string]string{"SECRET": secret, "SHUTDOWN_TIMEOUT": "0s"}, "SHUTDOWN_TIMEOUT: must be a duration"},
		{"bogus address", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": "not a host!"}, `REST_SERVER_ADDRESS: must be an IP address or a host name, got "not a host!"`},
		{"address with port", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": "127.0.0.1:80"}, "REST_SERVER_ADDRESS: must be an IP address or a host name"},
		{"mistyped IP", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": "256.0.0.1"}, "REST_SERVER_ADDRESS: must be an IP address or a host name"},
		{"empty address", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": ""}, "REST_SERVER_ADDRESS: must be an IP address or a host name"},
		{"trusted proxies", map[string]string{"SECRET": secret, "TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, `TRUSTED_PROXIES: must be comma-separated IP addresses or CIDRs, got "proxy.local"`},
		{"register rate", map[string]string{"SECRET": secret, "REGISTER_RATE": "0"}, "REGISTER_RATE: must be an integer from 1 to 1000000"},
		{"register burst", map[string]string{"SECRET": secret, "REGISTER_BURST": "x"}, `REGISTER_BURST: must be an integer from 1 to 1000000, got "x"`},
		{"GOGC off", map[string]string{"SECRET": secret, "GOGC": "off"}, `GOGC: must be unset or an integer from 25 to 1000 (off is refused: every hash leaves its memory as garbage), got "off"`},
		{"GOGC zero", map[string]string{"SECRET": secret, "GOGC": "0"}, "GOGC: must be unset or an integer from 25 to 1000 (off is refused: every hash leaves its memory as garbage), got 0"},
		{"GOGC too high", map[string]string{"SECRET": secret, "GOGC": "1001"}, "GOGC: must be unset or an integer from 25 to 1000"},
		{"GOGC empty", map[string]string{"SECRET": secret, "GOGC": ""}, `GOGC: must be unset or an integer from 25 to 1000 (off is refused: every hash leaves its memory as garbage), got ""`},
		{"example secret", map[string]string{"SECRET": "replace-with-at-least-32-random-bytes-xxxxxxxx"}, "SECRET: secret looks like a placeholder"},
		{"changeme secret", map[string]string{"SECRET": "ChangeMe-0123456789abcdef0123456789"}, "SECRET: secret looks like a placeholder"},
		{"example word", map[string]string{"SECRET": "an-EXAMPLE-0123456789abcdef0123456789"}, "SECRET: secret looks like a placeholder"},
		{"repeated character", map[string]string{"SECRET": strings.Repeat("x", 40)}, "SECRET: secret looks like a placeholder"},
		{"placeholder previous", map[string]string{"SECRET": secret, "SECRET_PREVIOUS": strings.Repeat("0", 32)}, "SECRET_PREVIOUS: secret looks like a placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			setEnv(t, tt.env)
			_, err := config.Load(nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NotContains(t, err.Error(), "envconfig", "the message names the key, not the Go field")
		})
	}
}

func TestCORSAllowedOrigins(t *testing.T) {
	const help = `CORS_ALLOWED_ORIGINS: must be * or comma-separated origins scheme://host[:port] (http or https; no path, query or trailing slash), got `
	tests := []struct {
		value string
		want  []string // the parsed list when valid
		err   string   // the error when not
	}{
		{"", nil, ""},
		{" , ", nil, ""},
		{"*", []string{"*"}, ""},
		{" * ", []string{"*"}, ""},
		{"http://127.0.0.1:8081", []string{"http://127.0.0.1:8081"}, ""},
		{"https://chat.example.com, http://localhost:8081,", []string{"https://chat.example.com", "http://localhost:8081"}, ""},
		{"https://chat.example.com:8443", []string{"https://chat.example.com:8443"}, ""},
		{"http://[::1]:8081", []string{"http://[::1]:8081"}, ""},
		{"http://xn--bcher-kva.example", []string{"http://xn--bcher-kva.example"}, ""},

		{"http://127.0.0.1:8081/", nil, help + `"http://127.0.0.1:8081/": a trailing slash is a path; browsers send none`},
		{"https://chat.example.com/app", nil, help + `"https://chat.example.com/app": an origin has no path`},
		{"https://chat.example.com?x=1", nil, help + `"https://chat.example.com?x=1": an origin has no query or fragment`},
		{"ftp://chat.example.com", nil, help + `"ftp://chat.example.com": the scheme must be http or https`},
		{"chat.example.com", nil, help + `"chat.example.com": no scheme://`},
		{"HTTPS://chat.example.com", nil, `the scheme must be http or https`},
		{"https://Chat.example.com", nil, `"https://Chat.example.com": browsers send it in lower case`},
		{"https://user@chat.example.com", nil, `an origin has no user name or password`},
		{"https://", nil, `"https://": no host`},
		{"https://chat_example.com", nil, `not a valid host name`},
		{"http://::1", nil, `an IPv6 address must be in brackets`},
		{"http://[0:0::1]:8081", nil, `shortest form`},
		{"http://localhost:", nil, `"http://localhost:": empty port`},
		{"http://localhost:0", nil, `the port must be an integer from 1 to 65535`},
		{"http://localhost:08081", nil, `without leading zeros`},
		{"http://localhost:http", nil, `"http://localhost:http": not a URL`},
		{"http://localhost:80", nil, `browsers leave out the default port 80`},
		{"https://localhost:443", nil, `browsers leave out the default port 443`},
		{"*,http://localhost:8081", nil, `CORS_ALLOWED_ORIGINS: * allows every origin and cannot be listed with others, got "*,http://localhost:8081"`},
		{"http://localhost:8081, *", nil, `cannot be listed with others`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			setEnv(t, map[string]string{"SECRET": secret, "CORS_ALLOWED_ORIGINS": tt.value})
			c, err := config.Load(nil)
			if tt.err != "" {
				assert.ErrorContains(t, err, tt.err)
				assert.ErrorContains(t, err, "CORS_ALLOWED_ORIGINS: ")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, c.CORSAllowedOrigins)
		})
	}
}

func TestValidValues(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"host name":        {"REST_SERVER_ADDRESS": "localhost"},
		"dotted host name": {"REST_SERVER_ADDRESS": "auth-1.internal.example"},
		"IPv6":             {"REST_SERVER_ADDRESS": "::1"},
		"proxies":          {"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,2001:db8::/32"},
		"no proxies":       {"TRUSTED_PROXIES": " , "},
		"OWASP minimum":    {"ARGON2_MEMORY_KIB": "19456", "ARGON2_TIME": "2", "ARGON2_THREADS": "1"},
		"highest cost":     {"ARGON2_MEMORY_KIB": "1048576", "ARGON2_TIME": "16", "ARGON2_THREADS": "255"},
		"short shutdown":   {"SHUTDOWN_TIMEOUT": "1ms"},
		"free port":        {"REST_SERVER_PORT": "0"},
		"upper-case level": {"LOG_LEVEL": "DEBUG"},
		"empty level":      {"LOG_LEVEL": ""},
		"postgres":         {"DATABASE_URL": "postgresql://db/auth", "DATA_DIR": ""},
		"previous secret":  {"SECRET_PREVIOUS": "fedcba9876543210fedcba9876543210"},
		"lowest GOGC":      {"GOGC": "25"},
		"highest GOGC":     {"GOGC": "1000"},
		"metrics off":      {"METRICS_ADDRESS": ""},
		"metrics anywhere": {"METRICS_ADDRESS": ":9091"},
		"metrics by name":  {"METRICS_ADDRESS": "localhost:0"},
		"no known address": {"LOGIN_KNOWN_ADDRESS_TTL": "0s"},
		"fixed lockout":    {"LOGIN_LOCKOUT": "1m", "LOGIN_MAX_LOCKOUT": "1m"},
	} {
		t.Run(name, func(t *testing.T) {
			m["SECRET"] = secret
			setEnv(t, m)
			_, err := config.Load(nil)
			assert.NoError(t, err)
		})
	}
}

func TestValuesAreParsed(t *testing.T) {
	setEnv(t, map[string]string{
		"SECRET": secret, "SECRET_PREVIOUS": "fedcba9876543210fedcba9876543210",
		"REST_SERVER_PORT": "9000", "TOKEN_DURATION": "1h30m", "LOG_LEVEL": "warn",
		"ARGON2_MEMORY_KIB": "65536", "ARGON2_THREADS": "4", "MAX_BODY_BYTES": "8192",
		"TRUSTED_PROXIES": " 10.0.0.0/8, 192.0.2.1,,2001:db8::/32 ", "GOGC": "150",
	})
	c, err := config.Load(nil)
	require.NoError(t, err)
	assert.Equal(t, 9000, c.Port)
	assert.Equal(t, 90*time.Minute, c.TokenDuration)
	assert.Equal(t, zapcore.WarnLevel, c.LogLevel)
	assert.Equal(t, uint32(65536), c.Argon2MemoryKiB)
	assert.Equal(t, uint8(4), c.Argon2Threads)
	assert.Equal(t, int64(8192), c.MaxBodyBytes)
	assert.Equal(t, "fedcba9876543210fedcba9876543210", c.SecretPrevious)
	assert.Equal(t, []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32"}, c.TrustedProxies, "blanks around and between entries are dropped")
	require.NotNil(t, c.GCPercent)
	assert.Equal(t, 150, *c.GCPercent)
}

// TestExampleEnvFileIsRefused: the placeholder SECRET shipped in
// deployments/env.example must not start the service.
func TestExampleEnvFileIsRefused(t *testing.T) {
	const example = "../../../../deployments/env.example"
	setEnv(t, nil, example)
	_, err := config.Load([]string{"--config", example})
	assert.ErrorContains(t, err, "SECRET: secret looks like a placeholder")
}

func TestExtraArgumentsAreAUsageError(t *testing.T) {
	setEnv(t, map[string]string{"SECRET": secret})
	_, err := config.Load([]string{"--config", "x.env", "extra"})
	assert.ErrorContains(t, err, `unexpected argument "extra"; usage: auth [--config FILE]`)
	_, err = config.Load([]string{"serve"})
	assert.ErrorContains(t, err, `unexpected argument "serve"`)
}

func TestAllErrorsAreReportedAtOnce(t *testing.T) {
	setEnv(t, map[string]string{"REST_SERVER_PORT": "70000", "TOKEN_DURATION": "-1m", "TRUSTED_PROXIES": "proxy",
		"CORS_ALLOWED_ORIGINS": "http://a.example/"})
	_, err := config.Load(nil)
	require.Error(t, err)
	for _, key := range []string{"SECRET:", "REST_SERVER_PORT:", "TOKEN_DURATION:", "TRUSTED_PROXIES:", "CORS_ALLOWED_ORIGINS:"} {
		assert.Contains(t, err.Error(), key)
	}
}

// TestValidateAlone checks a Config built without Load, as a test or a
// caller might: every out-of-range setting of the zero value is reported.
func TestValidateAlone(t *testing.T) {
	err := config.Config{}.Validate()
	require.Error(t, err)
	for _, key := range []string{"SECRET", "REST_SERVER_ADDRESS", "TOKEN_DURATION", "DB_TIMEOUT", "DATA_DIR",
		"ARGON2_MEMORY_KIB", "ARGON2_TIME", "ARGON2_THREADS", "REQUEST_TIMEOUT", "SHUTDOWN_TIMEOUT",
		"MAX_BODY_BYTES", "LOGIN_MAX_FAILURES", "LOGIN_MAX_ADDRESS_FAILURES", "LOGIN_FAILURE_WINDOW",
		"LOGIN_LOCKOUT", "THROTTLE_MAX_ENTRIES", "REGISTER_RATE", "REGISTER_BURST"} {
		assert.Contains(t, err.Error(), key+":")
	}
	assert.NotContains(t, err.Error(), "REST_SERVER_PORT", "port 0 picks a free port")

	setEnv(t, map[string]string{"SECRET": secret})
	c, err := config.Load(nil)
	require.NoError(t, err)
	c.LogLevel = zapcore.InvalidLevel
	assert.ErrorContains(t, c.Validate(), "LOG_LEVEL: must be one of")
}

func TestConfigFileWithEnvOverride(t *testing.T) {
	file := filepath.Join(t.TempDir(), "auth.env")
	require.NoError(t, os.WriteFile(file, []byte(strings.Join([]string{
		"# comment",
		"SECRET=" + secret,
		"REST_SERVER_PORT=9000",
		`TOKEN_DURATION="1h"`,
		"DATA_DIR=/from/file",
	}, "\n")), 0o600))

	setEnv(t, map[string]string{"REST_SERVER_PORT": "9100"}, file)
	c, err := config.Load([]string{"--config", file})
	require.NoError(t, err)
	assert.Equal(t, 9100, c.Port, "the environment wins")
	assert.Equal(t, time.Hour, c.TokenDuration, "the file fills in")
	assert.Equal(t, "/from/file", c.DataDir)
	assert.Equal(t, secret, c.Secret)

	setEnv(t, map[string]string{"TOKEN_DURATION": "bad"}, file)
	_, err = config.Load([]string{"--config=" + file})
	assert.ErrorContains(t, err, `TOKEN_DURATION: must be a duration (like 15m or 30s) from 1s to 168h0m0s, got "bad"`,
		"a bad env value is not hidden by a good file value")

	setEnv(t, map[string]string{"DATA_DIR": ""}, file)
	_, err = config.Load([]string{"--config", file})
	assert.ErrorContains(t, err, "DATA_DIR:", "a variable set to empty is set: the file does not fill it in")
}

func TestConfigFileErrors(t *testing.T) {
	setEnv(t, map[string]string{"SECRET": secret})
	_, err := config.Load([]string{"--config", "/does/not/exist.env"})
	assert.ErrorContains(t, err, "--config /does/not/exist.env")
	_, err = config.Load([]string{"--bogus"})
	assert.ErrorContains(t, err, "flag provided but not defined: -bogus; usage: auth [--config FILE]")

	bad := filepath.Join(t.TempDir(), "bad.env")
	require.NoError(t, os.WriteFile(bad, []byte("SECRET='unterminated\n"), 0o600))
	_, err = config.Load([]string{"--config", bad})
	assert.ErrorContains(t, err, "--config "+bad)
}

func TestFieldsLogAllowedOrigins(t *testing.T) {
	setEnv(t, map[string]string{"SECRET": secret, "CORS_ALLOWED_ORIGINS": "http://127.0.0.1:8081,https://chat.example.com"})
	c, err := config.Load(nil)
	require.NoError(t, err)
	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).Info("starting", c.Fields()...)
	assert.Equal(t, []any{"http://127.0.0.1:8081", "https://chat.example.com"},
		logs.All()[0].ContextMap()["CORS_ALLOWED_ORIGINS"], "origins are not secret")
}

func TestFieldsMaskSecrets(t *testing.T) {
	setEnv(t, map[string]string{
		"SECRET":          secret,
		"SECRET_PREVIOUS": secret + "-old",
	})
	c, err := config.Load(nil)
	require.NoError(t, err)
	for _, tt := range []struct{ url, logged string }{
		{"postgres://auth:dbpassword@db:5432/auth", "postgres://auth:xxxxx@db:5432/auth"},
		{"postgres://auth@db:5432/auth?sslmode=disable&password=dbpassword", "postgres://auth@db:5432/auth?password=xxxxx&sslmode=disable"},
		{"postgresql://db/auth?PASSWORD=dbpassword&user=auth", "postgresql://db/auth?PASSWORD=xxxxx&user=auth"},
		{"postgres://auth:dbpassword@db/auth?password=dbpassword", "postgres://auth:xxxxx@db/auth?password=xxxxx"},
		{"postgres://db/auth?password=dbpassword;x=%zz", "***"},
	} {
		c.DatabaseURL = tt.url
		core, logs := observer.New(zap.InfoLevel)
		zap.New(core).Info("starting", c.Fields()...)
		fields := logs.All()[0].ContextMap()
		assert.Equal(t, "***", fields["SECRET"])
		assert.Equal(t, "***", fields["SECRET_PREVIOUS"])
		assert.Equal(t, tt.logged, fields["DATABASE_URL"])
		for k, v := range fields {
			if s, ok := v.(string); ok {
				assert.NotContains(t, s, secret, k)
				assert.NotContains(t, s, "dbpassword", k)
			}
		}
	}
}
