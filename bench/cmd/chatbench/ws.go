package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

// wsVariant is one way members stream in the WebSocket section.
type wsVariant struct {
	name      string // a report.Variant*
	transport chatload.Transport
	perConn   int // streams per client connection; 0 keeps -streams-per-conn
}

var wsVariants = []wsVariant{
	{report.VariantGRPC, chatload.GRPC, 0},
	{report.VariantGRPCOwnConn, chatload.GRPC, 1},
	{report.VariantWebSocket, chatload.WebSocket, 0},
}

// webSocket measures the fan-out of the paced size over WebSocket against
// gRPC on one fresh chat process: -ws-rounds rounds of burst runs, then as
// many of paced runs at -ws-paced of the slowest variant's burst rate.
// Each round runs every variant once, in the opposite order to the round
// before, so that drift on a shared machine does not favour one.
func (b *bench) webSocket(ctx context.Context, rep *report.Report) (*report.WebSocket, error) {
	start := time.Now()
	chat, err := b.startChat(ctx)
	if err != nil {
		return nil, err
	}
	defer chat.p.Stop()
	if err := b.warmUp(ctx, chat); err != nil {
		return nil, fmt.Errorf("warm-up: %w\n%s", err, chat.logs())
	}
	// The WebSocket path has its own first allocations to make.
	warm := b.fanoutConfig(10, chatload.Burst, 0)
	warm.Rooms, warm.Duration, warm.Transport = max(1, min(10, b.cfg.Streams/10)), time.Second, chatload.WebSocket
	if _, err := chatload.Fanout(ctx, chat.target, warm); err != nil {
		return nil, fmt.Errorf("WebSocket warm-up (-skip ws leaves the section out): %w\n%s", err, chat.logs())
	}

	size := pacedSize(b.cfg.Sizes)
	burst := b.fanoutConfig(size, chatload.Burst, 0)
	w := &report.WebSocket{Members: size, Rooms: burst.Rooms, Rounds: b.cfg.WSRounds, StreamsPerConn: b.cfg.StreamsPerConn}
	measure := func(fc chatload.FanoutConfig) error {
		for round := range b.cfg.WSRounds {
			order := slices.Clone(wsVariants)
			if round%2 == 1 {
				slices.Reverse(order)
			}
			for _, v := range order {
				vc := fc
				vc.Transport = v.transport
				if v.perConn > 0 {
					vc.StreamsPerConn = v.perConn
				}
				res, err := b.fanout(ctx, chat, vc)
				if err != nil {
					return err
				}
				w.Runs = append(w.Runs, report.TransportRun{Variant: v.name, Round: round, Result: res})
			}
		}
		return nil
	}
	if err := measure(burst); err != nil {
		return nil, err
	}
	slowest := 0.0
	for _, v := range wsVariants {
		var sum float64
		for _, r := range w.Runs {
			if r.Variant == v.name {
				sum += r.Result.MessagesPerSec
			}
		}
		if mean := sum / float64(b.cfg.WSRounds); slowest == 0 || mean < slowest {
			slowest = mean
		}
	}
	paced := b.fanoutConfig(size, chatload.Paced, b.cfg.WSPaced*slowest)
	if paced.Rate > 0 {
		w.PacedRate, w.PacedFraction = paced.Rate, b.cfg.WSPaced
		if err := measure(paced); err != nil {
			return nil, err
		}
	}
	w.Compare()
	for _, r := range w.Ratios {
		b.logf("WebSocket ÷ %s, %s: %.2f× deliveries per server CPU-s, %.2f× p50, %.2f× p99", r.Against, r.Mode, r.PerCPU, r.P50, r.P99)
	}
	if b.cfg.ProfileSeconds > 0 {
		// Where a delivery's CPU goes over WebSocket, in burst mode and at
		// the light paced load, and over gRPC on as many connections,
		// beside the fan-out section's gRPC profiles.
		fcs := []chatload.FanoutConfig{burst, burst}
		fcs[0].StreamsPerConn = 1
		fcs[1].Transport = chatload.WebSocket
		if paced.Rate > 0 {
			paced.Transport = chatload.WebSocket
			fcs = append(fcs, paced)
		}
		for _, fc := range fcs {
			prof, err := b.profile(ctx, chat, fc, false)
			if err != nil {
				return nil, err
			}
			rep.Profiles = append(rep.Profiles, prof...)
		}
	}
	w.Seconds = time.Since(start).Seconds()
	b.logf("WebSocket section: %.0f s", w.Seconds)
	return w, nil
}

// transportLabel names fc's member transport for the log and profiles:
// empty for gRPC on shared connections, the fan-out runs' default.
func transportLabel(fc chatload.FanoutConfig) string {
	switch {
	case fc.Transport == chatload.WebSocket:
		return " over WebSocket"
	case fc.StreamsPerConn == 1:
		return " over gRPC, one connection per member"
	}
	return ""
}
