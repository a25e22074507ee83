// Package report holds the figures of a benchmark run and renders them:
// JSON for machines, a table for the terminal, docs/BENCHMARKS.md for
// people, and PNG plots made with gonum/plot.
package report

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/grpcchatter/grpcchatter/bench/internal/authload"
	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
)

// Report is everything one run measured.
type Report struct {
	Machine  Machine   `json:"machine"`
	Command  string    `json:"command"`
	Started  time.Time `json:"started"`
	Seconds  float64   `json:"seconds"`
	Settings Settings  `json:"settings"`

	// Burst has one pair per room size.
	Burst []Pair `json:"burst"`
	// Paced is the size-100 fan-out at a fixed rate.
	Paced *Pair `json:"paced,omitempty"`
	// PacedExtra are further paced runs of the chat service at other
	// fractions of its burst rate, for the shape of latency against load.
	PacedExtra []*chatload.FanoutResult `json:"paced_extra,omitempty"`
	// Stalled repeats the chat service's paced run with a stalled member.
	Stalled         *chatload.FanoutResult `json:"stalled,omitempty"`
	StalledP99Ratio float64                `json:"stalled_p99_ratio,omitempty"`
	// StalledLow repeats the lightest paced run with a stalled member;
	// StalledLowReference is that paced run without it.
	StalledLow          *chatload.FanoutResult `json:"stalled_low,omitempty"`
	StalledLowReference *chatload.FanoutResult `json:"-"`
	StalledLowP99Ratio  float64                `json:"stalled_low_p99_ratio,omitempty"`

	// Cluster is the cross-instance section: the shared mode on NATS.
	Cluster *Cluster `json:"cluster,omitempty"`
	// WebSocket is the fan-out over WebSocket against gRPC.
	WebSocket *WebSocket `json:"websocket,omitempty"`

	// JoinStorm is one room that every member opens at once.
	JoinStorm *JoinStorm `json:"join_storm,omitempty"`

	Idle   *chatload.IdleResult `json:"idle,omitempty"`
	Auth   *Auth                `json:"auth,omitempty"`
	Growth []Growth             `json:"growth,omitempty"`

	// BackgroundCores* are the cores busy with other work (not this
	// run) in the two seconds before and after it.
	BackgroundCoresBefore float64 `json:"background_cores_before"`
	BackgroundCoresAfter  float64 `json:"background_cores_after"`

	Targets  []Target  `json:"targets"`
	Profiles []Profile `json:"profiles,omitempty"`
	Notes    []string  `json:"notes,omitempty"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	GoVersion string `json:"go_version"`
	OS        string `json:"os"`
	Kernel    string `json:"kernel"`
	MemoryGiB int    `json:"memory_gib"`
}

// Settings are the sizes the run used.
type Settings struct {
	Streams        int     `json:"streams_per_fanout_run"`
	DurationS      float64 `json:"duration_s"`
	Window         int     `json:"window"`
	BodyBytes      int     `json:"body_bytes"`
	StreamsPerConn int     `json:"streams_per_conn"`
	PacedRate      float64 `json:"paced_rate_msgs_per_s"`
	PacedFraction  float64 `json:"paced_fraction"` // of the burst rate at size 100
	IdleRoomSize   int     `json:"idle_room_size"`
	QueueSize      string  `json:"chat_queue_size"`
}

// Pair is one fan-out configuration measured on both servers.
type Pair struct {
	Size     int                    `json:"size"`
	Chat     *chatload.FanoutResult `json:"chat"`
	Baseline *chatload.FanoutResult `json:"baseline,omitempty"`
	// Ratios are chat ÷ baseline: above 1 is better for deliveries,
	// below 1 is better for latency.
	Ratios *Ratios `json:"ratios,omitempty"`
}

// Ratios compare the chat service with the baseline.
type Ratios struct {
	Deliveries float64 `json:"deliveries_per_s"`
	PerCPU     float64 `json:"deliveries_per_server_cpu_s"`
	P50        float64 `json:"p50"`
	P90        float64 `json:"p90"`
	P99        float64 `json:"p99"`
	P999       float64 `json:"p99_9"`
}

// NewPair fills in the ratios when both sides are present.
func NewPair(size int, chat, base *chatload.FanoutResult) Pair {
	p := Pair{Size: size, Chat: chat, Baseline: base}
	if chat != nil && base != nil {
		p.Ratios = &Ratios{
			Deliveries: div(chat.DeliveriesPerSec, base.DeliveriesPerSec),
			PerCPU:     div(chat.DeliveriesPerCPUSec, base.DeliveriesPerCPUSec),
			P50:        div(chat.Latency.P50, base.Latency.P50),
			P90:        div(chat.Latency.P90, base.Latency.P90),
			P99:        div(chat.Latency.P99, base.Latency.P99),
			P999:       div(chat.Latency.P999, base.Latency.P999),
		}
	}
	return p
}

func div(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// Auth is the auth service's part of the run.
type Auth struct {
	Params authload.Params `json:"argon2"`
	Cores  int             `json:"cores"`
	// GCPercent is the GOGC the service ran with, and hashtime with it.
	GCPercent int `json:"gc_percent"`
	// CeilingPerSec, the hash-bound ceiling, is how many hashes per
	// second a fresh process doing nothing else completes with one
	// hashing goroutine per core: the median of HashBatches batches,
	// taken before and between the load measurements, which are averages
	// over the same window. HashTogetherMs is the median time of a hash
	// in that batch; FastestCeilingPerSec is the fastest batch's rate.
	CeilingPerSec        float64 `json:"ceiling_per_s"`
	FastestCeilingPerSec float64 `json:"fastest_ceiling_per_s"`
	HashTogetherMs       float64 `json:"hash_together_ms"`
	HashBatches          int     `json:"hash_batches"`
	// HashMs is the wall time of one hash alone: the median hash of the
	// median of HashBatches sequential batches, each in a fresh process.
	// SequentialCeilingPerSec is cores ÷ HashMs, shown for comparison:
	// hashes running together may each take longer than one alone, since
	// they share memory bandwidth and caches, and the runtime's work for
	// their memory gets no idle core.
	HashMs                  float64         `json:"hash_ms"`
	SequentialCeilingPerSec float64         `json:"sequential_ceiling_per_s"`
	Register                []authload.Step `json:"register"`
	Login                   []authload.Step `json:"login"`
	// UnknownUserMs and WrongPasswordMs are median login times; their
	// ratio should be near 1 so that timing does not reveal accounts.
	UnknownUserMs   float64 `json:"unknown_user_ms"`
	WrongPasswordMs float64 `json:"wrong_password_ms"`
	UnknownVsWrong  float64 `json:"unknown_vs_wrong"`
	VerifyUserNs    float64 `json:"verify_user_ns_per_op"`
	VerifyRoomNs    float64 `json:"verify_room_ns_per_op"`
}

// Growth is the cost of a delivery at one room size.
type Growth struct {
	Size             int     `json:"size"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	// PerCPU is deliveries per second of the chat process's CPU time.
	PerCPU float64 `json:"deliveries_per_server_cpu_s"`
	// PerCore is deliveries per second per core of the machine (wall).
	PerCore float64 `json:"deliveries_per_s_per_core"`
	// Change is PerCPU relative to the smallest size (0 = same).
	Change float64 `json:"change_vs_smallest"`
}

