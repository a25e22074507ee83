package main

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

func loadDeployment(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(context.Background(), "../../deployments/compose.yaml", "../../deployments/env.example")
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	return p
}

func TestDeploymentPasses(t *testing.T) {
	p := loadDeployment(t)
	if err := check(p); err != nil {
		t.Fatalf("check: %v", err)
	}
	// The YAML merge keys reached the services.
	chat := p.Services["chat-2"]
	if got := *chat.Environment["NATS_URL"]; got != "nats://nats-1:4222,nats://nats-2:4222,nats://nats-3:4222" {
		t.Errorf("chat-2 NATS_URL = %q", got)
	}
	if got := *chat.Environment["INSTANCE_ID"]; got != "chat-2" {
		t.Errorf("chat-2 INSTANCE_ID = %q", got)
	}
}

// Each change breaks one rule, which check must name.
func TestCheckCatches(t *testing.T) {
	setEnv := func(svc, key, value string) func(*types.Project) {
		return func(p *types.Project) { p.Services[svc].Environment[key] = &value }
	}
	editCommand := func(svc string, edit func([]string) []string) func(*types.Project) {
		return func(p *types.Project) {
			s := p.Services[svc]
			s.Command = edit(slices.Clone(s.Command))
			p.Services[svc] = s
		}
	}
	drop := func(flag string) func([]string) []string {
		return func(args []string) []string {
			i := slices.Index(args, flag)
			if i < 0 {
				return args
			}
			if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
				return slices.Delete(args, i, i+2)
			}
			return slices.Delete(args, i, i+1)
		}
	}
	replace := func(old, new string) func([]string) []string {
		return func(args []string) []string {
			for i := range args {
				args[i] = strings.ReplaceAll(args[i], old, new)
			}
			return args
		}
	}
	tests := []struct {
		name   string
		change func(*types.Project)
		want   string
	}{
		{"a node fewer", func(p *types.Project) { delete(p.Services, "nats-3") }, "at least 3 nats services"},
		{"JetStream off", editCommand("nats-2", drop("--jetstream")), "nats-2: JetStream is off"},
		{"no store dir", editCommand("nats-1", drop("--store_dir")), "nats-1: --store_dir is missing"},
		{"store not on a volume", editCommand("nats-1", replace("/data", "/elsewhere")), "no named volume is mounted"},
		{"shared store volume", func(p *types.Project) {
			s := p.Services["nats-2"]
			s.Volumes = slices.Clone(s.Volumes)
			s.Volumes[0].Source = "nats1data"
			p.Services["nats-2"] = s
		}, `store volume "nats1data" is also nats-1's`},
		{"duplicate server name", editCommand("nats-3", replace("nats-3", "nats-1")), `server name "nats-1" is also nats-1's`},
		{"missing route", editCommand("nats-1", replace(",nats://nats-3:6222", "")), "nats-1: --routes must name nats://nats-3:6222"},
		{"other cluster", editCommand("nats-2", replace("grpcchatter", "other")), "disagree on --cluster_name"},
		{"no healthcheck", func(p *types.Project) {
			s := p.Services["nats-1"]
			s.HealthCheck = nil
			p.Services["nats-1"] = s
		}, "nats-1: needs a healthcheck on http://127.0.0.1:8222/healthz"},
		{"a lone node passes", func(p *types.Project) {
			s := p.Services["nats-2"]
			h := *s.HealthCheck
			h.Test = slices.Clone(h.Test)
			h.Test[len(h.Test)-1] += "?js-enabled-only=true"
			s.HealthCheck = &h
			p.Services["nats-2"] = s
		}, "nats-2: the healthcheck must wait for the meta leader"},
		{"scratch image", func(p *types.Project) {
			s := p.Services["nats-1"]
			s.Image = "nats:2.15.3"
			p.Services["nats-1"] = s
		}, "alpine variant"},
		{"unpinned image", func(p *types.Project) {
			s := p.Services["nats-1"]
			s.Image = "nats:alpine"
			p.Services["nats-1"] = s
		}, "pin a 2.x release"},
		{"a node left out of NATS_URL", setEnv("chat-1", "NATS_URL", "nats://nats-1:4222,nats://nats-2:4222"), "chat-1: NATS_URL must name every node, nats://nats-3:4222"},
		{"one replica", setEnv("chat-2", "NATS_REPLICAS", "1"), "chat-2: NATS_REPLICAS must be 3"},
		{"same instance", setEnv("chat-2", "INSTANCE_ID", "chat-1"), `INSTANCE_ID "chat-1" is also chat-1's`},
		{"bad instance", setEnv("chat-1", "INSTANCE_ID", "chat 1"), `INSTANCE_ID "chat 1" must be`},
		{"auth's database", setEnv("chat-1", "DATABASE_URL", "postgres://grpcchatter:pw@postgres:5432/grpcchatter?sslmode=disable"), "chat-1: DATABASE_URL must be chat's own database"},
		{"two registries", setEnv("chat-2", "DATABASE_URL", "postgres://grpcchatter:pw@postgres:5432/chat2"), "must share one DATABASE_URL"},
		{"another secret", setEnv("chat-2", "SECRET", "something-else-entirely-0123456789abcdef"), "chat-2: SECRET must be auth's"},
		{"chat without healthcheck", func(p *types.Project) {
			s := p.Services["chat-1"]
			s.HealthCheck = nil
			p.Services["chat-1"] = s
		}, "chat-1: needs a healthcheck"},
		{"started too early", func(p *types.Project) {
			s := p.Services["chat-2"]
			s.DependsOn = types.DependsOnConfig{"postgres": {Condition: types.ServiceConditionHealthy}, "nats-1": {Condition: types.ServiceConditionHealthy},
				"nats-2": {Condition: types.ServiceConditionStarted}}
			p.Services["chat-2"] = s
		}, "chat-2: must depend on nats-2 with condition service_healthy"},
		{"one chat", func(p *types.Project) { delete(p.Services, "chat-2") }, "at least 2 chat services"},
		{"port clash", func(p *types.Project) {
			s := p.Services["chat-2"]
			s.Ports = slices.Clone(s.Ports)
			s.Ports[0].Published = p.Services["chat-1"].Ports[0].Published
			p.Services["chat-2"] = s
		}, "is also published by chat-1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := loadDeployment(t)
			tt.change(p)
			err := check(p)
			if err == nil {
				t.Fatalf("check passed; want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("check: %v\nwant an error containing %q", err, tt.want)
			}
		})
	}
}

func TestParseFlags(t *testing.T) {
	f := parseFlags([]string{"-js", "--name", "n1", "--http_port=8222", "-sd", "/data", "--routes", "a,b"})
	for name, want := range map[string]string{"js": "", "name": "n1", "http_port": "8222", "sd": "/data", "routes": "a,b"} {
		if got, ok := f[name]; !ok || got != want {
			t.Errorf("%s = %q, %v; want %q", name, got, ok, want)
		}
	}
	if !f.has("jetstream", "js") || f.get("store_dir", "sd") != "/data" {
		t.Errorf("aliases: %v", f)
	}
}
