package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/zap/zapcore"

	"github.com/grpcchatter/grpcchatter/internal/password"
)

const goodSecret = "0123456789abcdef0123456789abcdef"

var keys = []string{"GRPC_SERVER_ADDRESS", "GRPC_SERVER_PORT", "SECRET", "SECRET_PREVIOUS", "SHORT_CODE_LENGTH",
	"MAX_MESSAGE_QUEUE_SIZE", "ROOM_TOKEN_DURATION", "HISTORY_SIZE", "MAX_MESSAGE_BYTES", "ROOM_IDLE_TTL",
	"METRICS_ADDRESS", "DATA_DIR", "LOG_LEVEL", "SHUTDOWN_TIMEOUT", "ARGON2_MEMORY_KIB", "ARGON2_TIME", "ARGON2_THREADS",
	"MAX_ROOMS_PER_USER", "MAX_STREAMS_PER_USER", "ROOM_CREATE_BURST", "ROOM_CREATE_INTERVAL", "PPROF_ENABLED", "DATABASE_URL", "HISTORY_STORE", "NATS_URL",
	"NATS_TLS_CERT_FILE", "NATS_TLS_KEY_FILE", "NATS_REPLICAS", "INSTANCE_ID", "MAX_ROOM_MEMBERS", "PRESENCE_WINDOW",
	"WEB_SERVER_ADDRESS", "WEB_SERVER_PORT", "WEB_AUTH_URL", "WS_ALLOWED_ORIGINS", "WS_PING_INTERVAL",
	"MAX_SEND_RATE", "MAX_SEND_BURST", "MAX_USER_SEND_RATE", "MAX_USER_SEND_BURST"}

// clearEnv unsets every key for the test; t.Setenv restores them after.
func clearEnv(t *testing.T) {
	for _, k := range keys {
		t.Setenv(k, "")
		require.NoError(t, os.Unsetenv(k))
	}
}

func TestDefaults(t *testing.T) {
	clearEnv(t)
	t.Setenv("SECRET", goodSecret)
	c, err := Load(nil)
	require.NoError(t, err)
	assert.Equal(t, "0.0.0.0:5050", c.GRPCListenAddress())
	assert.Equal(t, "0.0.0.0:8081", c.WebListenAddress())
	assert.Empty(t, c.WSAllowedOrigins, "only the page's own origin")
	assert.Equal(t, 15*time.Second, c.WSPingInterval)
	assert.Equal(t, 6, c.ShortCodeLength)
	assert.Equal(t, 256, c.MaxQueueSize)
	assert.Equal(t, 100, c.HistorySize)
	assert.Equal(t, 5000, c.MaxRoomMembers)
	assert.Equal(t, 200*time.Millisecond, c.PresenceWindow)
	assert.Equal(t, 20.0, c.MaxSendRate)
	assert.Equal(t, 50, c.MaxSendBurst)
	assert.Equal(t, 40.0, c.MaxUserSendRate)
	assert.Equal(t, 100, c.MaxUserSendBurst)
	assert.Less(t, c.MaxUserSendBurst, c.MaxQueueSize, "a user's burst fits in a reader's queue")
	assert.Equal(t, time.Hour, c.RoomTokenDuration)
	assert.Equal(t, 10, c.RoomCreateBurst)
	assert.Equal(t, 6*time.Second, c.RoomCreateInterval)
	assert.Equal(t, "./data", c.DataDir)
	assert.Equal(t, password.Params{MemoryKiB: 19456, Time: 2, Threads: 1}, c.Argon2(), "the OWASP minimum")
	assert.Equal(t, "********", c.Masked().Secret)
	assert.Equal(t, goodSecret, c.Secret, "Masked does not modify the original")
}

