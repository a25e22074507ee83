// Package metrics holds the chat service's Prometheus collectors on a
// registry of its own, so that tests and several servers in one process
// never collide on a global registry.
package metrics

import (
	"context"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grpcchatter/grpcchatter/internal/httpserve"
)

// Metrics are the service's collectors.
type Metrics struct {
	Registry *prometheus.Registry

	// OpenStreams is the number of open Chat streams.
	OpenStreams prometheus.Gauge
	// MessagesIn counts messages accepted from clients.
	MessagesIn prometheus.Counter
	// MessagesOut counts events written to streams.
	MessagesOut prometheus.Counter
	// SlowConsumers counts streams ended for falling behind.
	SlowConsumers prometheus.Counter
	// FanoutSeconds is the time to sequence a message and queue it for
	// the log, which then hands it to every stream of its room.
	FanoutSeconds prometheus.Histogram
	// RPCs counts finished calls by method and status code; RPCSeconds
	// times them by method (a Chat stream's whole life).
	RPCs       *prometheus.CounterVec
	RPCSeconds *prometheus.HistogramVec
	// Panics counts panics recovered in handlers and stream goroutines.
	Panics prometheus.Counter
	// StreamResets counts the RST_STREAM frames on gRPC connections, by
	// who sent them ("client": a cancelled call or stream; "server": a
	// stream that ended before its client had finished sending);
	// ResetFloods the connections sent GOAWAY and closed for resetting
	// streams faster than the guard allows.
	StreamResets *prometheus.CounterVec
	ResetFloods  prometheus.Counter
	// SendsPaced counts client frames whose reading waited for the
	// sender's rate (MAX_SEND_RATE, MAX_USER_SEND_RATE).
	SendsPaced prometheus.Counter
	// StreamsReplaced counts streams ended because a newer stream of the
	// same user in the same room took their place (MAX_STREAMS_PER_USER).
	StreamsReplaced prometheus.Counter
}

// New registers the collectors; rooms reports the current number of rooms.
func New(rooms func() int) *Metrics {
	m := &Metrics{
		Registry:      prometheus.NewRegistry(),
		OpenStreams:   prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "chat", Name: "open_streams", Help: "Open Chat streams."}),
		MessagesIn:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "messages_in_total", Help: "Messages accepted from clients."}),
		MessagesOut:   prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "events_out_total", Help: "Events written to streams."}),
		SlowConsumers: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "slow_consumer_disconnects_total", Help: "Streams ended for falling behind."}),
		FanoutSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: "chat", Name: "fanout_seconds", Help: "Time to sequence a message and enqueue it for every stream of its room.",
			Buckets: prometheus.ExponentialBuckets(1e-6, 4, 10),
		}),
		RPCs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "chat", Name: "rpcs_total", Help: "Finished gRPC calls by method and status code."},
			[]string{"method", "code"}),
		RPCSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "chat", Name: "rpc_duration_seconds", Help: "Duration of gRPC calls by method; a Chat stream's whole life.",
			Buckets: prometheus.ExponentialBuckets(1e-4, 4, 12),
		}, []string{"method"}),
		Panics: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "panics_total", Help: "Panics recovered in handlers and stream goroutines."}),
		StreamResets: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "chat", Name: "grpc_stream_resets_total",
			Help: "RST_STREAM frames on gRPC connections, by the side that sent them."}, []string{"by"}),
		ResetFloods: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "grpc_reset_floods_total",
			Help: "gRPC connections sent GOAWAY (ENHANCE_YOUR_CALM) and closed for resetting streams too fast."}),
		SendsPaced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "sends_paced_total",
			Help: "Client frames read only after waiting for the sender's rate limit."}),
		StreamsReplaced: prometheus.NewCounter(prometheus.CounterOpts{Namespace: "chat", Name: "streams_replaced_total",
			Help: "Streams ended because a newer stream of the same user in the same room replaced them."}),
	}
	m.Registry.MustRegister(m.OpenStreams, m.MessagesIn, m.MessagesOut, m.SlowConsumers, m.FanoutSeconds, m.RPCs, m.RPCSeconds, m.Panics,
		m.StreamResets, m.ResetFloods,
		m.SendsPaced, m.StreamsReplaced,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "chat", Name: "rooms", Help: "Rooms in the registry."},
			func() float64 { return float64(rooms()) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// Serve serves /metrics on lis until ctx ends, and with withPprof the
// runtime profiles under /debug/pprof/ too; then it shuts down, giving a
// request in progress a few seconds (a longer profile is cut), and
// returns nil. The caller owns the goroutine running it; it returns after
// the HTTP server has shut down.
func (m *Metrics) Serve(ctx context.Context, lis net.Listener, withPprof bool) error {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{}))
	if withPprof {
		// Registered on this mux only: importing net/http/pprof also
		// registers on http.DefaultServeMux, which nothing here serves.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return httpserve.Serve(ctx, httpserve.NewServer(mux), lis, 5*time.Second)
}
