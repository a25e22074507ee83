package config

import (
	"strings"

	"go.uber.org/zap/zapcore"
)

// MarshalLogObject logs the configuration by its environment keys, with
// secrets masked and durations readable.
func (c Config) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	m := c.Masked()
	enc.AddString("GRPC_SERVER_ADDRESS", m.GRPCAddress)
	enc.AddInt("GRPC_SERVER_PORT", m.GRPCPort)
	enc.AddString("WEB_SERVER_ADDRESS", m.WebAddress)
	enc.AddInt("WEB_SERVER_PORT", m.WebPort)
	enc.AddString("WEB_AUTH_URL", m.WebAuthURL)
	enc.AddString("WS_ALLOWED_ORIGINS", strings.Join(m.WSAllowedOrigins, ","))
	enc.AddString("WS_PING_INTERVAL", m.WSPingInterval.String())
	enc.AddString("SECRET", m.Secret)
	enc.AddString("SECRET_PREVIOUS", m.SecretPrevious)
	enc.AddInt("SHORT_CODE_LENGTH", m.ShortCodeLength)
	enc.AddInt("MAX_MESSAGE_QUEUE_SIZE", m.MaxQueueSize)
	enc.AddString("ROOM_TOKEN_DURATION", m.RoomTokenDuration.String())
	enc.AddInt("HISTORY_SIZE", m.HistorySize)
	enc.AddInt("MAX_ROOMS_PER_USER", m.MaxRoomsPerUser)
	enc.AddInt("MAX_STREAMS_PER_USER", m.MaxStreamsPerUser)
	enc.AddInt("ROOM_CREATE_BURST", m.RoomCreateBurst)
	enc.AddString("ROOM_CREATE_INTERVAL", m.RoomCreateInterval.String())
	enc.AddInt("MAX_ROOM_MEMBERS", m.MaxRoomMembers)
	enc.AddString("PRESENCE_WINDOW", m.PresenceWindow.String())
	enc.AddInt("MAX_MESSAGE_BYTES", m.MaxMessageBytes)
	enc.AddFloat64("MAX_SEND_RATE", m.MaxSendRate)
	enc.AddInt("MAX_SEND_BURST", m.MaxSendBurst)
	enc.AddFloat64("MAX_USER_SEND_RATE", m.MaxUserSendRate)
	enc.AddInt("MAX_USER_SEND_BURST", m.MaxUserSendBurst)
	enc.AddString("ROOM_IDLE_TTL", m.RoomIdleTTL.String())
	enc.AddString("METRICS_ADDRESS", m.MetricsAddress)
	enc.AddBool("PPROF_ENABLED", m.PprofEnabled)
	enc.AddString("DATA_DIR", m.DataDir)
	enc.AddString("DATABASE_URL", m.DatabaseURL)
	enc.AddString("HISTORY_STORE", m.HistoryStore)
	enc.AddString("DB_TIMEOUT", m.DBTimeout.String())
	enc.AddString("NATS_URL", m.NATSURL)
	enc.AddString("NATS_CREDS_FILE", m.NATSCredsFile)
	enc.AddString("NATS_TLS_CA_FILE", m.NATSTLSCAFile)
	enc.AddString("NATS_TLS_CERT_FILE", m.NATSTLSCertFile)
	enc.AddString("NATS_TLS_KEY_FILE", m.NATSTLSKeyFile)
	enc.AddInt("NATS_REPLICAS", m.NATSReplicas)
	enc.AddString("INSTANCE_ID", m.InstanceID)
	enc.AddString("LOG_LEVEL", m.LogLevel)
	enc.AddString("SHUTDOWN_TIMEOUT", m.ShutdownTimeout.String())
	enc.AddUint32("ARGON2_MEMORY_KIB", m.Argon2MemoryKiB)
	enc.AddUint32("ARGON2_TIME", m.Argon2Time)
	enc.AddUint8("ARGON2_THREADS", m.Argon2Threads)
	return nil
}
