// Package metrics holds the Prometheus collectors of the auth service on
// a registry of its own, so that tests and several instances in one
// process never collide on the global default registry.
package metrics

import (
	"context"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grpcchatter/grpcchatter/internal/httpserve"
)

// Metrics are the service's collectors and the registry they live on.
type Metrics struct {
	// Registry holds every collector below; tests gather from it.
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	hashing  *prometheus.HistogramVec
	dropped  *prometheus.CounterVec
}

// New registers the collectors, plus Go runtime and process metrics, on a
// new registry.
func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "auth", Name: "http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "auth", Name: "http_request_duration_seconds",
			Help:    "HTTP request latency by route template and method.",
			Buckets: []float64{.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		hashing: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: "auth", Name: "password_hash_duration_seconds",
			Help:    "Time spent in argon2id, by operation (hash or verify), excluding queueing.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "auth", Name: "log_lines_dropped_total",
			Help: "Log lines about requests that the log sampler dropped, by level.",
		}, []string{"level"}),
	}
	m.Registry.MustRegister(m.requests, m.latency, m.hashing, m.dropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// ObserveRequest records one finished HTTP request. route must be a
// route template (or a fixed placeholder), never a raw path, to keep the
// number of series bounded.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveHash records one argon2id run; it fits password.WithObserver.
func (m *Metrics) ObserveHash(op string, d time.Duration) {
	m.hashing.WithLabelValues(op).Observe(d.Seconds())
}

// DroppedLogLine counts one log line at level that the sampler dropped.
func (m *Metrics) DroppedLogLine(level string) {
	m.dropped.WithLabelValues(level).Inc()
}

// Handler serves the registry in the Prometheus exposition format; Serve
// mounts it.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// Serve serves the registry at /metrics on lis, a listener of its own off
// the public API port (METRICS_ADDRESS), until ctx ends; then it shuts
// down, giving a scrape in progress a few seconds, and returns nil.
func (m *Metrics) Serve(ctx context.Context, lis net.Listener) error {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	return httpserve.Serve(ctx, httpserve.NewServer(mux), lis, 5*time.Second)
}
