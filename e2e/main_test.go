package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// bins holds the binaries TestMain built; skipReason is set when they could
// not be (no workspace), which skips every test.
var (
	bins struct {
		auth, chat, chatter, idleclient string
	}
	// repoRoot is the workspace's root directory.
	repoRoot   string
	skipReason string
)

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "go", "env", "GOWORK").Output()
	gowork := strings.TrimSpace(string(out))
	if err != nil || gowork == "" || gowork == "off" {
		skipReason = "end-to-end tests need the go.work workspace (go env GOWORK is empty)"
		return m.Run()
	}
	root := filepath.Dir(gowork)
	repoRoot = root
	dir, err := os.MkdirTemp("", "grpcchatter-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	build := exec.CommandContext(ctx, "go", "build", "-o", dir+string(os.PathSeparator),
		"./services/auth/cmd/auth", "./services/chat/cmd/chat", "./pkg/cmd/chatter", "./e2e/internal/idleclient")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "e2e: building the binaries in %s: %v\n%s", root, err, out)
		return 1
	}
	bins.auth = filepath.Join(dir, "auth")
	bins.chat = filepath.Join(dir, "chat")
	bins.chatter = filepath.Join(dir, "chatter")
	bins.idleclient = filepath.Join(dir, "idleclient")
	code := m.Run()
	if code == 0 {
		// Every process, proxy and reader goroutine is stopped in Cleanup.
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: leaked goroutines:", err)
			return 1
		}
	}
	return code
}

func needBinaries(t *testing.T) {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
}
