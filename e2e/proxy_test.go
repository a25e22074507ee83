package e2e

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/grpcchatter/grpcchatter/internal/tcpproxy"
)

// newProxy is a loopback TCP proxy to target, closed when the test ends;
// tests cut or refuse its connections as a network failure would.
func newProxy(t *testing.T, target string) *tcpproxy.Proxy {
	t.Helper()
	p, err := tcpproxy.Listen(target)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}
