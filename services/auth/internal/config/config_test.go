package config_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/grpcchatter/grpcchatter/services/auth/internal/config"
)

const secret = "0123456789abcdef0123456789abcdef"

// env returns a lookup over m, standing in for os.LookupEnv.
func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := config.Load(nil, env(map[string]string{"SECRET": secret}))
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0", c.Address)
	assert.Equal(t, 8080, c.Port)
	assert.Equal(t, 15*time.Minute, c.TokenDuration)
	assert.Equal(t, "", c.DatabaseURL)
	assert.Equal(t, "./data", c.DataDir)
	assert.Equal(t, zapcore.InfoLevel, c.LogLevel)
	assert.Equal(t, uint32(19456), c.Argon2MemoryKiB)
	assert.Equal(t, uint32(2), c.Argon2Time)
	assert.Equal(t, uint8(1), c.Argon2Threads)
	assert.Equal(t, int64(4096), c.MaxBodyBytes)
	assert.Equal(t, 5, c.LoginMaxFailures)
}

func TestInvalidValuesNameTheKey(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		key  string
	}{
		{"missing secret", map[string]string{}, "SECRET is required"},
		{"empty secret", map[string]string{"SECRET": ""}, "SECRET is required"},
		{"short secret", map[string]string{"SECRET": "short"}, "SECRET must be at least 32 bytes"},
		{"short previous", map[string]string{"SECRET": secret, "SECRET_PREVIOUS": "x"}, "SECRET_PREVIOUS"},
		{"bad duration", map[string]string{"SECRET": secret, "TOKEN_DURATION": "soon"}, "TOKEN_DURATION"},
		{"negative duration", map[string]string{"SECRET": secret, "TOKEN_DURATION": "-1m"}, "TOKEN_DURATION"},
		{"bad shutdown", map[string]string{"SECRET": secret, "SHUTDOWN_TIMEOUT": "1 minute"}, "SHUTDOWN_TIMEOUT"},
		{"port not a number", map[string]string{"SECRET": secret, "REST_SERVER_PORT": "http"}, "REST_SERVER_PORT"},
		{"port too big", map[string]string{"SECRET": secret, "REST_SERVER_PORT": "65536"}, "REST_SERVER_PORT"},
		{"negative port", map[string]string{"SECRET": secret, "REST_SERVER_PORT": "-1"}, "REST_SERVER_PORT"},
		{"log level", map[string]string{"SECRET": secret, "LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"database scheme", map[string]string{"SECRET": secret, "DATABASE_URL": "mysql://x"}, "DATABASE_URL"},
		{"argon2 time", map[string]string{"SECRET": secret, "ARGON2_TIME": "0"}, "ARGON2_TIME"},
		{"argon2 memory", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "lots"}, "ARGON2_MEMORY_KIB"},
		{"throttle", map[string]string{"SECRET": secret, "LOGIN_MAX_FAILURES": "0"}, "LOGIN_MAX_FAILURES"},
		{"argon2 memory below OWASP", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "64"}, "ARGON2_MEMORY_KIB must be an integer from 19456"},
		{"argon2 memory just below OWASP", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "19455"}, "ARGON2_MEMORY_KIB"},
		{"argon2 memory above cap", map[string]string{"SECRET": secret, "ARGON2_MEMORY_KIB": "4194304"}, "ARGON2_MEMORY_KIB"},
		{"argon2 time below OWASP", map[string]string{"SECRET": secret, "ARGON2_TIME": "1"}, "ARGON2_TIME must be an integer from 2"},
		{"argon2 threads", map[string]string{"SECRET": secret, "ARGON2_THREADS": "0"}, "ARGON2_THREADS"},
		{"zero shutdown", map[string]string{"SECRET": secret, "SHUTDOWN_TIMEOUT": "0s"}, "SHUTDOWN_TIMEOUT"},
		{"bogus address", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": "not a host!"}, "REST_SERVER_ADDRESS"},
		{"address with port", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": "127.0.0.1:80"}, "REST_SERVER_ADDRESS"},
		{"mistyped IP", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": "256.0.0.1"}, "REST_SERVER_ADDRESS"},
		{"empty address", map[string]string{"SECRET": secret, "REST_SERVER_ADDRESS": ""}, "REST_SERVER_ADDRESS"},
		{"trusted proxies", map[string]string{"SECRET": secret, "TRUSTED_PROXIES": "10.0.0.0/8, proxy.local"}, `TRUSTED_PROXIES must be comma-separated IP addresses or CIDRs, got "proxy.local"`},
		{"register rate", map[string]string{"SECRET": secret, "REGISTER_RATE": "0"}, "REGISTER_RATE"},
		{"register burst", map[string]string{"SECRET": secret, "REGISTER_BURST": "x"}, "REGISTER_BURST"},
		{"example secret", map[string]string{"SECRET": "replace-with-at-least-32-random-bytes-xxxxxxxx"}, "SECRET looks like a placeholder"},
		{"changeme secret", map[string]string{"SECRET": "ChangeMe-0123456789abcdef0123456789"}, "SECRET looks like a placeholder"},
		{"example word", map[string]string{"SECRET": "an-EXAMPLE-0123456789abcdef0123456789"}, "SECRET looks like a placeholder"},
		{"repeated character", map[string]string{"SECRET": strings.Repeat("x", 40)}, "SECRET looks like a placeholder"},
		{"placeholder previous", map[string]string{"SECRET": secret, "SECRET_PREVIOUS": strings.Repeat("0", 32)}, "SECRET_PREVIOUS looks like a placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(nil, env(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
}

func TestValidValues(t *testing.T) {
	for name, m := range map[string]map[string]string{
		"host name":        {"REST_SERVER_ADDRESS": "localhost"},
		"dotted host name": {"REST_SERVER_ADDRESS": "auth-1.internal.example"},
		"IPv6":             {"REST_SERVER_ADDRESS": "::1"},
		"proxies":          {"TRUSTED_PROXIES": "10.0.0.0/8, 192.0.2.1,2001:db8::/32"},
		"OWASP minimum":    {"ARGON2_MEMORY_KIB": "19456", "ARGON2_TIME": "2", "ARGON2_THREADS": "1"},
		"short shutdown":   {"SHUTDOWN_TIMEOUT": "1ms"},
	} {
		t.Run(name, func(t *testing.T) {
			m["SECRET"] = secret
			_, err := config.Load(nil, env(m))
			assert.NoError(t, err)
		})
	}
}

// TestExampleEnvFileIsRefused: the placeholder SECRET shipped in
// deployments/env.example must not start the service.
func TestExampleEnvFileIsRefused(t *testing.T) {
	_, err := config.Load([]string{"--config", "../../../../deployments/env.example"}, env(nil))
	assert.ErrorContains(t, err, "SECRET looks like a placeholder")
}

func TestExtraArgumentsAreAUsageError(t *testing.T) {
	_, err := config.Load([]string{"--config", "x.env", "extra"}, env(map[string]string{"SECRET": secret}))
	assert.ErrorContains(t, err, `unexpected argument "extra"; usage: auth [--config FILE]`)
	_, err = config.Load([]string{"serve"}, env(map[string]string{"SECRET": secret}))
	assert.ErrorContains(t, err, `unexpected argument "serve"`)
}

func TestAllErrorsAreReportedAtOnce(t *testing.T) {
	_, err := config.Load(nil, env(map[string]string{"REST_SERVER_PORT": "x", "TOKEN_DURATION": "y"}))
	require.Error(t, err)
	for _, key := range []string{"SECRET", "REST_SERVER_PORT", "TOKEN_DURATION"} {
		assert.Contains(t, err.Error(), key)
	}
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

	c, err := config.Load([]string{"--config", file}, env(map[string]string{"REST_SERVER_PORT": "9100"}))
	require.NoError(t, err)
	assert.Equal(t, 9100, c.Port, "the environment wins")
	assert.Equal(t, time.Hour, c.TokenDuration, "the file fills in")
	assert.Equal(t, "/from/file", c.DataDir)
	assert.Equal(t, secret, c.Secret)

	_, err = config.Load([]string{"--config=" + file}, env(map[string]string{"TOKEN_DURATION": "bad"}))
	assert.ErrorContains(t, err, "TOKEN_DURATION", "a bad env value is not hidden by a good file value")
}

func TestConfigFileErrors(t *testing.T) {
	_, err := config.Load([]string{"--config", "/does/not/exist.env"}, env(nil))
	assert.ErrorContains(t, err, "/does/not/exist.env")
	_, err = config.Load([]string{"--bogus"}, env(map[string]string{"SECRET": secret}))
	assert.Error(t, err)
}

func TestFieldsMaskSecrets(t *testing.T) {
	c, err := config.Load(nil, env(map[string]string{
		"SECRET":          secret,
		"SECRET_PREVIOUS": secret + "-old",
	}))
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
