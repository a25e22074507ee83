// Command composecheck loads a compose file with the compose-spec reference
// loader and fails on anything docker compose would reject. No Docker engine
// is needed, so `make lint` can validate deployments/ anywhere.
package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/compose-spec/compose-go/v2/cli"
)

func main() {
	if err := run(context.Background(), os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "composecheck:", err)
		os.Exit(1)
	}
}

// run loads each file with the given example env file (KEY=VALUE lines) so
// that required variables resolve as they would on a real deployment.
func run(ctx context.Context, args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: composecheck COMPOSE_FILE ENV_FILE")
	}
	file, envFile := args[0], args[1]
	opts, err := cli.NewProjectOptions([]string{file},
		cli.WithWorkingDirectory(filepath.Dir(file)),
		cli.WithEnvFiles(envFile),
		cli.WithDotEnv,
		cli.WithConsistency(true),
	)
	if err != nil {
		return err
	}
	project, err := opts.LoadProject(ctx)
	if err != nil {
		return err
	}
	for _, want := range []string{"postgres", "auth", "chat"} {
		if _, err := project.GetService(want); err != nil {
			return fmt.Errorf("service %q: %w", want, err)
		}
	}
	auth, _ := project.GetService("auth")
	if _, ok := auth.DependsOn["postgres"]; !ok {
		return fmt.Errorf("auth must depend on postgres")
	}
	pg, _ := project.GetService("postgres")
	if pg.HealthCheck == nil || len(pg.HealthCheck.Test) == 0 {
		return fmt.Errorf("postgres needs a healthcheck")
	}
	fmt.Printf("%s: %d services valid\n", file, len(project.Services))
	return nil
}
