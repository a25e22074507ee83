package main

import (
	"fmt"
	"math"
	"time"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

func growth(sizes []int, burst map[int]*chatload.FanoutResult, cores int) []report.Growth {
	var out []report.Growth
	for _, size := range sizes {
		r := burst[size]
		if r == nil {
			continue
		}
		g := report.Growth{Size: size, DeliveriesPerSec: r.DeliveriesPerSec, ServerCPUSeconds: r.ServerCPUSeconds,
			PerCPU: r.DeliveriesPerCPUSec, PerCore: r.DeliveriesPerSec / float64(cores)}
		if len(out) > 0 && out[0].PerCPU > 0 {
			g.Change = g.PerCPU/out[0].PerCPU - 1
		}
		out = append(out, g)
	}
	return out
}

func status(ok bool) string {
	if ok {
		return report.Met
	}
	return report.NotMet
}

// targets states each goal of the issue and whether this run met it.
func targets(r *report.Report) []report.Target {
	var ts []report.Target
	add := func(name, goal, measured, st string) {
		ts = append(ts, report.Target{Name: name, Goal: goal, Measured: measured, Status: st})
	}

	var p100 *report.Pair
	for i := range r.Burst {
		if r.Burst[i].Size == 100 {
			p100 = &r.Burst[i]
		}
	}
	if p100 != nil && p100.Ratios != nil {
		c := p100.Chat
		add("Burst fan-out, 100 members", "≥ 2× the baseline's deliveries/s, 0 lost",
			fmt.Sprintf("%.2f× (%.0f vs %.0f /s), %d lost, %d slow-consumer drops", p100.Ratios.Deliveries, c.DeliveriesPerSec, p100.Baseline.DeliveriesPerSec, c.Missing(), c.SlowConsumerDisconnects),
			status(p100.Ratios.Deliveries >= 2 && c.Missing() == 0 && c.SlowConsumerDisconnects == 0))
	} else {
		add("Burst fan-out, 100 members", "≥ 2× the baseline's deliveries/s, 0 lost", "size 100 or baseline not run", report.NotMeasured)
	}

	// The goal is at half the measured maximum; another -paced-fraction
	// measures something else.
	if f := r.Settings.PacedFraction; r.Paced != nil && f == 0.5 {
		c := r.Paced.Chat
		add("Paced fan-out at half the max, p99", "≤ 5 ms",
			fmt.Sprintf("%.2f ms at %.0f msg/s (%.0f deliveries/s)", c.Latency.P99, c.Rate, c.DeliveriesPerSec), status(c.Latency.P99 <= 5 && c.Missing() == 0))
		add("Paced fan-out at half the max, p50", "≤ 1 ms",
			fmt.Sprintf("%.2f ms", c.Latency.P50), status(c.Latency.P50 <= 1 && c.Missing() == 0))
	} else if r.Paced != nil {
		add("Paced fan-out at half the max", "p99 ≤ 5 ms, p50 ≤ 1 ms",
			fmt.Sprintf("paced at %.0f%% of the max instead (-paced-fraction): p50 %.2f ms, p99 %.2f ms", 100*f, r.Paced.Chat.Latency.P50, r.Paced.Chat.Latency.P99), report.NotMeasured)
	} else {
		add("Paced fan-out at half the max", "p99 ≤ 5 ms, p50 ≤ 1 ms", "not run", report.NotMeasured)
	}

	if r.Idle != nil {
		i := r.Idle
		heap := "heap not exposed"
		if i.HeapExposed {
			heap = fmt.Sprintf("%.1f KB Go heap", i.HeapPerStream/1000)
		}
		floor := ""
		if f := i.Floor; f != nil && f.Opened == f.Streams {
			floor = fmt.Sprintf("; a bare gRPC connection with no stream costs %.1f KB RSS in the same run", f.RSSPerStream/1000)
		}
		st := status(i.Opened == i.Streams && i.DroppedWhileIdle == 0 && i.RSSPerStream <= 20000)
		if i.Streams < 10000 {
			st = report.NotMeasured // the goal is at 10,000 streams
		}
		add(fmt.Sprintf("Idle streams (%d, one connection each)", i.Streams), "≤ 20 KB server memory per stream at 10,000",
			fmt.Sprintf("%.1f KB RSS per stream (%s); %d of %d opened in %.1f s, %d dropped while idle%s", i.RSSPerStream/1000, heap, i.Opened, i.Streams, i.ConnectSeconds, i.DroppedWhileIdle, floor),
			st)
	} else {
		add("Idle streams", "≤ 20 KB server memory per stream at 10,000", "not run", report.NotMeasured)
	}
	add(idleHoldTarget(r.Idle))

	if r.Stalled != nil && r.StalledP99Ratio > 0 {
		add("Stalled member", "others' p99 ≤ 1.5× the run without it",
			fmt.Sprintf("%.2f× (%.2f ms vs %.2f ms), %d lost, stalled member ended with %s", r.StalledP99Ratio, r.Stalled.Latency.P99, r.Paced.Chat.Latency.P99, r.Stalled.Missing(), report.OrOpen(r.Stalled.StalledMemberEnd)),
			status(r.StalledP99Ratio <= 1.5 && r.Stalled.Missing() == 0))
	} else {
		add("Stalled member", "others' p99 ≤ 1.5× the run without it", "not run", report.NotMeasured)
	}
	if l := r.StalledLow; l != nil && r.StalledLowP99Ratio > 0 {
		add(fmt.Sprintf("Stalled member, light load (%.0f msg/s)", l.Rate), "others' p99 ≤ 1.5× the run without it (supplementary)",
			fmt.Sprintf("%.2f× (%.2f ms vs %.2f ms), %d lost, stalled member ended with %s", r.StalledLowP99Ratio, l.Latency.P99, r.StalledLowReference.Latency.P99, l.Missing(), report.OrOpen(l.StalledMemberEnd)),
			status(r.StalledLowP99Ratio <= 1.5 && l.Missing() == 0))
	}

	if a := r.Auth; a != nil {
		worst, seen := math.Inf(1), false
		for _, s := range a.Login {
			if s.Concurrency >= a.Cores {
				worst, seen = math.Min(worst, s.OfCeiling), true
			}
		}
		if seen {
			worstSeq := math.Inf(1)
			for _, s := range a.Login {
				if s.Concurrency >= a.Cores {
					worstSeq = math.Min(worstSeq, s.OfSequentialCeiling)
				}
			}
			add("Login throughput at concurrency ≥ cores", "≥ 90% of the hash-bound ceiling",
				fmt.Sprintf("worst %.0f%% of %.1f/s (a process only hashing, one goroutine per core: the median batch); %.0f%% of %.1f/s (cores ÷ a hash alone)", 100*worst, a.CeilingPerSec, 100*worstSeq, a.SequentialCeilingPerSec),
				status(worst >= 0.9))
		}
		add("Unknown user vs wrong password", "login times within 10%",
			fmt.Sprintf("%.1f ms vs %.1f ms (%.2f×)", a.UnknownUserMs, a.WrongPasswordMs, a.UnknownVsWrong),
			status(math.Abs(a.UnknownVsWrong-1) <= 0.10))
	} else {
		add("Auth", "login ≥ 90% of ceiling; unknown vs wrong within 10%", "not run", report.NotMeasured)
	}

	if len(r.Growth) >= 2 {
		lo, hi := 0.0, 0.0
		for _, g := range r.Growth[1:] {
			lo, hi = math.Min(lo, g.Change), math.Max(hi, g.Change)
		}
		first, last := r.Growth[0], r.Growth[len(r.Growth)-1]
		add(fmt.Sprintf("Growth, %d to %d members", first.Size, last.Size), "deliveries/s per core the service used (per server CPU-second) within ±25%",
			fmt.Sprintf("%.0f → %.0f deliveries per CPU-second (%+.0f%% … %+.0f%%)", first.PerCPU, last.PerCPU, 100*lo, 100*hi),
			status(lo >= -0.25 && hi <= 0.25))
	}

	if c := r.Cluster; c != nil && c.HotRoom != nil {
		h := c.HotRoom
		add(fmt.Sprintf("Hot room across %d instances", h.Instances), "every member receives every message once, all in one order",
			fmt.Sprintf("%d members, a sender on each instance, %d messages: %d lost, %d undelivered, %d duplicates, %d members in another order, %d stream errors",
				h.Members, h.Sent, h.Lost, h.Undelivered, h.Duplicates, h.OrderMismatches, h.StreamErrors),
			status(h.Sent > 0 && h.Missing() == 0 && h.Duplicates == 0 && h.OrderMismatches == 0 && h.StreamErrors == 0 && h.SlowConsumerDisconnects == 0))
	} else {
		add("Hot room across instances", "every member receives every message once, all in one order", "not run", report.NotMeasured)
	}

	add(joinStormTarget(r.JoinStorm))

	var lost int64
	drops, stalls, runs := 0, 0, 0
	for _, f := range r.ChatRuns() {
		lost += f.Missing()
		drops += f.SlowConsumerDisconnects // the stalled member is counted apart
		stalls += f.WindowStalls
		runs++
	}
	add("No loss (chat service)", "0 messages lost or undelivered, 0 members dropped, in every fan-out run",
		fmt.Sprintf("%d lost or undelivered, %d slow-consumer drops, %d stalled burst windows in %d runs", lost, drops, stalls, runs),
		status(lost == 0 && drops == 0 && stalls == 0))
	return ts
}

// stormMembers and stormCPU are the join storm's goal: a room of
// stormMembers filling up at once costs the chat process at most
// stormCPU CPU-seconds, with every member learning the whole room. The
// cost grows with the square of the room (each member learns of every
// later one), so another size is not held to it.
const (
	stormMembers = 3000
	stormCPU     = 5.0
)

// joinStormTarget is the goal of the join storm.
func joinStormTarget(j *report.JoinStorm) (name, goal, measured, st string) {
	name = fmt.Sprintf("Join storm, %d members", stormMembers)
	goal = fmt.Sprintf("≤ %.0f CPU-s of the chat process, every member learns the whole room", stormCPU)
	if j == nil {
		return name, goal, "not run", report.NotMeasured
	}
	a := j.After
	measured = fmt.Sprintf("%.2f CPU-s for %d members, %d incomplete, %d frames of presence", a.ServerCPUSeconds, a.Members, a.Incomplete, a.Frames)
	if b := j.Before; b != nil && a.ServerCPUSeconds > 0 {
		measured += fmt.Sprintf("; %s: %.2f CPU-s, %d frames (%.1f×)", j.BaseRev, b.ServerCPUSeconds, b.Frames, b.ServerCPUSeconds/a.ServerCPUSeconds)
	}
	switch {
	case a.Members != stormMembers || a.ServerCPUSeconds == 0:
		st = report.NotMeasured
	default:
		st = status(a.ServerCPUSeconds <= stormCPU && a.Incomplete == 0)
	}
	return name, goal, measured, st
}

// minIdleHold is the shortest hold that the idle-reset goal counts: long
// enough for many keepalive rounds on every connection.
const minIdleHold = 3 * time.Minute

// idleHoldTarget is the goal that idle streams survive the hold.
func idleHoldTarget(i *chatload.IdleResult) (name, goal, measured, st string) {
	name, goal = "Idle streams held", fmt.Sprintf("no idle stream reset over the hold (≥ %.0f min)", minIdleHold.Minutes())
	switch {
	case i == nil:
		return name, goal, "not run", report.NotMeasured
	case i.Held == 0:
		return name, goal, "not held (-idle-hold 0)", report.NotMeasured
	}
	name = fmt.Sprintf("Idle streams held (%d for %.0f s)", i.Held, i.HoldSeconds)
	measured = fmt.Sprintf("%d of %d reset", i.ResetDuringHold, i.Held)
	if i.ResetError != "" {
		measured += fmt.Sprintf(" (first: %s)", i.ResetError)
	}
	if i.HoldCPUSeconds > 0 {
		measured += fmt.Sprintf("; chat CPU %.2f s per minute, %.3f s per minute per 1,000 streams", i.HoldCPUPerMinute, i.HoldCPUPerMinutePer1k)
	}
	switch {
	case i.ResetDuringHold > 0:
		st = report.NotMet
	case i.HoldSeconds < minIdleHold.Seconds():
		st = report.NotMeasured // too short to count
	default:
		st = report.Met
	}
	return name, goal, measured, st
}

// notes are the methodological choices the reader needs to weigh the
// figures.
func notes(c config) []string {
	return []string{
		"The generator runs on the same machine as the server it measures and competes with it for the cores: every delivery is also decoded by a client goroutine here.",
		fmt.Sprintf("Members stream over shared client connections, %d streams per connection, as they would behind a gateway or on a client in many rooms; each idle stream has its own connection.", c.StreamsPerConn),
		"In every room, member 0 also sends; every member, the sender included, receives each message, and a delivery is one member receiving one message.",
		fmt.Sprintf("Burst mode keeps at most %d messages per room in flight (sent but not yet received by every member), below the service's per-member queue, so a correct service drops nobody.", c.Window),
		"Latency runs from the send to the receipt, both read from this process's clock. In paced mode it runs from the actual send, or from the scheduled send time when the previous send had not yet returned (the service not reading, or the machine too busy), so that the service's back-pressure is not hidden (no coordinated omission) while the generator's late timer is not charged to it.",
		"Room tokens are minted with internal/token and the SECRET given to the chat process instead of calling JoinChatRoom per member, whose argon2id check of the room password (and its join throttle) would dominate setting up thousands of members. Rooms are created through CreateChatRoom.",
		fmt.Sprintf("The machine may be shared (other builds and tests). Before each run the generator waits up to %s for other work to fall under %.2f cores, and every fan-out row reports the cores used by the server, the generator and everything else during the run.", c.QuietWait, c.QuietCores),
		"Paced runs are measured at the fraction of the chat service's burst rate given by -paced-fraction (the target's \"half the measured max\"), and at -paced-extra fractions for the shape of latency against load; the baseline is paced at the same rate as the chat service.",
		"The chat service runs with LOG_LEVEL=warn. Deliveries per CPU-second use the chat process's utime+stime from /proc/<pid>/stat over the run.",
		"The baseline (bench/internal/baseline) is a separate process built from the same proto: no auth, history or queues; each member's stream marshals and sends each message itself, under the room's mutex.",
	}
}
