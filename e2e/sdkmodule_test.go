package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sdkUser is a program as an SDK user writes it, in a module of its own:
// it registers, logs in, creates and joins two rooms on one Client, sends
// to each and waits for each echo on its own room's handle.
const sdkUser = `package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "sdkuser:", err)
		os.Exit(1)
	}
}

func run() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(client.WithAuthURL(os.Args[1]), client.WithChatAddress(os.Args[2]))
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := c.CreateAccount(ctx, "sdkuser", "sdk-user-password"); err != nil {
		return err
	}
	if _, err := c.LogIn(ctx, "sdkuser", "sdk-user-password"); err != nil {
		return err
	}
	for _, name := range []string{"first", "second"} {
		code, err := c.CreateChatRoom(ctx, name, "room-password")
		if err != nil {
			return err
		}
		room, err := c.JoinRoom(ctx, code, "room-password")
		if err != nil {
			return err
		}
		if _, err := room.Send(ctx, "hello "+name); err != nil {
			return err
		}
		for {
			ev, err := room.Receive(ctx)
			if err != nil {
				return err
			}
			if m, ok := ev.(*client.Message); ok {
				fmt.Printf("%s: %s\n", room.Name, m.Body)
				break
			}
		}
	}
	return nil
}
`

// banned are the packages an SDK user must not get: the CLI's terminal
// UI, database drivers, zap, and this repository's server or test code.
var banned = regexp.MustCompile(`bubbletea|lipgloss|charm\.land|charmbracelet|jackc/pgx|gorm\.io|go\.uber\.org/zap|grpcchatter/grpcchatter/(internal|services|e2e|bench)`)

// TestSDKOutsideTheWorkspace builds a program that uses the SDK the way a
// user's project does: its own module, GOWORK=off, the SDK found through
// one replace in the program's go.mod (where a user's would name a
// version). The SDK module must resolve with nothing else of this
// repository, and bring none of the CLI's, the servers' or the tests'
// dependencies. The program then chats with the real services.
func TestSDKOutsideTheWorkspace(t *testing.T) {
	needBinaries(t)
	dir := t.TempDir()
	sdk := filepath.Join(repoRoot, "pkg")
	gomod := fmt.Sprintf("module example.com/sdkuser\n\ngo 1.26.0\n\nrequire github.com/grpcchatter/grpcchatter/pkg v0.0.0-00010101000000-000000000000\n\nreplace github.com/grpcchatter/grpcchatter/pkg => %s\n", sdk)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "main.go"), []byte(sdkUser), 0o644))
	// The SDK's own go.sum holds every checksum its dependencies need, so
	// that resolving them needs no checksum database.
	sums, err := os.ReadFile(filepath.Join(sdk, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sums, 0o644))

	goCmd := func(args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "go %s:\n%s", strings.Join(args, " "), out)
		return string(out)
	}
	goCmd("mod", "tidy")
	goCmd("build", "-o", "sdkuser", ".")
	deps := goCmd("list", "-deps", ".")
	assert.Contains(t, deps, "github.com/grpcchatter/grpcchatter/pkg/client", "the program uses the SDK")
	assert.Empty(t, banned.FindAllString(deps, -1), "the SDK brought what only servers, the CLI or tests need")
	modGraph := goCmd("mod", "graph")
	assert.Empty(t, banned.FindAllString(modGraph, -1), "the SDK requires a module of the CLI, the servers or the tests")

	s := newStack(t, stackOptions{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "sdkuser"), s.authURL, s.chatAddr).CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Equal(t, "first: hello first\nsecond: hello second\n", string(out))
}
