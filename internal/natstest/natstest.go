// Package natstest gives tests NATS servers of their own: a fresh
// nats-server process with JetStream, or a cluster of them whose nodes a
// test may stop and start again. Every process is killed when its test
// ends; on failure the tail of its log is printed.
//
// The binary is $NATS_SERVER_BIN, else bin/tools/nats-server under the
// workspace root (the directory holding go.work; `make tools` builds it),
// else nats-server on PATH; it must be v2.11 or later. When none is found
// or it does not start, the test skips, unless GRPCCHATTER_REQUIRE_NATS=1 (as in CI), in which case
// it fails.
package natstest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startTimeout bounds how long a node may take to accept clients, and a
// cluster to elect its JetStream meta leader.
const startTimeout = 30 * time.Second

// Node is one nats-server process. Its URL, ports and storage directory
// stay the same across Stop and Start.
type Node struct {
	// URL is the client URL, nats://127.0.0.1:PORT.
	URL string

	t    testing.TB
	bin  string
	args []string
	log  string // the process's output, appended to across restarts

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Server starts a single node with JetStream and returns its client URL.
func Server(t testing.TB) string {
	t.Helper()
	return StartServer(t).URL
}

// StartServer starts a single node with JetStream, for tests that stop it.
func StartServer(t testing.TB) *Node {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	var err error
	for range 3 { // a free port can be taken between picking and binding it
		ports := freePorts(t, 1)
		n := newNode(t, bin, dir, ports[0], "-js", "-sd", dir)
		if err = n.start(); err == nil {
			if err = n.waitReady(); err == nil {
				return n
			}
		}
		n.Stop()
	}
	unavailable(t, "nats-server "+bin+" did not start: "+err.Error())
	return nil
}

// Cluster starts n clustered nodes with JetStream and returns them once the
// cluster has a JetStream meta leader: a stream of n replicas can be made.
// Connect to all of them with URLs(nodes).
func Cluster(t testing.TB, n int) []*Node {
	t.Helper()
	if n < 1 {
		t.Fatalf("natstest: a cluster of %d nodes", n)
	}
	bin := binary(t)
	var err error
	for range 3 {
		var nodes []*Node
		if nodes, err = startCluster(t, bin, n); err == nil {
			return nodes
		}
	}
	unavailable(t, "nats-server cluster of "+strconv.Itoa(n)+" nodes did not start: "+err.Error())
	return nil
}

// URLs joins the nodes' client URLs, as nats.Connect takes them.
func URLs(nodes []*Node) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

func startCluster(t testing.TB, bin string, n int) ([]*Node, error) {
	ports := freePorts(t, 2*n) // client ports, then cluster ports
	routes := make([]string, n)
	for i := range n {
		routes[i] = "nats://127.0.0.1:" + strconv.Itoa(ports[n+i])
	}
	nodes := make([]*Node, n)
	for i := range n {
		dir := t.TempDir()
		others := append(append([]string(nil), routes[:i]...), routes[i+1:]...)
		nodes[i] = newNode(t, bin, dir, ports[i], "-js", "-sd", dir,
			"--server_name", "n"+strconv.Itoa(i+1), "--cluster_name", "grpcchatter-test",
			"--cluster", routes[i], "--routes", strings.Join(others, ","))
	}
	stopAll := func() {
		for _, node := range nodes {
			node.Stop()
		}
	}
	for _, node := range nodes {
		if err := node.start(); err != nil {
			stopAll()
			return nil, err
		}
	}
	for _, node := range nodes {
		if err := node.waitReady(); err != nil {
			stopAll()
			return nil, err
		}
	}
	if err := waitMetaLeader(URLs(nodes), n); err != nil {
		stopAll()
		return nil, err
	}
	return nodes, nil
}

func newNode(t testing.TB, bin, dir string, port int, args ...string) *Node {
	n := &Node{
		URL:  "nats://127.0.0.1:" + strconv.Itoa(port),
		t:    t,
		bin:  bin,
		args: append([]string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}, args...),
		log:  filepath.Join(dir, "nats-server.log"),
	}
	t.Cleanup(func() {
		n.Stop()
		if t.Failed() {
			n.printTail()
		}
	})
	return n
}

// Stop kills the node, as a crash would, and waits until it has exited;
// stopping a stopped node does nothing.
func (n *Node) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Kill() // fails only when the process has exited already
	<-n.done
	n.cmd, n.done = nil, nil
}

