package e2e

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// netns is a network namespace of the test's own, with only a loopback
// interface, where packets can be dropped (nftables) without touching the
// machine's network. Processes run in it with `ip netns exec`; the test
// process dials into it (dial), each socket being made on a thread that
// has entered the namespace.
type netns struct {
	name string
	fd   int // the namespace, to enter
	home int // the test process's own namespace, to return to
}

// newNetns creates a namespace with loopback up, or skips when the test
// cannot (not root, or ip or nft missing), unless
// GRPCCHATTER_REQUIRE_NETNS=1 makes that a failure.
func newNetns(t *testing.T) *netns {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root to create a network namespace"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil && why == "" {
			why = tool + " is missing (Debian: iproute2, nftables)"
		}
	}
	if why != "" {
		if os.Getenv("GRPCCHATTER_REQUIRE_NETNS") == "1" {
			t.Fatalf("a network namespace is required (GRPCCHATTER_REQUIRE_NETNS=1) but %s", why)
		}
		t.Skipf("skipping: %s (set GRPCCHATTER_REQUIRE_NETNS=1 to fail instead)", why)
	}
	n := &netns{name: "grpcchatter-" + randomHex(4)}
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", n.name).Run() })
	n.exec(t, "ip", "link", "set", "lo", "up")
	n.exec(t, "nft", "add table inet loss")
	n.exec(t, "nft", "add chain inet loss out { type filter hook output priority 0 ; }")
	var err error
	n.fd, err = unix.Open("/var/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(n.fd) })
	n.home, err = unix.Open("/proc/self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Close(n.home) })
	return n
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	require.NoError(t, err, "%s %s: %s", name, strings.Join(args, " "), out)
}

// exec runs a command in the namespace.
func (n *netns) exec(t *testing.T, name string, args ...string) {
	t.Helper()
	run(t, "ip", append([]string{"netns", "exec", n.name, name}, args...)...)
}

// drop adds an nftables rule (e.g. "meta l4proto tcp numgen random mod
// 100 < 3") that drops the packets it matches, leaving the namespace, and
// counts them.
func (n *netns) drop(t *testing.T, match string) {
	t.Helper()
	n.exec(t, "nft", "add rule inet loss out "+match+" counter drop")
}

var counterRE = regexp.MustCompile(`counter packets (\d+)`)

// dropped is how many packets the drop rules have dropped.
func (n *netns) dropped(t *testing.T) int {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", n.name, "nft", "list", "chain", "inet", "loss", "out").CombinedOutput()
	require.NoError(t, err, "%s", out)
	total := 0
	for _, m := range counterRE.FindAllStringSubmatch(string(out), -1) {
		c, _ := strconv.Atoi(m[1])
		total += c
	}
	return total
}

// dial connects to addr from inside the namespace. Like grpc-go's own
// dialer, it leaves Go's 15 s TCP keepalive off: gRPC's PINGs check
// liveness.
func (n *netns) dial(ctx context.Context, addr string) (conn net.Conn, err error) {
	runtime.LockOSThread()
	if err := unix.Setns(n.fd, unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		return nil, fmt.Errorf("enter %s: %w", n.name, err)
	}
	// The socket is made in the namespace; it stays there whatever thread
	// uses it later.
	d := net.Dialer{KeepAlive: -1}
	conn, err = d.DialContext(ctx, "tcp", addr)
	if serr := unix.Setns(n.home, unix.CLONE_NEWNET); serr != nil {
		// The thread stays locked, so it ends with this goroutine
		// instead of serving others in the wrong namespace.
		if conn != nil {
			conn.Close()
		}
		return nil, fmt.Errorf("leave %s: %w", n.name, serr)
	}
	runtime.UnlockOSThread()
	return conn, err
}
