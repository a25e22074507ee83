package proc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// minNATS is the oldest nats-server the chat service's shared mode works
// with: 2.11 brought the per-message TTLs its buckets use.
var minNATS = [2]int{2, 11}

var natsVersionRE = regexp.MustCompile(`v?(\d+)\.(\d+)\.(\d+)`)

// NATSServerBinary finds a nats-server of version 2.11 or later: bin, when
// not empty (given by flag or $NATS_SERVER_BIN), else bin/tools/nats-server
// under root (`make tools`), else one built into dir from the version that
// root/tools/go.mod pins. It returns the path and the version.
func NATSServerBinary(ctx context.Context, root, bin, dir string) (path, version string, err error) {
	if bin != "" {
		version, err = natsVersion(ctx, bin)
		return bin, version, err
	}
	tool := filepath.Join(root, "bin", "tools", "nats-server")
	if _, err = os.Stat(tool); err == nil {
		if version, err = natsVersion(ctx, tool); err == nil {
			return tool, version, nil
		}
	}
	// The machine's nats-server on PATH is not tried: distributions ship
	// versions older than 2.11.
	cmd := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator), "github.com/nats-io/nats-server/v2")
	cmd.Dir = filepath.Join(root, "tools")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, buildErr := cmd.CombinedOutput(); buildErr != nil {
		return "", "", fmt.Errorf("no nats-server ≥ %d.%d (%v); building the pinned one in tools/: %w\n%s", minNATS[0], minNATS[1], err, buildErr, out)
	}
	path = filepath.Join(dir, "nats-server")
	version, err = natsVersion(ctx, path)
	return path, version, err
}

func natsVersion(ctx context.Context, bin string) (string, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s --version: %w: %s", bin, err, out)
	}
	m := natsVersionRE.FindStringSubmatch(string(out))
	if m == nil {
		return "", fmt.Errorf("%s --version printed %q", bin, out)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	if major < minNATS[0] || major == minNATS[0] && minor < minNATS[1] {
		return m[0], fmt.Errorf("%s is %s; the chat service needs %d.%d or later", bin, m[0], minNATS[0], minNATS[1])
	}
	return m[0], nil
}

// NATSServer is a running single-node nats-server with JetStream.
type NATSServer struct {
	*Process
	// URL is the client URL, nats://127.0.0.1:PORT.
	URL string
}

// StartNATS starts bin as a single node with JetStream, storing in dir,
// on free loopback ports, and waits until its monitoring endpoint
// reports JetStream healthy.
func StartNATS(ctx context.Context, bin, dir string) (*NATSServer, error) {
	var lastErr error
	for range 3 { // a free port can be taken between picking and binding it
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		mport, err := FreePort()
		if err != nil {
			return nil, err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p, err := Start(ctx, "nats-server", bin, nil, addr,
			"-a", "127.0.0.1", "-p", strconv.Itoa(port), "-m", strconv.Itoa(mport),
			"-js", "-sd", dir, "-n", "chatbench")
		if err != nil {
			lastErr = err
			continue
		}
		if err := waitHealthy(ctx, p, "http://127.0.0.1:"+strconv.Itoa(mport)+"/healthz"); err != nil {
			p.Stop()
			lastErr = err
			continue
		}
		return &NATSServer{Process: p, URL: "nats://" + addr}, nil
	}
	return nil, lastErr
}

// waitHealthy polls a nats-server's /healthz, which answers 200 once
// JetStream is ready.
func waitHealthy(ctx context.Context, p *Process, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := httpClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if p.Exited() {
			return fmt.Errorf("nats-server exited before it was healthy\n%s", p.Log())
		}
		if time.Now().After(deadline) {
			return errors.New("nats-server not healthy within 30 s\n" + p.Log())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