func TestInvalidNamesKey(t *testing.T) {
	cases := []struct {
		name, key, value string
	}{
		{"missing secret", "SECRET", ""},
		{"short secret", "SECRET", "short"},
		{"short previous", "SECRET_PREVIOUS", "short"},
		{"port not a number", "GRPC_SERVER_PORT", "abc"},
		{"address with a port", "GRPC_SERVER_ADDRESS", "0.0.0.0:5050"},
		{"address not a host", "GRPC_SERVER_ADDRESS", "a b"},
		{"web port out of range", "WEB_SERVER_PORT", "70000"},
		{"web port same as gRPC", "WEB_SERVER_PORT", "5050"},
		{"web address not a host", "WEB_SERVER_ADDRESS", "a b"},
		{"auth URL without scheme", "WEB_AUTH_URL", "auth.example.com"},
		{"auth URL with a query", "WEB_AUTH_URL", "https://auth.example.com/?x=1"},
		{"origin with a path", "WS_ALLOWED_ORIGINS", "https://app.example/"},
		{"origin without scheme", "WS_ALLOWED_ORIGINS", "https://ok.example, app.example"},
		{"origin wildcard", "WS_ALLOWED_ORIGINS", "https://*.example"},
		{"ping too often", "WS_PING_INTERVAL", "10ms"},
		{"metrics without port", "METRICS_ADDRESS", "127.0.0.1"},
		{"metrics bad port", "METRICS_ADDRESS", "127.0.0.1:http"},
		{"metrics bad host", "METRICS_ADDRESS", "a/b:9090"},
		// The same host rule as the auth service's (internal/hostname).
		{"address a mistyped IP", "GRPC_SERVER_ADDRESS", "256.0.0.1"},
		{"metrics host a mistyped IP", "METRICS_ADDRESS", "10.0.0:9090"},
		{"rooms per user zero", "MAX_ROOMS_PER_USER", "0"},
		{"streams per user zero", "MAX_STREAMS_PER_USER", "0"},
		{"create burst zero", "ROOM_CREATE_BURST", "0"},
		{"create burst huge", "ROOM_CREATE_BURST", "1001"},
		{"create interval zero", "ROOM_CREATE_INTERVAL", "0s"},
		{"create interval not a duration", "ROOM_CREATE_INTERVAL", "often"},
		{"room members negative", "MAX_ROOM_MEMBERS", "-1"},
		{"room members above a million", "MAX_ROOM_MEMBERS", "1000001"},
		{"presence window negative", "PRESENCE_WINDOW", "-1ms"},
		{"presence window above 5s", "PRESENCE_WINDOW", "6s"},
		{"send rate zero", "MAX_SEND_RATE", "0"},
		{"send rate below the minimum", "MAX_SEND_RATE", "0.0001"},
		{"send rate negative", "MAX_SEND_RATE", "-5"},
		{"send rate not a number", "MAX_SEND_RATE", "NaN"},
		{"send rate above the cap", "MAX_SEND_RATE", "2e6"},
		{"send burst zero", "MAX_SEND_BURST", "0"},
		{"user send rate zero", "MAX_USER_SEND_RATE", "0"},
		{"user send rate infinite", "MAX_USER_SEND_RATE", "+Inf"},
		{"user send burst zero", "MAX_USER_SEND_BURST", "0"},
		{"port out of range", "GRPC_SERVER_PORT", "70000"},
		{"queue zero", "MAX_MESSAGE_QUEUE_SIZE", "0"},
		{"bad duration", "ROOM_TOKEN_DURATION", "soon"},
		{"negative ttl", "ROOM_IDLE_TTL", "-1h"},
		{"history zero", "HISTORY_SIZE", "0"},
		{"code length", "SHORT_CODE_LENGTH", "2"},
		{"log level", "LOG_LEVEL", "loud"},
		{"argon2 memory below minimum", "ARGON2_MEMORY_KIB", "19455"},
		{"argon2 memory above maximum", "ARGON2_MEMORY_KIB", "1048577"},
		{"argon2 memory not a number", "ARGON2_MEMORY_KIB", "lots"},
		{"argon2 time below minimum", "ARGON2_TIME", "1"},
		{"argon2 time above maximum", "ARGON2_TIME", "17"},
		{"argon2 threads zero", "ARGON2_THREADS", "0"},
		{"argon2 threads above 255", "ARGON2_THREADS", "256"},
		{"secret one repeated character", "SECRET", strings.Repeat("a", 40)},
		{"secret with replace", "SECRET", "please-REPLACE-me-0123456789abcdef"},
		{"secret with changeme", "SECRET", "ChangeMe-0123456789abcdef0123456789"},
		{"secret with example", "SECRET", "0123456789abcdef-Example-0123456789"},
		{"previous one repeated character", "SECRET_PREVIOUS", strings.Repeat("z", 32)},
		{"previous with changeme", "SECRET_PREVIOUS", "0123456789abcdef0123456789CHANGEME"},
		{"nats url without scheme", "NATS_URL", "127.0.0.1:4222"},
		{"nats url of another scheme", "NATS_URL", "nats://a:4222,http://b:4222"},
		{"nats replicas zero", "NATS_REPLICAS", "0"},
		{"nats replicas above 5", "NATS_REPLICAS", "7"},
		{"nats cert without key", "NATS_TLS_CERT_FILE", "cert.pem"},
		{"instance id with a dot", "INSTANCE_ID", "chat.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("SECRET", goodSecret)
			if tc.value == "" {
				require.NoError(t, os.Unsetenv(tc.key))
			} else {
				t.Setenv(tc.key, tc.value)
			}
			_, err := Load(nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.key)
			assert.NotContains(t, err.Error(), goodSecret)
			if strings.HasPrefix(tc.key, "SECRET") && tc.value != "" {
				assert.NotContains(t, err.Error(), tc.value, "the secret itself is never echoed")
			}
		})
	}
}

// The web listener's settings: origins listed with blanks, an auth URL
// with a path, a port of its own.
func TestWebSettings(t *testing.T) {
	clearEnv(t)
	t.Setenv("SECRET", goodSecret)
	t.Setenv("WS_ALLOWED_ORIGINS", " https://app.example, http://127.0.0.1:3000 ,")
	t.Setenv("WEB_AUTH_URL", "https://example.com/auth")
	t.Setenv("WEB_SERVER_PORT", "9443")
	c, err := Load(nil)
	require.NoError(t, err)
	assert.Equal(t, []string{"https://app.example", "http://127.0.0.1:3000"}, []string(c.WSAllowedOrigins))
	assert.Equal(t, "0.0.0.0:9443", c.WebListenAddress())
	assert.Equal(t, "https://example.com/auth", c.WebAuthURL)
}

