package h2guard

import (
	"net"

	"google.golang.org/grpc/credentials"
)

// Credentials returns gRPC server credentials that do what inner does
// (insecure.NewCredentials() for plain TCP) and guard every connection
// the handshake returns, so that the guard sees HTTP/2 frames, not TLS
// records. A gRPC server takes it with grpc.Creds.
//
// The handshake is the one place gRPC's public API hands a server
// connection to the application before HTTP/2 starts. A wrapping
// listener would work too, but gRPC sets TCP_USER_TIMEOUT (its keepalive
// timeout) only on a connection that is a *net.TCPConn, and it does so
// on the connection it accepted, before the handshake: this way that
// stays a *net.TCPConn.
func Credentials(inner credentials.TransportCredentials, cfg Config) credentials.TransportCredentials {
	return &creds{TransportCredentials: inner, cfg: cfg}
}

type creds struct {
	credentials.TransportCredentials
	cfg Config
}

func (c *creds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	conn, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err != nil {
		return conn, info, err
	}
	return Wrap(conn, c.cfg), info, nil
}

func (c *creds) Clone() credentials.TransportCredentials {
	return &creds{TransportCredentials: c.TransportCredentials.Clone(), cfg: c.cfg}
}
