package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/grpcchatter/grpcchatter/bench/internal/authload"
	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Markdown writes the report as docs/BENCHMARKS.md. Plots are linked from
// imgDir, relative to the Markdown file.
func (r *Report) Markdown(w io.Writer, imgDir string) error {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("This file is written by the load generator (`bench/cmd/chatbench`); do not edit it by hand. ")
	p("Run `make bench` to measure again; the raw figures of the run are in `bench/results/latest.json`.\n\n")

	p("## Machine and command\n\n")
	p("| | |\n|---|---|\n")
	p("| CPU | %s |\n| Cores | %d |\n| Memory | %d GiB |\n| Go | %s (%s) |\n| Kernel | %s |\n", r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.GoVersion, r.Machine.OS, r.Machine.Kernel)
	p("| Started | %s |\n| Run time | %.0f s |\n", r.Started.Format("2006-01-02 15:04 UTC"), r.Seconds)
	p("| Command | `%s` |\n", r.Command)
	p("| Other load on the machine | %.2f cores busy before the run, %.2f after |\n\n", r.BackgroundCoresBefore, r.BackgroundCoresAfter)
	p("Fan-out settings: %d member streams per run (rooms = streams ÷ room size), %.0f s of sending per run, %d-byte bodies, ",
		r.Settings.Streams, r.Settings.DurationS, r.Settings.BodyBytes)
	p("burst window %d messages per room, %d streams per client connection, chat queue size: %s.\n\n",
		r.Settings.Window, r.Settings.StreamsPerConn, r.Settings.QueueSize)

	p("## Targets\n\n")
	p("| Target | Goal | Measured | Status |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		st := t.Status
		if st == NotMet {
			st = "**NOT met**"
		}
		p("| %s | %s | %s | %s |\n", t.Name, t.Goal, t.Measured, st)
	}
	p("\n")

	p("## Fan-out\n\n")
	p("Every member of every room streams; deliveries are messages × members. Latency is from send to receipt (milliseconds). ")
	p("Ratios are chat ÷ baseline: above 1 is better for deliveries, below 1 is better for latency.\n\n")
	p("Cores busy is the server, the generator and everything else on the machine, in cores over the run; a high third figure means the run shared the machine.\n\n")
	p("| Server | Mode | Rooms × members | Messages/s | Deliveries/s | Deliveries per server CPU-s | p50 | p90 | p99 | p99.9 | max | Lost / undelivered | Slow-consumer drops | Errors | Cores busy: server / generator / other |\n")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(f *chatload.FanoutResult) {
		if f == nil {
			return
		}
		mode := string(f.Mode)
		if f.Mode == chatload.Paced {
			mode = fmt.Sprintf("paced %.0f msg/s", f.Rate)
		}
		if f.Stalled {
			mode += " + stalled member"
		}
		cores := f.Cores
		p("| %s | %s | %d × %d | %.0f | %.0f | %.0f | %.2f | %.2f | %.2f | %.2f | %.2f | %d / %d | %d | %d | %.2f / %.2f / %.2f |\n",
			f.Target, mode, f.Rooms, f.Members, f.MessagesPerSec, f.DeliveriesPerSec, f.DeliveriesPerCPUSec,
			f.Latency.P50, f.Latency.P90, f.Latency.P99, f.Latency.P999, f.Latency.Max, f.Lost, f.Undelivered, f.SlowConsumerDisconnects, f.StreamErrors,
			cores(f.ServerCPUSeconds), cores(f.GeneratorCPUSeconds), cores(f.OtherCPUSeconds))
	}
	pairs := append([]Pair{}, r.Burst...)
	if r.Paced != nil {
		pairs = append(pairs, *r.Paced)
	}
	for _, pr := range pairs {
		row(pr.Chat)
		row(pr.Baseline)
	}
	for _, f := range r.PacedExtra {
		row(f)
	}
	row(r.Stalled)
	row(r.StalledLow)
	p("\n")

	var paced []*chatload.FanoutResult
	for _, f := range append(append([]*chatload.FanoutResult{}, pacedOf(r.Paced)...), append(r.PacedExtra, r.Stalled, r.StalledLow)...) {
		if f != nil && f.SendSlip != nil && f.SendSlip.Count > 0 {
			paced = append(paced, f)
		}
	}
	if len(paced) > 0 {
		p("In paced runs each room's messages are due at fixed intervals, and latency counts from the moment a message is actually sent, ")
		p("except for a message that came due before the previous send had returned (the service not reading, which HTTP/2 flow control turns into a blocked send, or the machine too busy to finish the send): that one counts from its due time. ")
		p("How late the generator sent messages against their due time (its timer and scheduling delay, and any time blocked in the previous send; milliseconds):\n\n")
		p("| Server | Rate | Sends | Counted from the due time | p50 | p99 | max |\n|---|---:|---:|---:|---:|---:|---:|\n")
		for _, f := range paced {
			name := f.Target
			if f.Stalled {
				name += " + stalled member"
			}
			p("| %s | %.0f msg/s | %d | %d | %.2f | %.2f | %.2f |\n", name, f.Rate, f.SendSlip.Count, f.SendsBlocked, f.SendSlip.P50, f.SendSlip.P99, f.SendSlip.Max)
		}
		p("\n")
	}

	p("### Ratios to the baseline\n\n")
	p("| Mode | Members | Deliveries/s | Deliveries per CPU-s | p50 | p90 | p99 | p99.9 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, pr := range pairs {
		if pr.Ratios == nil {
			continue
		}
		x := pr.Ratios
		p("| %s | %d | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× | %.2f× |\n", pr.Chat.Mode, pr.Size, x.Deliveries, x.PerCPU, x.P50, x.P90, x.P99, x.P999)
	}
	p("\n![Latency distribution](%s/latency.png)\n\n", imgDir)
	p("![Throughput against room size](%s/throughput.png)\n\n", imgDir)
	for _, pr := range pairs {
		if c := pr.Chat; c != nil && c.FirstError != "" {
			p("- chat %s, %d members: first error: `%s`\n", c.Mode, pr.Size, c.FirstError)
		}
		if c := pr.Baseline; c != nil && c.FirstError != "" {
			p("- baseline %s, %d members: first error: `%s`\n", c.Mode, pr.Size, c.FirstError)
		}
	}

	if r.Stalled != nil {
		p("### Stalled member\n\n")
		p("The paced run again, with one extra member in room 0 that opens its stream and never reads. ")
		p("Others' p99: %.2f ms against %.2f ms without it (**%.2f×**); lost or undelivered to the others: %d; the stalled stream ended with: %s.\n\n",
			r.Stalled.Latency.P99, r.Paced.Chat.Latency.P99, r.StalledP99Ratio, r.Stalled.Missing(), OrOpen(r.Stalled.StalledMemberEnd))
		if l := r.Stalled.StalledRoomLatency; l != nil {
			p("In the stalled member's own room alone: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms (%d deliveries, %.0f%% of the run's).\n\n",
				l.P50, l.P90, l.P99, l.Count, 100*float64(l.Count)/float64(max(r.Stalled.Latency.Count, 1)))
		}
		if l := r.StalledLow; l != nil && r.StalledLowReference != nil {
			p("At the lightest paced load (%.0f msg/s), where CPU queueing does not dominate the tail: others' p99 %.2f ms against %.2f ms without it (**%.2f×**); lost or undelivered: %d; the stalled stream ended with: %s.\n\n",
				l.Rate, l.Latency.P99, r.StalledLowReference.Latency.P99, r.StalledLowP99Ratio, l.Missing(), OrOpen(l.StalledMemberEnd))
			if rl := l.StalledRoomLatency; rl != nil {
				p("In the stalled member's own room alone at that load: p50 %.2f ms, p90 %.2f ms, p99 %.2f ms.\n\n", rl.P50, rl.P90, rl.P99)
			}
		}
	}

	if len(r.Growth) > 0 {
		p("## Growth with room size\n\n")
		p("| Members | Deliveries/s | Server CPU (s) | Deliveries per server CPU-s | Deliveries/s per core (wall) | Change per CPU-s vs smallest |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, g := range r.Growth {
			p("| %d | %.0f | %.2f | %.0f | %.0f | %+.0f%% |\n", g.Size, g.DeliveriesPerSec, g.ServerCPUSeconds, g.PerCPU, g.PerCore, 100*g.Change)
		}
		p("\n")
	}

	if r.WebSocket != nil {
		r.WebSocket.markdown(&b)
	}

	if r.JoinStorm != nil {
		r.JoinStorm.markdown(&b)
	}

	if r.Cluster != nil {
		r.Cluster.markdown(&b)
	}

	if i := r.Idle; i != nil {
		p("## Idle connections\n\n")
		p("%d `Chat` streams, each on its own connection, in rooms of %d, on one chat process. ", i.Streams, i.RoomSize)
		p("Memory is read before the first stream, after a tenth and after all of them (each after a pause); ")
		p("the per-stream figure is the larger of the average over all streams and the marginal cost of the last nine tenths.\n\n")
		p("| | |\n|---|---|\n")
		p("| Opened / failed | %d / %d |\n| Time to connect all | %.1f s (%.0f streams/s) |\n", i.Opened, i.Failed, i.ConnectSeconds, float64(i.Opened)/max(i.ConnectSeconds, 1e-9))
		p("| RSS before → after a tenth → after all | %.1f MB → %.1f MB → %.1f MB |\n| RSS per stream | %.1f KB |\n", float64(i.RSS[0])/1e6, float64(i.RSS[1])/1e6, float64(i.RSS[2])/1e6, i.RSSPerStream/1000)
		if i.HeapExposed {
			p("| Go heap in use, same points | %.1f MB → %.1f MB → %.1f MB |\n| Go heap per stream | %.1f KB |\n", i.Heap[0]/1e6, i.Heap[1]/1e6, i.Heap[2]/1e6, i.HeapPerStream/1000)
			p("| Goroutine stacks per stream | %.1f KB |\n| Goroutines per stream | %.2f |\n", i.StackPerStream/1000, i.GoroutinesPerStream)
		}
		if i.Held == 0 {
			p("| Streams dropped while idle | %d |\n\n", i.DroppedWhileIdle)
		} else {
			p("| Streams ended before the hold | %d |\n", i.DroppedWhileIdle)
			p("| Held, every stream watched | %d streams for %.0f s |\n| **Streams reset during the hold** | **%d** |\n", i.Held, i.HoldSeconds, i.ResetDuringHold)
			if i.HoldCPUSeconds > 0 {
				p("| Chat CPU while holding | %.2f CPU-s per minute (%.1f%% of a core) |\n| Chat CPU per 1,000 idle streams | %.3f CPU-s per minute |\n",
					i.HoldCPUPerMinute, 100*i.HoldCPUPerMinute/60, i.HoldCPUPerMinutePer1k)
			}
			p("\n")
			p("After the last memory reading the streams are held for %.0f s, each watched by its reader: a stream that ends is a reset. ", i.HoldSeconds)
			p("Each client connection uses the SDK's keepalive settings (`client.KeepaliveParams()`: a PING after %.0f s without activity, %.0f s to answer) and, as grpc-go's own dialer does, no Go TCP keepalive; ", i.KeepaliveTime, i.KeepaliveTimeout)
			p("the chat service PINGs each silent connection itself (`KeepaliveTime` in services/chat/internal/api, see the chat README's \"Liveness\"). ")
			p("No stream carries a message, so the chat process's CPU over the hold (utime+stime from /proc/<pid>/stat at its start and end) is what keeping idle connections and their rooms alive costs: the PINGs, the engine's periodic upkeep (presence leases, rooms' idle times) and the Go runtime's own work, an upper bound on the PINGs' cost.\n\n")
		}
		if i.FirstError != "" {
			p("First error: `%s`\n\n", i.FirstError)
		}
		if i.ResetError != "" {
			p("First reset during the hold: `%s`\n\n", i.ResetError)
		}
		if f := i.Floor; f != nil {
			p("The floor, measured in the same run on a fresh chat process: %d bare connections, each made by one health check and then left open with no stream. ", f.Streams)
			p("This is what the gRPC transport (google.golang.org/grpc) costs per connection before the service does anything; ")
			p("a stream on its own connection cannot cost less.\n\n")
			p("Each per-connection figure is estimated as above, in its own process, so their difference is an estimate too.\n\n")
			p("| | Bare connection | Stream on its own connection | The stream's own cost, about |\n|---|---:|---:|---:|\n")
			p("| Opened / failed | %d / %d | %d / %d | |\n", f.Opened, f.Failed, i.Opened, i.Failed)
			p("| RSS | %.1f KB | %.1f KB | %.1f KB |\n", f.RSSPerStream/1000, i.RSSPerStream/1000, (i.RSSPerStream-f.RSSPerStream)/1000)
			if f.HeapExposed && i.HeapExposed {
				p("| Go heap | %.1f KB | %.1f KB | %.1f KB |\n", f.HeapPerStream/1000, i.HeapPerStream/1000, (i.HeapPerStream-f.HeapPerStream)/1000)
				p("| Goroutine stacks | %.1f KB | %.1f KB | %.1f KB |\n", f.StackPerStream/1000, i.StackPerStream/1000, (i.StackPerStream-f.StackPerStream)/1000)
				p("| Goroutines | %.2f | %.2f | %.2f |\n", f.GoroutinesPerStream, i.GoroutinesPerStream, i.GoroutinesPerStream-f.GoroutinesPerStream)
			}
			p("\n")
			if f.FirstError != "" {
				p("First error of the floor run: `%s`\n\n", f.FirstError)
			}
		}
	}

	if a := r.Auth; a != nil {
		p("## Auth\n\n")
		p("argon2id m=%d KiB, t=%d, p=%d, GOGC=%d (the service's; `bench/cmd/hashtime` ran with it too, each batch in a fresh process).\n\n",
			a.Params.MemoryKiB, a.Params.Time, a.Params.Threads, a.GCPercent)
		p("The hash-bound ceiling is what a process doing nothing but hashing completes with one hashing goroutine per core, as a saturated server runs them: **%.1f hashes/s** on %d cores (`bench/cmd/hashtime -conc %d`; the median of %d batches, taken before and between the measurements below so that it shares their window, as each measurement is an average over it; a hash then takes %.1f ms; the fastest batch reached %.1f/s). ",
			a.CeilingPerSec, a.Cores, a.Cores, a.HashBatches, a.HashTogetherMs, a.FastestCeilingPerSec)
		p("Each batch first hashes untimed until its heap holds the memory a hash needs, as a long-running service's does; until then every hash also faults its %d KiB in from the kernel. ", a.Params.MemoryKiB)
		p("For comparison, a hash alone takes %.1f ms (the median sequential batch's median), and %d cores ÷ %.1f ms = %.1f/s, the sequential ceiling; hashing together reached %.0f%% of it. ",
			a.HashMs, a.Cores, a.HashMs, a.SequentialCeilingPerSec, 100*a.CeilingPerSec/a.SequentialCeilingPerSec)
		p("The two can differ because hashes running together share memory bandwidth and caches, and the runtime's work for their memory (zeroing, collection) finds no idle core. Neither allows for the load generator, which shares the cores.\n\n")
		p("| Operation | Concurrency | Requests/s | Of ceiling | Of sequential ceiling | p50 (ms) | p99 (ms) | Errors |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range append(append([]authload.Step{}, a.Register...), a.Login...) {
			p("| %s | %d | %.1f | %.0f%% | %.0f%% | %.1f | %.1f | %d |\n", s.Op, s.Concurrency, s.PerSec, 100*s.OfCeiling, 100*s.OfSequentialCeiling, s.P50Ms, s.P99Ms, s.Errors)
		}
		p("\nLogin median over alternating sequential requests, unknown user: %.1f ms; wrong password: %.1f ms (ratio %.2f). ", a.UnknownUserMs, a.WrongPasswordMs, a.UnknownVsWrong)
		p("Token verification (internal/token): user token %.0f ns/op, room token %.0f ns/op.\n\n", a.VerifyUserNs, a.VerifyRoomNs)
	}

	if obs := r.Observations(); len(obs) > 0 {
		p("## Reading the figures\n\n")
		p("Derived from this run's figures, so they stay true to it.\n\n")
		for _, o := range obs {
			p("- %s\n", o)
		}
		p("\n")
	}

	if len(r.Profiles) > 0 {
		p("## Profiles\n\n")
		for _, pr := range r.Profiles {
			p("**%s** (%s)\n\n", pr.Name, pr.Source)
			if len(pr.Top) > 0 {
				p("```\n      flat  flat%%   sum%%        cum   cum%%\n%s\n```\n\n", strings.Join(pr.Top, "\n"))
			}
		}
	}

	if len(r.Notes) > 0 {
		p("## Method\n\n")
		for _, n := range r.Notes {
			p("- %s\n", n)
		}
		p("\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// OrOpen names how a stalled member's stream ended: s, or that it had not.
func OrOpen(s string) string {
	if s == "" {
		return "nothing (still open at the end)"
	}
	return s
}

// pacedOf lists a paced pair's runs, chat first.
func pacedOf(pr *Pair) []*chatload.FanoutResult {
	if pr == nil {
		return nil
	}
	return []*chatload.FanoutResult{pr.Chat, pr.Baseline}
}
