package report

import (
	"fmt"
	"math"
	"path/filepath"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Plots writes latency.png and throughput.png into dir.
func (r *Report) Plots(dir string) error {
	if err := r.latencyPlot(filepath.Join(dir, "latency.png")); err != nil {
		return fmt.Errorf("latency plot: %w", err)
	}
	if err := r.throughputPlot(filepath.Join(dir, "throughput.png")); err != nil {
		return fmt.Errorf("throughput plot: %w", err)
	}
	return nil
}

// nines maps a percentile to its "number of nines", so that 90, 99 and
// 99.9 are evenly spaced along the axis.
func nines(pct float64) float64 {
	return -math.Log10(1 - math.Min(pct, 99.999)/100)
}

func (r *Report) latencyPlot(path string) error {
	p := plot.New()
	p.Title.Text = "Fan-out latency distribution (send → receipt)"
	p.X.Label.Text = "percentile"
	p.Y.Label.Text = "latency (ms, log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.X.Tick.Marker = plot.ConstantTicks([]plot.Tick{
		{Value: nines(10), Label: "10"}, {Value: nines(50), Label: "50"}, {Value: nines(90), Label: "90"},
		{Value: nines(99), Label: "99"}, {Value: nines(99.9), Label: "99.9"}, {Value: nines(99.99), Label: "99.99"},
		{Value: nines(99.999), Label: "99.999"},
	})
	// Curves rise to the right; the lower right corner is free.
	p.Legend.Top = false
	p.Legend.Left = false
	p.Add(plotter.NewGrid())
	var series []any
	addCurve := func(name string, f *chatload.FanoutResult) {
		if f == nil || len(f.Latency.Curve) == 0 {
			return
		}
		var xy plotter.XYs
		for _, pt := range f.Latency.Curve {
			if pt.Percentile <= 0 || pt.Percentile >= 100 {
				continue
			}
			xy = append(xy, plotter.XY{X: nines(pt.Percentile), Y: math.Max(pt.Ms, 0.001)})
		}
		series = append(series, name, xy)
	}
	for _, pr := range r.Burst {
		if pr.Size == 100 {
			addCurve("chat, burst, 100 members", pr.Chat)
			addCurve("baseline, burst, 100 members", pr.Baseline)
		}
	}
	if r.Paced != nil {
		addCurve(fmt.Sprintf("chat, paced %.0f msg/s", r.Paced.Chat.Rate), r.Paced.Chat)
		addCurve(fmt.Sprintf("baseline, paced %.0f msg/s", r.Paced.Chat.Rate), r.Paced.Baseline)
	}
	for _, f := range r.PacedExtra {
		addCurve(fmt.Sprintf("chat, paced %.0f msg/s", f.Rate), f)
	}
	addCurve("chat, paced + stalled member", r.Stalled)
	if len(series) == 0 {
		return nil
	}
	if err := plotutil.AddLinePoints(p, series...); err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

func (r *Report) throughputPlot(path string) error {
	p := plot.New()
	p.Title.Text = "Burst fan-out throughput against room size"
	p.X.Label.Text = "members per room (log scale)"
	p.Y.Label.Text = "deliveries per second"
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())
	var chat, base, chatCPU plotter.XYs
	for _, pr := range r.Burst {
		if pr.Chat != nil {
			chat = append(chat, plotter.XY{X: float64(pr.Size), Y: pr.Chat.DeliveriesPerSec})
			chatCPU = append(chatCPU, plotter.XY{X: float64(pr.Size), Y: pr.Chat.DeliveriesPerCPUSec})
		}
		if pr.Baseline != nil {
			base = append(base, plotter.XY{X: float64(pr.Size), Y: pr.Baseline.DeliveriesPerSec})
		}
	}
	var series []any
	if len(chat) > 0 {
		series = append(series, "chat: deliveries/s", chat, "chat: deliveries per server CPU-second", chatCPU)
	}
	if len(base) > 0 {
		series = append(series, "baseline: deliveries/s", base)
	}
	if len(series) == 0 {
		return nil
	}
	if err := plotutil.AddLinePoints(p, series...); err != nil {
		return err
	}
	p.Y.Min = 0
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
