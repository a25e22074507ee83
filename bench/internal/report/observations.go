package report

import (
	"fmt"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Observations are statements computed from the figures that explain
// them: the CPU cost of a delivery in each mode, who used the cores, and
// what an idle stream's memory is made of.
func (r *Report) Observations() []string {
	var out []string
	usPer := func(f *chatload.FanoutResult) float64 {
		if f == nil || f.Delivered == 0 {
			return 0
		}
		return 1e6 * f.ServerCPUSeconds / float64(f.Delivered)
	}
	var burst *chatload.FanoutResult
	for _, p := range r.Burst {
		if r.Paced != nil && p.Size == r.Paced.Size {
			burst = p.Chat
		}
	}
	if burst != nil && r.Paced != nil && usPer(burst) > 0 && usPer(r.Paced.Chat) > 0 {
		pc := r.Paced.Chat
		out = append(out, fmt.Sprintf(
			"A delivery costs the chat service %.2f µs of CPU in burst mode and %.2f µs in paced mode (%.1f×). In burst mode a member's queue holds several messages when its writer wakes, so one frame, one wake-up and one write carry many; paced messages arrive one at a time and each pays for its own. A fraction of the burst rate (here %.0f%%) therefore takes more than that fraction of the CPU: the paced run kept the server %.2f cores and the generator %.2f cores busy, against %.2f and %.2f in the burst run.",
			usPer(burst), usPer(pc), usPer(pc)/usPer(burst), 100*pc.MessagesPerSec/burst.MessagesPerSec,
			pc.Cores(pc.ServerCPUSeconds), pc.Cores(pc.GeneratorCPUSeconds), burst.Cores(burst.ServerCPUSeconds), burst.Cores(burst.GeneratorCPUSeconds)))
	}
	for _, f := range r.PacedExtra {
		out = append(out, fmt.Sprintf("At %.0f msg/s (%.0f deliveries/s) the chat service's p50 is %.2f ms and p99 %.2f ms, with %.2f µs of server CPU per delivery and the server, generator and other work keeping %.2f, %.2f and %.2f cores busy.",
			f.Rate, f.DeliveriesPerSec, f.Latency.P50, f.Latency.P99, usPer(f), f.Cores(f.ServerCPUSeconds), f.Cores(f.GeneratorCPUSeconds), f.Cores(f.OtherCPUSeconds)))
	}
	if burst != nil {
		out = append(out, fmt.Sprintf("The generator is not free: it decoded every delivery on the same %d cores, using %.2f cores in the size-%d burst run while the chat service used %.2f. On a machine of its own the service would have roughly the whole machine.",
			r.Machine.Cores, burst.Cores(burst.GeneratorCPUSeconds), burst.Members, burst.Cores(burst.ServerCPUSeconds)))
	}
	for _, p := range r.Burst {
		if p.Ratios != nil && p.Size == 100 {
			out = append(out, fmt.Sprintf("Per server CPU-second the chat service delivers %.2f× what the baseline does at size %d: it encodes a message once per room and lets each member's writer batch what is queued, where the baseline marshals per member and writes under the room's lock.",
				p.Ratios.PerCPU, p.Size))
		}
	}
	if w := r.WebSocket; w != nil {
		out = append(out, w.observations()...)
	}
	if i := r.Idle; i != nil && i.HeapExposed && i.Opened > 0 {
		other := i.RSSPerStream - i.HeapPerStream - i.StackPerStream
		out = append(out, fmt.Sprintf("An idle stream on its own connection costs %.1f KB of RSS: %.1f KB of Go heap (transport buffers, HTTP/2 and stream state, the subscription), %.1f KB of goroutine stacks for %.1f goroutines, and %.1f KB of runtime overhead and garbage not yet returned to the OS.",
			i.RSSPerStream/1000, i.HeapPerStream/1000, i.StackPerStream/1000, i.GoroutinesPerStream, other/1000))
		if f := i.Floor; f != nil && f.HeapExposed && f.Opened > 0 && f.Opened == f.Streams {
			out = append(out, fmt.Sprintf("Of that, %.1f KB (%.0f%%) is the gRPC connection itself: a bare connection with no stream costs %.1f KB of RSS and %.2f goroutines on a fresh chat process in the same run. The stream's own cost on top is about %.1f KB.",
				f.RSSPerStream/1000, 100*f.RSSPerStream/i.RSSPerStream, f.RSSPerStream/1000, f.GoroutinesPerStream, (i.RSSPerStream-f.RSSPerStream)/1000))
		}
	}
	if i := r.Idle; i != nil && i.Held > 0 && i.HoldCPUSeconds > 0 {
		out = append(out, fmt.Sprintf("Holding %d idle streams for %.0f s cost the chat process %.2f CPU-s per minute (%.1f%% of one core), %.3f CPU-s per minute per 1,000 streams or %.1f µs of CPU per stream each second, with no message on any stream: the keepalive PINGs, the engine's periodic upkeep and the Go runtime together. %d of them were reset during the hold.",
			i.Held, i.HoldSeconds, i.HoldCPUPerMinute, 100*i.HoldCPUPerMinute/60, i.HoldCPUPerMinutePer1k, 1e6*i.HoldCPUSeconds/i.HoldSeconds/float64(i.Held), i.ResetDuringHold))
	}
	if a := r.Auth; a != nil {
		for _, s := range a.Login {
			if s.Concurrency == 1 {
				out = append(out, fmt.Sprintf("One login at a time reaches %.0f%% of the ceiling: a single request uses one core, and the ceiling counts %d.", 100*s.OfCeiling, a.Cores))
			}
		}
	}
	return out
}
