package report

import (
	"fmt"
	"math"
	"strings"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// The member transports the WebSocket section compares.
const (
	// VariantWebSocket is the Chat stream over WebSocket, one connection
	// per member, as browsers have.
	VariantWebSocket = "websocket"
	// VariantGRPC is gRPC as in the fan-out runs: members share client
	// connections (-streams-per-conn).
	VariantGRPC = "grpc"
	// VariantGRPCOwnConn is gRPC with one connection per member, like
	// WebSocket: only the protocol on the connection differs.
	VariantGRPCOwnConn = "grpc-own-conn"
)

// Variants are the section's variants in the order of its tables.
var Variants = []string{VariantWebSocket, VariantGRPC, VariantGRPCOwnConn}

// VariantName describes a variant for people.
func VariantName(v string, streamsPerConn int) string {
	switch v {
	case VariantWebSocket:
		return "WebSocket, one connection per member"
	case VariantGRPC:
		return fmt.Sprintf("gRPC, %d streams per connection", streamsPerConn)
	case VariantGRPCOwnConn:
		return "gRPC, one connection per member"
	}
	return v
}

// WebSocket is the WebSocket section: the fan-out at one room size with
// every member streaming over WebSocket, against gRPC, on one chat
// process, in rounds that measure every variant once per mode in
// alternating order, so that a neighbour's burst of work on a shared
// machine falls on both sides. Only its ratios, taken within the run,
// compare; its absolute figures are those of this machine at that moment.
type WebSocket struct {
	Members        int     `json:"members"`
	Rooms          int     `json:"rooms"`
	Rounds         int     `json:"rounds"`
	StreamsPerConn int     `json:"grpc_streams_per_conn"`
	PacedRate      float64 `json:"paced_rate_msgs_per_s,omitempty"`
	// PacedFraction is PacedRate over the slowest variant's burst rate.
	PacedFraction float64 `json:"paced_fraction,omitempty"`
	// Runs are every run, in the order measured.
	Runs []TransportRun `json:"runs"`
	// Ratios are WebSocket ÷ each gRPC variant, per mode.
	Ratios []TransportRatio `json:"ratios"`
	// Seconds is the section's wall time, the server's start included.
	Seconds float64 `json:"seconds"`
}

// TransportRun is one run of the section.
type TransportRun struct {
	Variant string                 `json:"variant"`
	Round   int                    `json:"round"`
	Result  *chatload.FanoutResult `json:"result"`
}

// TransportSummary is one variant's figures in one mode: each the mean
// over the rounds.
type TransportSummary struct {
	Mode             chatload.Mode `json:"mode"`
	Variant          string        `json:"variant"`
	Runs             int           `json:"runs"`
	DeliveriesPerSec float64       `json:"deliveries_per_s"`
	PerCPU           float64       `json:"deliveries_per_server_cpu_s"`
	P50              float64       `json:"p50_ms"`
	P99              float64       `json:"p99_ms"`
	ServerCores      float64       `json:"server_cores"`
	GeneratorCores   float64       `json:"generator_cores"`
	OtherCores       float64       `json:"other_cores"`
}

// TransportRatio is WebSocket ÷ one gRPC variant in one mode: above 1 is
// better for deliveries, below 1 better for latency. Each ratio is that of
// the means over the rounds; PerRound holds each round's own ratios, whose
// spread shows how far the machine's noise reaches.
type TransportRatio struct {
	Mode       chatload.Mode `json:"mode"`
	Against    string        `json:"against"`
	Deliveries float64       `json:"deliveries_per_s"`
	PerCPU     float64       `json:"deliveries_per_server_cpu_s"`
	P50        float64       `json:"p50"`
	P99        float64       `json:"p99"`
	PerRound   []RoundRatio  `json:"per_round"`
}

// RoundRatio is WebSocket ÷ gRPC within one round.
type RoundRatio struct {
	PerCPU float64 `json:"deliveries_per_server_cpu_s"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
}

// find returns the run of variant in mode and round, or nil.
func (w *WebSocket) find(mode chatload.Mode, variant string, round int) *chatload.FanoutResult {
	for _, r := range w.Runs {
		if r.Result != nil && r.Result.Mode == mode && r.Variant == variant && r.Round == round {
			return r.Result
		}
	}
	return nil
}

// Modes lists the modes the section measured, burst first.
func (w *WebSocket) Modes() []chatload.Mode {
	var out []chatload.Mode
	for _, m := range []chatload.Mode{chatload.Burst, chatload.Paced} {
		for _, r := range w.Runs {
			if r.Result != nil && r.Result.Mode == m {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Summary is variant's means over the rounds in mode; ok is false when it
// has no run there.
func (w *WebSocket) Summary(mode chatload.Mode, variant string) (s TransportSummary, ok bool) {
	s = TransportSummary{Mode: mode, Variant: variant}
	for round := range w.Rounds {
		f := w.find(mode, variant, round)
		if f == nil {
			continue
		}
		s.Runs++
		s.DeliveriesPerSec += f.DeliveriesPerSec
		s.PerCPU += f.DeliveriesPerCPUSec
		s.P50 += f.Latency.P50
		s.P99 += f.Latency.P99
		s.ServerCores += f.Cores(f.ServerCPUSeconds)
		s.GeneratorCores += f.Cores(f.GeneratorCPUSeconds)
		s.OtherCores += f.Cores(f.OtherCPUSeconds)
	}
	if s.Runs == 0 {
		return s, false
	}
	n := float64(s.Runs)
	s.DeliveriesPerSec /= n
	s.PerCPU /= n
	s.P50 /= n
	s.P99 /= n
	s.ServerCores /= n
	s.GeneratorCores /= n
	s.OtherCores /= n
	return s, true
}

// Compare fills in Ratios from Runs.
func (w *WebSocket) Compare() {
	w.Ratios = nil
	for _, mode := range w.Modes() {
		ws, ok := w.Summary(mode, VariantWebSocket)
		if !ok {
			continue
		}
		for _, v := range Variants[1:] {
			g, ok := w.Summary(mode, v)
			if !ok {
				continue
			}
			r := TransportRatio{Mode: mode, Against: v,
				Deliveries: div(ws.DeliveriesPerSec, g.DeliveriesPerSec), PerCPU: div(ws.PerCPU, g.PerCPU),
				P50: div(ws.P50, g.P50), P99: div(ws.P99, g.P99)}
			for round := range w.Rounds {
				a, b := w.find(mode, VariantWebSocket, round), w.find(mode, v, round)
				if a == nil || b == nil {
					continue
				}
				r.PerRound = append(r.PerRound, RoundRatio{
					PerCPU: div(a.DeliveriesPerCPUSec, b.DeliveriesPerCPUSec),
					P50:    div(a.Latency.P50, b.Latency.P50), P99: div(a.Latency.P99, b.Latency.P99),
				})
			}
			w.Ratios = append(w.Ratios, r)
		}
	}
}

// Ratio returns WebSocket ÷ against in mode, or nil.
func (w *WebSocket) Ratio(mode chatload.Mode, against string) *TransportRatio {
	for i := range w.Ratios {
		if w.Ratios[i].Mode == mode && w.Ratios[i].Against == against {
			return &w.Ratios[i]
		}
	}
	return nil
}

// Results lists the section's runs.
func (w *WebSocket) Results() []*chatload.FanoutResult {
	var out []*chatload.FanoutResult
	for _, r := range w.Runs {
		out = append(out, r.Result)
	}
	return out
}

// rounds formats each round's value of one ratio: "0.41×, 0.44×".
func rounds(rs []RoundRatio, pick func(RoundRatio) float64) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%.2f×", pick(r)))
	}
	return strings.Join(parts, ", ")
}

// usPerDelivery is the server's CPU time per delivery, in microseconds,
// from figures per server CPU-second.
func usPerDelivery(perCPU float64) float64 {
	if perCPU <= 0 {
		return math.NaN()
	}
	return 1e6 / perCPU
}

func (w *WebSocket) markdown(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## WebSocket vs gRPC, %d members\n\n", w.Members)
	p("The fan-out of %d rooms × %d members with every member streaming over WebSocket (`/v1/chat` on the web listener: protojson text frames, one connection per member, as browsers have), ", w.Rooms, w.Members)
	p("against gRPC with members sharing connections as in the fan-out runs (%d streams per connection) and with one connection per member, so that only the protocol on the connection differs. ", w.StreamsPerConn)
	p("Rooms are created and tokens minted as in every run, through gRPC; only the members' streams change transport. ")
	if w.Rounds == 1 {
		p("All runs are on one chat process, in one round that measures every transport once per mode. ")
	} else {
		p("All runs are on one chat process, in %d rounds that each measure every transport once per mode, in alternating order; figures are means over the rounds. ", w.Rounds)
	}
	if w.PacedRate > 0 {
		p("Paced runs send %.0f msg/s, %.0f%% of the slowest transport's burst rate (-ws-paced): a light load, at which latency is the path a message takes rather than CPU queueing, and a delivery's CPU is that of a frame carrying one event. ", w.PacedRate, 100*w.PacedFraction)
	}
	p("The generator decodes WebSocket frames by scanning the JSON in place, as it walks gRPC frames' protobuf, so its own cost stays close on both sides.\n\n")
	p("The machine is shared and noisy: compare the ratios, taken within this run, not the absolute figures across runs.\n\n")
	p("| Mode | Transport | Deliveries/s | Deliveries per server CPU-s | Server µs per delivery | p50 (ms) | p99 (ms) | Cores busy: server / generator / other |\n|---|---|---:|---:|---:|---:|---:|---|\n")
	for _, mode := range w.Modes() {
		for _, v := range Variants {
			s, ok := w.Summary(mode, v)
			if !ok {
				continue
			}
			p("| %s | %s | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f / %.2f / %.2f |\n", mode, VariantName(v, w.StreamsPerConn),
				s.DeliveriesPerSec, s.PerCPU, usPerDelivery(s.PerCPU), s.P50, s.P99, s.ServerCores, s.GeneratorCores, s.OtherCores)
		}
	}
	p("\nWebSocket ÷ gRPC (above 1 is better for deliveries, below 1 better for latency; each round's ratio in parentheses):\n\n")
	p("| Mode | Against | Deliveries per server CPU-s | p50 | p99 | Deliveries/s |\n|---|---|---:|---:|---:|---:|\n")
	for _, r := range w.Ratios {
		p("| %s | %s | **%.2f×** (%s) | %.2f× (%s) | %.2f× (%s) | %.2f× |\n", r.Mode, VariantName(r.Against, w.StreamsPerConn),
			r.PerCPU, rounds(r.PerRound, func(x RoundRatio) float64 { return x.PerCPU }),
			r.P50, rounds(r.PerRound, func(x RoundRatio) float64 { return x.P50 }),
			r.P99, rounds(r.PerRound, func(x RoundRatio) float64 { return x.P99 }), r.Deliveries)
	}
	p("\nEvery run of the section:\n\n")
	p("| Round | Mode | Transport | Connections | Messages/s | Deliveries/s | Deliveries per server CPU-s | p50 | p99 | p99.9 | Lost / undelivered | Slow-consumer drops | Errors | Cores busy: server / generator / other |\n")
	p("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, r := range w.Runs {
		f := r.Result
		if f == nil {
			continue
		}
		c := f.Cores
		p("| %d | %s | %s | %d | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %d / %d | %d | %d | %.2f / %.2f / %.2f |\n",
			r.Round+1, f.Mode, VariantName(r.Variant, w.StreamsPerConn), f.Conns, f.MessagesPerSec, f.DeliveriesPerSec, f.DeliveriesPerCPUSec,
			f.Latency.P50, f.Latency.P99, f.Latency.P999, f.Lost, f.Undelivered, f.SlowConsumerDisconnects, f.StreamErrors,
			c(f.ServerCPUSeconds), c(f.GeneratorCPUSeconds), c(f.OtherCPUSeconds))
	}
	p("\n")
	errs := false
	for _, r := range w.Runs {
		if f := r.Result; f != nil && f.FirstError != "" {
			p("- round %d, %s, %s: first error: `%s`\n", r.Round+1, f.Mode, VariantName(r.Variant, w.StreamsPerConn), f.FirstError)
			errs = true
		}
	}
	if errs {
		p("\n")
	}
	p("Section time: %.0f s.\n\n", w.Seconds)
}

// observations explain the section's figures.
func (w *WebSocket) observations() []string {
	var out []string
	for _, mode := range w.Modes() {
		ws, ok1 := w.Summary(mode, VariantWebSocket)
		g, ok2 := w.Summary(mode, VariantGRPC)
		own, ok3 := w.Summary(mode, VariantGRPCOwnConn)
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		out = append(out, fmt.Sprintf("In %s mode a delivery over WebSocket costs the chat service %.2f µs of CPU, against %.2f µs over gRPC with one connection per member and %.2f µs over gRPC with %d streams per connection: %.2f× and %.2f× the deliveries per CPU-second. The difference between the two gRPC figures is what sharing a connection saves (one write carries frames for many members); the difference between WebSocket and gRPC on a connection each is the protocol's own.",
			mode, usPerDelivery(ws.PerCPU), usPerDelivery(own.PerCPU), usPerDelivery(g.PerCPU), w.StreamsPerConn, div(ws.PerCPU, own.PerCPU), div(ws.PerCPU, g.PerCPU)))
	}
	return out
}
