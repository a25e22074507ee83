// Command composecheck loads a compose file with the compose-spec reference
// loader and fails on anything docker compose would reject, then on
// anything that breaks this deployment's own rules (see check). No Docker
// engine is needed, so `make lint` can validate deployments/ anywhere.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

// run loads the file with the given example env file (KEY=VALUE lines) so
// that required variables resolve as they would on a real deployment.
func run(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: composecheck COMPOSE_FILE ENV_FILE")
	}
	file, envFile := args[0], args[1]
	project, err := load(ctx, file, envFile)
	if err != nil {
		return err
	}
	if err := check(project); err != nil {
		return fmt.Errorf("%s:\n%w", file, err)
	}
	fmt.Printf("%s: %d services valid\n", file, len(project.Services))
	return nil
}

// load reads a compose file as docker compose would.
func load(ctx context.Context, file, envFile string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithConsistency(true),
	)
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(ctx)
}