// Shared history lives in JetStream: an in-memory history cannot be
// shared, and NATS URLs are logged without their passwords.
func TestNATSSharedMode(t *testing.T) {
	clearEnv(t)
	t.Setenv("SECRET", goodSecret)
	t.Setenv("NATS_URL", "nats://chat:hunter2@n1:4222, nats://n2:4222")
	c, err := Load(nil)
	require.NoError(t, err)
	assert.True(t, c.Shared())
	assert.Equal(t, 1, c.NATSReplicas)
	assert.NotContains(t, c.Masked().NATSURL, "hunter2")
	assert.Contains(t, c.Masked().NATSURL, "n2:4222")

	t.Setenv("HISTORY_STORE", "memory")
	_, err = Load(nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "HISTORY_STORE")
}

func TestArgon2Configurable(t *testing.T) {
	clearEnv(t)
	t.Setenv("SECRET", goodSecret)
	t.Setenv("ARGON2_MEMORY_KIB", "65536")
	t.Setenv("ARGON2_TIME", "3")
	t.Setenv("ARGON2_THREADS", "4")
	c, err := Load(nil)
	require.NoError(t, err)
	assert.Equal(t, password.Params{MemoryKiB: 65536, Time: 3, Threads: 4}, c.Argon2())
}

func TestConfigFileRealEnvWins(t *testing.T) {
	clearEnv(t)
	file := filepath.Join(t.TempDir(), ".env")
	require.NoError(t, os.WriteFile(file, []byte("SECRET="+goodSecret+"\nHISTORY_SIZE=7\nGRPC_SERVER_PORT=6000\n"), 0o600))
	t.Setenv("GRPC_SERVER_PORT", "7000")
	c, err := Load([]string{"--config", file})
	require.NoError(t, err)
	assert.Equal(t, 7, c.HistorySize, "from the file")
	assert.Equal(t, 7000, c.GRPCPort, "real env wins")
	for _, k := range []string{"SECRET", "HISTORY_SIZE"} {
		require.NoError(t, os.Unsetenv(k)) // godotenv set them outside t.Setenv
	}

	_, err = Load([]string{"--config", filepath.Join(t.TempDir(), "missing.env")})
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "--config"))
}

func TestLogMasksSecrets(t *testing.T) {
	c := Config{Secret: goodSecret, SecretPrevious: goodSecret + "x", RoomTokenDuration: time.Hour}
	enc := zapcore.NewMapObjectEncoder()
	require.NoError(t, c.MarshalLogObject(enc))
	assert.Equal(t, "********", enc.Fields["SECRET"])
	assert.Equal(t, "********", enc.Fields["SECRET_PREVIOUS"])
	assert.Equal(t, "1h0m0s", enc.Fields["ROOM_TOKEN_DURATION"])
	assert.Contains(t, enc.Fields, "ARGON2_MEMORY_KIB")
	assert.Contains(t, enc.Fields, "MAX_SEND_RATE")
	assert.NotContains(t, fmt.Sprint(enc.Fields), goodSecret)
}

// Stray positional arguments are a usage error, not silently ignored.
func TestLoadRejectsPositionalArgs(t *testing.T) {
	clearEnv(t)
	t.Setenv("SECRET", goodSecret)
	_, err := Load([]string{"--config", "/dev/null", "extra"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), `unexpected argument "extra"`)
	assert.Contains(t, err.Error(), Usage)
}

func TestAddresses(t *testing.T) {
	clearEnv(t)
	t.Setenv("SECRET", goodSecret)
	t.Setenv("GRPC_SERVER_ADDRESS", "::1")
	t.Setenv("METRICS_ADDRESS", "[::1]:0")
	c, err := Load(nil)
	require.NoError(t, err)
	assert.Equal(t, "[::1]:5050", c.GRPCListenAddress())
	t.Setenv("GRPC_SERVER_ADDRESS", "chat.internal")
	t.Setenv("METRICS_ADDRESS", "")
	_, err = Load(nil)
	require.NoError(t, err)
	t.Setenv("GRPC_SERVER_ADDRESS", "chat.internal.") // fully qualified
	_, err = Load(nil)
	require.NoError(t, err)
	t.Setenv("GRPC_SERVER_ADDRESS", "") // every interface
	c, err = Load(nil)
	require.NoError(t, err)
	assert.Equal(t, ":5050", c.GRPCListenAddress())
	// pprof is served on the metrics listener, so it needs one.
	t.Setenv("PPROF_ENABLED", "true")
	_, err = Load(nil)
	require.ErrorContains(t, err, "PPROF_ENABLED")
	t.Setenv("METRICS_ADDRESS", "127.0.0.1:0")
	c, err = Load(nil)
	require.NoError(t, err)
	assert.True(t, c.PprofEnabled)
}
