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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(nil, env(tt.env))
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.key)
		})
	}
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
		"DATABASE_URL":    "postgres://auth:dbpassword@db:5432/auth",
	}))
	require.NoError(t, err)
	core, logs := observer.New(zap.InfoLevel)
	zap.New(core).Info("starting", c.Fields()...)
	fields := logs.All()[0].ContextMap()
	assert.Equal(t, "***", fields["SECRET"])
	assert.Equal(t, "***", fields["SECRET_PREVIOUS"])
	assert.Equal(t, "postgres://auth:xxxxx@db:5432/auth", fields["DATABASE_URL"])
	for k, v := range fields {
		if s, ok := v.(string); ok {
			assert.NotContains(t, s, secret, k)
			assert.NotContains(t, s, "dbpassword", k)
		}
	}
}
