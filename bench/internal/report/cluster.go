package report

import (
	"fmt"
	"strings"

	"github.com/grpcchatter/grpcchatter/bench/internal/appends"
	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Cluster is the cross-instance part of a run: chat instances in shared
// mode, sharing rooms through one NATS server, against the default mode.
type Cluster struct {
	// NATSServer is the nats-server version; it ran as a single node with
	// JetStream, the history stream at one replica.
	NATSServer string `json:"nats_server"`
	// Reference is the default mode's burst run (no NATS) of the same size
	// as Single and Spread, taken from the fan-out runs.
	Reference *chatload.FanoutResult `json:"reference"`
	// Single is one instance in shared mode, every member on it.
	Single *chatload.FanoutResult `json:"single"`
	// Spread is three instances in shared mode, each room's members and
	// the rooms' senders spread evenly over them.
	Spread *chatload.FanoutResult `json:"spread"`
	// HotRoom is one room on three instances with a sender on each,
	// sending at once.
	HotRoom *chatload.FanoutResult `json:"hot_room"`
	// The *Appends count each run's appends to the history stream: the
	// chunks stored, and in the hot room the chunks published too.
	SingleAppends      *appends.Count `json:"single_appends,omitempty"`
	SpreadAppends      *appends.Count `json:"spread_appends,omitempty"`
	HotRoomAppends     *appends.Count `json:"hot_room_appends,omitempty"`
	PacedSingleAppends *appends.Count `json:"paced_single_appends,omitempty"`
	PacedSpreadAppends *appends.Count `json:"paced_spread_appends,omitempty"`
	// The Paced runs repeat Reference, Single and Spread at one light rate,
	// where latency is the path a message takes rather than queueing.
	PacedReference *chatload.FanoutResult `json:"paced_reference,omitempty"`
	PacedSingle    *chatload.FanoutResult `json:"paced_single,omitempty"`
	PacedSpread    *chatload.FanoutResult `json:"paced_spread,omitempty"`
	// Seconds is the section's wall time, servers' start-up included.
	Seconds float64 `json:"seconds"`
}

// Runs lists the section's runs measured for it (not Reference, which
// is a fan-out run's).
func (c *Cluster) Runs() []*chatload.FanoutResult {
	return []*chatload.FanoutResult{c.Single, c.Spread, c.HotRoom, c.PacedReference, c.PacedSingle, c.PacedSpread}
}

// usPerMessage is the CPU time, in microseconds, that the service's
// processes spent per message sent; broker is nats-server's part of it.
func usPerMessage(f *chatload.FanoutResult) (all, broker float64) {
	if f == nil || f.Sent == 0 {
		return 0, 0
	}
	return 1e6 * f.ServerCPUSeconds / float64(f.Sent), 1e6 * f.BrokerCPUSeconds / float64(f.Sent)
}

// NATSCost is the CPU time per message, in microseconds, that one
// instance in shared mode spent beyond the default mode in the burst runs,
// and the same per delivery. ok is false when either run is missing.
func (c *Cluster) NATSCost() (perMessage, perDelivery float64, ok bool) {
	if c.Reference == nil || c.Single == nil || c.Reference.Sent == 0 || c.Single.Sent == 0 || c.Reference.Delivered == 0 || c.Single.Delivered == 0 {
		return 0, 0, false
	}
	shared, _ := usPerMessage(c.Single)
	plain, _ := usPerMessage(c.Reference)
	perDelivery = 1e6 * (c.Single.ServerCPUSeconds/float64(c.Single.Delivered) - c.Reference.ServerCPUSeconds/float64(c.Reference.Delivered))
	return shared - plain, perDelivery, true
}

func (c *Cluster) markdown(b *strings.Builder) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("## Across instances\n\n")
	p("The chat service in shared mode (`NATS_URL`): room history, presence and throttles on NATS JetStream, rooms in one SQLite database (`DATA_DIR`) that the instances share. ")
	p("One nats-server %s ran on this machine as a single node, JetStream on file storage, streams at one replica (`NATS_REPLICAS=1`). ", c.NATSServer)
	p("With three instances, member m of room r streams to instance (r+m) mod 3: each room has a third of its members on each instance, and the rooms' senders (their first members) are spread over the instances too. ")
	p("Rooms are created on the first instance; the others find them in the shared database. ")
	p("CPU counts every process of the service, the chat instances and nats-server (its share in the next column), not the generator. ")
	p("An instance appends a room's new messages to the room's log in NATS as one chunk, so under load one append carries several messages; messages per append counts the chunks the stream stored during the run. ")
	p("Lost counts messages a member skipped or never received; order mismatches count members who received every message but not in the order their room's first member did. Latency in milliseconds.\n\n")
	p("| Setup | Mode | Rooms × members | Senders per room | Deliveries/s | Deliveries per CPU-s | CPU per message | of which nats-server | Messages per append | p50 | p99 | p99.9 | Lost / undelivered | Order mismatches | Cores busy: service / generator / other |\n")
	p("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	row := func(name string, f *chatload.FanoutResult, a *appends.Count) {
		if f == nil {
			return
		}
		all, broker := usPerMessage(f)
		brokerCol, perAppend := "—", "—"
		if f.BrokerCPUSeconds > 0 {
			brokerCol = fmt.Sprintf("%.1f µs", broker)
		}
		if a != nil && a.Stored > 0 {
			perAppend = fmt.Sprintf("%.1f", float64(f.Sent)/float64(a.Stored))
		}
		mode := string(f.Mode)
		if f.Mode == chatload.Paced {
			mode = fmt.Sprintf("paced %.0f msg/s", f.Rate)
		}
		cores := f.Cores
		p("| %s | %s | %d × %d | %d | %.0f | %.0f | %.1f µs | %s | %s | %.2f | %.2f | %.2f | %d / %d | %d | %.2f / %.2f / %.2f |\n",
			name, mode, f.Rooms, f.Members, max(f.Senders, 1), f.DeliveriesPerSec, f.DeliveriesPerCPUSec, all, brokerCol, perAppend,
			f.Latency.P50, f.Latency.P99, f.Latency.P999, f.Lost, f.Undelivered, f.OrderMismatches,
			cores(f.ServerCPUSeconds), cores(f.GeneratorCPUSeconds), cores(f.OtherCPUSeconds))
	}
	row("1 instance, default mode (no NATS)", c.Reference, nil)
	row("1 instance, shared mode", c.Single, c.SingleAppends)
	row("3 instances, shared mode", c.Spread, c.SpreadAppends)
	row("Hot room, 3 instances", c.HotRoom, c.HotRoomAppends)
	row("1 instance, default mode (no NATS)", c.PacedReference, nil)
	row("1 instance, shared mode", c.PacedSingle, c.PacedSingleAppends)
	row("3 instances, shared mode", c.PacedSpread, c.PacedSpreadAppends)
	p("\n")

	if per, perDelivery, ok := c.NATSCost(); ok {
		shared, broker := usPerMessage(c.Single)
		plain, _ := usPerMessage(c.Reference)
		p("- **What NATS adds per message:** in the burst runs one instance in shared mode spent %.1f µs of CPU per message sent (nats-server %.1f µs of it) against %.1f µs in the default mode: **%+.1f µs per message** (%+.0f%%), %+.2f µs per delivery at %d members a room. ",
			shared, broker, plain, per, 100*per/plain, perDelivery, c.Single.Members)
		p("Throughput: %.0f against %.0f deliveries/s (%.2f×).\n", c.Single.DeliveriesPerSec, c.Reference.DeliveriesPerSec, c.Single.DeliveriesPerSec/c.Reference.DeliveriesPerSec)
	}
	if s, ref := c.Spread, c.Reference; s != nil && ref != nil && c.Single != nil && ref.Sent > 0 && s.Sent > 0 {
		spread, broker := usPerMessage(s)
		plain, _ := usPerMessage(ref)
		p("- **Three instances:** a message cost %.1f µs of CPU (nats-server %.1f µs), %+.1f µs against the default mode: it is appended once, then each of the other two instances reads it from the stream and fans it out to its own members. ",
			spread, broker, spread-plain)
		p("%.0f deliveries/s against %.0f on one instance in shared mode%s.\n", s.DeliveriesPerSec, c.Single.DeliveriesPerSec, p99Compare(s, c.Single))
	}
	if pr, ps := c.PacedReference, c.PacedSingle; pr != nil && ps != nil {
		plain, _ := usPerMessage(pr)
		shared, _ := usPerMessage(ps)
		p("- **At the light load** (%.0f msg/s) shared mode on one instance spent %.1f µs per message against %.1f µs in the default mode (%+.1f µs); its p50 was %.2f ms against %.2f ms (%+.2f ms) and its p99 %.2f ms against %.2f ms",
			ps.Rate, shared, plain, shared-plain, ps.Latency.P50, pr.Latency.P50, ps.Latency.P50-pr.Latency.P50, ps.Latency.P99, pr.Latency.P99)
		if sp := c.PacedSpread; sp != nil {
			p("; spread over three instances, p50 %.2f ms and p99 %.2f ms", sp.Latency.P50, sp.Latency.P99)
		}
		p(".")
		if la, ba := c.PacedSingleAppends, c.SingleAppends; c.Single != nil && la != nil && ba != nil && la.Stored > 0 && ba.Stored > 0 {
			lightUs := 1e6 * ps.BrokerCPUSeconds / float64(la.Stored)
			heavyUs := 1e6 * c.Single.BrokerCPUSeconds / float64(ba.Stored)
			p(" nats-server spent %.0f µs per append at this load, %.1f messages each, and %.0f µs per append in the burst run, %.1f messages each",
				lightUs, float64(ps.Sent)/float64(la.Stored), heavyUs, float64(c.Single.Sent)/float64(ba.Stored))
			if lightUs < 2*heavyUs && heavyUs < 2*lightUs {
				p(": its cost follows the appends, and batching under load spreads each over more messages")
			}
			p(".")
		}
		p("\n")
	}
	if h := c.HotRoom; h != nil {
		p("- **Hot room:** %d members on three instances, %d of them (one per instance) sending at once, %d messages: %d lost, %d undelivered, %d duplicates, %d members with another order. ",
			h.Members, h.Senders, h.Sent, h.Lost, h.Undelivered, h.Duplicates, h.OrderMismatches)
		if a := c.HotRoomAppends; a != nil && a.Stored > 0 {
			p("The instances published %d appends to the room's log and the stream stored %d: %d (%.0f%% of those stored) were refused because another instance had appended first, and were published again after catching up. A stored append carried %.1f messages on average.",
				a.Published, a.Stored, a.Refused(), 100*float64(a.Refused())/float64(a.Stored), float64(h.Sent)/float64(a.Stored))
		}
		p("\n")
	}
	p("\nThe section took %.0f s, servers' start-up included.\n\n", c.Seconds)
}

// p99Compare says how a's p99 compares with b's.
func p99Compare(a, b *chatload.FanoutResult) string {
	if a == nil || b == nil {
		return ""
	}
	return fmt.Sprintf(", p99 %.2f ms against %.2f ms", a.Latency.P99, b.Latency.P99)
}
