package report

import (
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Table writes the run's main figures and the targets for a terminal.
func (r *Report) Table(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "server\tmode\trooms×members\tmsg/s\tdeliveries/s\tper CPU-s\tp50 ms\tp99 ms\tp99.9 ms\tlost/undeliv\tdrops\terrors\tcores srv/gen/other\t")
	printed := map[*chatload.FanoutResult]bool{}
	row := func(f *chatload.FanoutResult) {
		if f == nil || printed[f] {
			return
		}
		printed[f] = true
		mode := string(f.Mode)
		if f.Stalled {
			mode += "+stalled"
		}
		if f.Senders > 1 {
			mode += fmt.Sprintf("+%dsenders", f.Senders)
		}
		switch {
		case f.Transport == chatload.WebSocket:
			mode += "+ws"
		case f.Conns >= f.Rooms*f.Members:
			mode += "+conn/member"
		}
		c := f.Cores
		fmt.Fprintf(tw, "%s\t%s\t%d×%d\t%.0f\t%.0f\t%.0f\t%.2f\t%.2f\t%.2f\t%d/%d\t%d\t%d\t%.2f/%.2f/%.2f\t\n", f.Target, mode, f.Rooms, f.Members,
			f.MessagesPerSec, f.DeliveriesPerSec, f.DeliveriesPerCPUSec, f.Latency.P50, f.Latency.P99, f.Latency.P999, f.Lost, f.Undelivered, f.SlowConsumerDisconnects, f.StreamErrors,
			c(f.ServerCPUSeconds), c(f.GeneratorCPUSeconds), c(f.OtherCPUSeconds))
	}
	for _, p := range r.Burst {
		row(p.Chat)
		row(p.Baseline)
	}
	if r.Paced != nil {
		row(r.Paced.Chat)
		row(r.Paced.Baseline)
	}
	for _, f := range r.PacedExtra {
		row(f)
	}
	row(r.Stalled)
	row(r.StalledLow)
	if c := r.Cluster; c != nil {
		for _, f := range c.Runs() {
			row(f)
		}
	}
	if w := r.WebSocket; w != nil {
		for _, f := range w.Results() {
			row(f)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r.JoinStorm != nil {
		r.JoinStorm.table(w)
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tgoal\tmeasured\tstatus")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", t.Name, t.Goal, t.Measured, t.Status)
	}
	return tw.Flush()
}
