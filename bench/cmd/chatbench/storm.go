package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/proc"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

// joinStorm has -storm members open a stream in one room at once, as a
// reconnect storm after a restart does, on a fresh chat process, and
// reads the process's CPU time for it: first on the chat service built at
// -storm-base when set (before), then on the one measured (after).
func (b *bench) joinStorm(ctx context.Context) (*report.JoinStorm, error) {
	js := &report.JoinStorm{Members: b.cfg.StormMembers, Rev: b.cfg.Rev, BaseRev: b.cfg.StormBase}
	if js.Rev == "" {
		js.Rev = "work tree"
	}
	run := func(label, bin string, profile *[]report.Profile) (*chatload.JoinStormResult, error) {
		dir, err := b.dataDir("storm")
		if err != nil {
			return nil, err
		}
		p, addrs, err := b.startChatProcess(ctx, "chat "+label, bin, dir)
		if err != nil {
			return nil, err
		}
		defer p.Stop()
		b.waitQuiet(ctx)
		b.logf("join storm on %s: %d members open a stream in one room at once", label, b.cfg.StormMembers)
		var profiled chan error
		profDir := b.tmp
		if b.cfg.ProfileDir != "" {
			if err := os.MkdirAll(b.cfg.ProfileDir, 0o755); err != nil {
				return nil, err
			}
			profDir = b.cfg.ProfileDir
		}
		path := filepath.Join(profDir, "chat-join-storm-"+strings.ReplaceAll(label, " ", "-")+".pprof")
		if b.cfg.ProfileSeconds > 0 {
			profiled = make(chan error, 1)
			// Owned by run, which waits for it; ends when the service has
			// profiled for the requested seconds (the storm is shorter).
			go func() {
				url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", addrs.metricsURL, b.cfg.ProfileSeconds)
				profiled <- proc.Fetch(ctx, url, path)
			}()
		}
		res, err := chatload.JoinStorm(ctx, chatload.Target{Name: label, Addr: addrs.grpc, Signer: b.signer, CPU: p.CPU},
			chatload.JoinStormConfig{Members: b.cfg.StormMembers, StreamsPerConn: min(b.cfg.StreamsPerConn, 100), Parallel: b.cfg.IdleParallel})
		if err != nil {
			return nil, fmt.Errorf("join storm on %s: %w\n%s", label, err, p.Log())
		}
		if p.Exited() {
			return nil, fmt.Errorf("chat %s exited during the join storm\n%s", label, p.Log())
		}
		if profiled != nil {
			what := fmt.Sprintf("chat service (%s), join storm of %d members", label, b.cfg.StormMembers)
			src := "/debug/pprof/profile on METRICS_ADDRESS, from the storm's start"
			top, err := <-profiled, error(nil)
			var lines []string
			if top == nil {
				lines, err = proc.TopFunctions(ctx, bin, path, 20)
			} else {
				err = top
			}
			if err != nil {
				src = "not available: " + firstLine(err.Error())
			}
			*profile = append(*profile, report.Profile{Name: what, Source: src, Top: lines})
		}
		b.logf("  %.2f CPU-s of the chat process, %.1f s (opening %.1f s); %d opened, %d failed, %d ended, %d incomplete; %d frames, %d presence events %s",
			res.ServerCPUSeconds, res.Seconds, res.OpenSeconds, res.Opened, res.Failed, res.Ended, res.Incomplete, res.Frames, res.PresenceEvents, res.FirstError)
		return &res, nil
	}
	var err error
	if b.stormBaseBin != "" {
		if js.Before, err = run(b.cfg.StormBase, b.stormBaseBin, &js.Profiles); err != nil {
			return nil, err
		}
	}
	if js.After, err = run(js.Rev, b.chatBin, &js.Profiles); err != nil {
		return nil, err
	}
	return js, nil
}