// Target is one goal of the issue and whether the run met it.
type Target struct {
	Name     string `json:"name"`
	Goal     string `json:"goal"`
	Measured string `json:"measured"`
	// Status is "met", "NOT met" or "not measured".
	Status string `json:"status"`
}

// Met and the other statuses of a Target.
const (
	Met         = "met"
	NotMet      = "NOT met"
	NotMeasured = "not measured"
)

// Profile is the top of one CPU profile.
type Profile struct {
	Name   string `json:"name"`
	Source string `json:"source"`
	// Top are pprof -top lines.
	Top []string `json:"top"`
}

// WriteJSON writes r to path, creating its directory.
func (r *Report) WriteJSON(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// ChatRuns lists every fan-out run of the chat service in the report,
// each once: burst, paced, the further paced loads, the stalled-member
// runs, the cross-instance runs and the WebSocket section's.
func (r *Report) ChatRuns() []*chatload.FanoutResult {
	var out []*chatload.FanoutResult
	for _, p := range r.Burst {
		out = append(out, p.Chat)
	}
	if r.Paced != nil {
		out = append(out, r.Paced.Chat)
	}
	out = append(out, r.PacedExtra...)
	out = append(out, r.Stalled, r.StalledLow)
	if r.Cluster != nil {
		out = append(out, r.Cluster.Runs()...)
	}
	if r.WebSocket != nil {
		out = append(out, r.WebSocket.Results()...)
	}
	seen := map[*chatload.FanoutResult]bool{nil: true}
	return slices.DeleteFunc(out, func(f *chatload.FanoutResult) bool {
		dup := seen[f]
		seen[f] = true
		return dup
	})
}

// JoinStorm is the join-storm section: Members open a stream in one room
// at once on a fresh chat process, built from Rev (After) and, when
// BaseRev is set, from BaseRev too (Before), in the same run.
type JoinStorm struct {
	Members int                       `json:"members"`
	Rev     string                    `json:"rev"`
	BaseRev string                    `json:"base_rev,omitempty"`
	Before  *chatload.JoinStormResult `json:"before,omitempty"`
	After   *chatload.JoinStormResult `json:"after"`
	// Profiles are the chat process's CPU profiles of each storm.
	Profiles []Profile `json:"profiles,omitempty"`
}
