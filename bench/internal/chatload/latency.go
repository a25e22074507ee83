package chatload

import (
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Quantiles at which a latency curve is sampled for the plots.
var curveQuantiles = []float64{0, 10, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 99.999, 100}

// Latency summarises a latency distribution. Times are in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	// Curve is the distribution at curveQuantiles, for plotting.
	Curve []Point `json:"curve"`
}

// Point is one sample of a latency curve: the percentile and its latency.
type Point struct {
	Percentile float64 `json:"percentile"`
	Ms         float64 `json:"ms"`
}

// recorder is a latency histogram in microseconds, sharded so that many
// receiving goroutines can record without fighting over one lock.
//
// Two significant digits (values within 1%) keep each shard at about
// 22 KB, so the shards stay in cache; at three digits they took 32 ×
// 148 KB, recording a delivery was mostly a cache miss, and it cost about
// a tenth of the generator's CPU in a paced run (its profile).
type recorder struct {
	shards [8]struct {
		mu sync.Mutex
		h  *hdrhistogram.Histogram
		_  [48]byte // keep shards on separate cache lines
	}
}

const (
	maxLatencyMicros = 120 * 1000 * 1000
	latencyDigits    = 2
)

func newRecorder() *recorder {
	r := &recorder{}
	for i := range r.shards {
		r.shards[i].h = hdrhistogram.New(1, maxLatencyMicros, latencyDigits)
	}
	return r
}

func (r *recorder) record(shard int, d time.Duration) {
	us := d.Microseconds()
	if us < 1 {
		us = 1
	}
	if us > maxLatencyMicros {
		us = maxLatencyMicros
	}
	s := &r.shards[shard%len(r.shards)]
	s.mu.Lock()
	_ = s.h.RecordValue(us)
	s.mu.Unlock()
}

func (r *recorder) summary() Latency {
	all := hdrhistogram.New(1, maxLatencyMicros, latencyDigits)
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.Lock()
		all.Merge(s.h)
		s.mu.Unlock()
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	l := Latency{
		Count: all.TotalCount(),
		Mean:  all.Mean() / 1000,
		P50:   ms(all.ValueAtQuantile(50)),
		P90:   ms(all.ValueAtQuantile(90)),
		P99:   ms(all.ValueAtQuantile(99)),
		P999:  ms(all.ValueAtQuantile(99.9)),
		Max:   ms(all.Max()),
	}
	if l.Count > 0 {
		for _, q := range curveQuantiles {
			l.Curve = append(l.Curve, Point{Percentile: q, Ms: ms(all.ValueAtQuantile(q))})
		}
	}
	return l
}