// Start starts a stopped node again with its storage and ports, and waits
// until it accepts clients; a cluster node then rejoins its cluster.
// Starting a running node does nothing. Like t.Fatal, which it calls when
// the node does not come back, it must be called from the test's goroutine.
func (n *Node) Start() {
	n.t.Helper()
	if err := n.start(); err != nil {
		n.t.Fatalf("natstest: restart %s: %v", n.URL, err)
	}
	if err := n.waitReady(); err != nil {
		n.t.Fatalf("natstest: restart %s: %v", n.URL, err)
	}
}

func (n *Node) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd != nil {
		return nil
	}
	out, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, n.args...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		out.Close()
		return err
	}
	done := make(chan struct{})
	go func() { // ends when the process exits: at Stop, at cleanup, or by itself
		_ = cmd.Wait()
		out.Close()
		close(done)
	}()
	n.cmd, n.done = cmd, done
	return nil
}

// waitReady waits until the node accepts a client and answers JetStream
// requests, or fails early when the process exits.
func (n *Node) waitReady() error {
	n.mu.Lock()
	done := n.done
	n.mu.Unlock()
	deadline := time.Now().Add(startTimeout)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("exited: %s", n.tail(5))
		default:
		}
		if err = ping(n.URL); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %w", startTimeout, err)
}

// ping connects once and asks for the account's JetStream information.
func ping(url string) error {
	nc, err := nats.Connect(url, nats.Timeout(time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_, err = js.AccountInfo(ctx)
	return err
}

// waitMetaLeader waits until a stream of replicas can be created and
// deleted: then the cluster has a JetStream meta leader and enough peers.
func waitMetaLeader(urls string, replicas int) error {
	nc, err := nats.Connect(urls, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err = js.CreateStream(ctx, jetstream.StreamConfig{
			Name: "natstest_ready", Subjects: []string{"natstest.ready"}, Replicas: replicas, Storage: jetstream.MemoryStorage,
		})
		if err == nil {
			err = js.DeleteStream(ctx, "natstest_ready")
		}
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("no JetStream meta leader after %s: %w", startTimeout, err)
}

// freePorts returns n distinct ports that were free a moment ago; all are
// held open together so that none is picked twice.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("natstest: pick a free port: %v", err)
		}
		defer ln.Close()
		ports[i] = ln.Addr().(*net.TCPAddr).Port
	}
	return ports
}

// minVersion is the oldest nats-server the stores work with: 2.11 brought
// per-message TTLs, which their buckets use for delete markers.
var minVersion = [2]int{2, 11}

// binary finds nats-server, skipping the test (or failing it, when
// required) if there is none, or none recent enough.
func binary(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("NATS_SERVER_BIN")
	if bin == "" {
		if root, err := workspaceRoot(); err == nil {
			if tool := filepath.Join(root, "bin", "tools", "nats-server"); fileExists(tool) {
				bin = tool
			}
		}
	}
	if bin == "" {
		bin, _ = exec.LookPath("nats-server")
	}
	const howTo = "set NATS_SERVER_BIN or run `make tools` at the workspace root (builds bin/tools/nats-server)"
	if bin == "" {
		unavailable(t, "nats-server not found: "+howTo)
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		unavailable(t, fmt.Sprintf("%s --version: %v: %s; %s", bin, err, out, howTo))
	}
	m := versionRE.FindStringSubmatch(string(out))
	if m == nil {
		unavailable(t, fmt.Sprintf("%s --version printed %q; %s", bin, out, howTo))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < minVersion[0] || major == minVersion[0] && minor < minVersion[1] {
		unavailable(t, fmt.Sprintf("%s is %s, older than v%d.%d; %s", bin, m[0], minVersion[0], minVersion[1], howTo))
	}
	return bin
}

var versionRE = regexp.MustCompile(`v(\d+)\.(\d+)\.\d+`)

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// workspaceRoot is the nearest directory above the working directory that
// holds go.work.
func workspaceRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}

func unavailable(t testing.TB, msg string) {
	t.Helper()
	msg = "natstest: " + msg + "; set GRPCCHATTER_REQUIRE_NATS=1 to fail instead of skipping"
	if os.Getenv("GRPCCHATTER_REQUIRE_NATS") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

func (n *Node) printTail() {
	n.t.Logf("natstest: last lines of %s (%s):\n%s", n.URL, n.log, n.tail(30))
}

// tail returns the last lines of the node's log.
func (n *Node) tail(lines int) string {
	b, err := os.ReadFile(n.log)
	if err != nil {
		return err.Error()
	}
	all := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(all[max(0, len(all)-lines):], "\n")
}
