// Package authload measures the auth service's /register and /login
// against the ceiling that password hashing sets: with one argon2id hash
// per request and one hash per core at a time, no server can answer more
// requests per second than a process doing nothing but hashing, one hash
// per core at a time, completes hashes.
package authload

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcchatter/grpcchatter/internal/token"
)

// Params are the argon2id parameters the auth service was started with.
type Params struct {
	MemoryKiB uint32 `json:"memory_kib"`
	Time      uint32 `json:"time"`
	Threads   uint8  `json:"threads"`
}

// HashTiming is what cmd/hashtime measured.
type HashTiming struct {
	Concurrency int   `json:"concurrency"`
	MedianNs    int64 `json:"median_ns"`
	MinNs       int64 `json:"min_ns"`
	CPUNsPerOp  int64 `json:"cpu_ns_per_hash"`
	// PerSec is hashes completed per second of wall time, Concurrency at
	// a time.
	PerSec float64 `json:"per_s"`
}

// HashTime runs the hashtime binary: conc goroutines hashing n times each
// with p, all at once. gcPercent, if positive, is the GOGC it runs with,
// so that it can match the service's.
func HashTime(ctx context.Context, bin string, p Params, n, conc, gcPercent int) (HashTiming, error) {
	cmd := exec.CommandContext(ctx, bin, "-memory", strconv.Itoa(int(p.MemoryKiB)), "-time", strconv.Itoa(int(p.Time)),
		"-threads", strconv.Itoa(int(p.Threads)), "-n", strconv.Itoa(n), "-conc", strconv.Itoa(conc))
	if gcPercent > 0 {
		cmd.Env = append(os.Environ(), "GOGC="+strconv.Itoa(gcPercent))
	}
	out, err := cmd.Output()
	if err != nil {
		return HashTiming{}, fmt.Errorf("hashtime: %w", err)
	}
	var h HashTiming
	if err := json.Unmarshal(out, &h); err != nil {
		return HashTiming{}, fmt.Errorf("hashtime: %w", err)
	}
	return h, nil
}

// Step is one measurement at one concurrency.
type Step struct {
	Op          string  `json:"op"`
	Concurrency int     `json:"concurrency"`
	Requests    int     `json:"requests"`
	Errors      int     `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	PerSec      float64 `json:"per_s"`
	P50Ms       float64 `json:"p50_ms"`
	P99Ms       float64 `json:"p99_ms"`
	// OfCeiling is PerSec as a fraction of the hash-bound ceiling.
	OfCeiling float64 `json:"of_ceiling"`
	// OfSequentialCeiling is PerSec as a fraction of cores ÷ the time of
	// one hash with the machine to itself.
	OfSequentialCeiling float64 `json:"of_sequential_ceiling"`
}

// Client talks to one auth service.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a Client for the service at base (http://host:port).
func NewClient(base string) *Client {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	return &Client{base: base, http: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// Close releases idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// Do posts {"user_name","password"} to path and returns the status code.
func (c *Client) Do(ctx context.Context, path, name, password string) (int, error) {
	body, _ := json.Marshal(map[string]string{"user_name": name, "password": password})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// GCPercent reads the service's GOGC from its /metrics, served on its
// METRICS_ADDRESS, at metricsBase (http://host:port).
func (c *Client) GCPercent(ctx context.Context, metricsBase string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, metricsBase+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gogc_percent "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("go_gc_gogc_percent: %w", err)
			}
			return int(f), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no go_gc_gogc_percent in %s/metrics", metricsBase)
}

// Password is the password of every account the generator registers.
const Password = "bench-password-1"

// Run sends requests from conc workers for d (and at least 2×conc
// requests). name(i) gives the user name of request i; want is the
// expected status code.
func (c *Client) Run(ctx context.Context, op, path string, conc int, d time.Duration, name func(i int64) string, password string, want int) Step {
	st := Step{Op: op, Concurrency: conc}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	minReq := int64(2 * conc)
	for range conc {
		wg.Add(1)
		// Owned by Run; ends at the deadline.
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for {
				i := next.Add(1) - 1
				if time.Now().After(deadline) && i >= minReq {
					break
				}
				t0 := time.Now()
				code, err := c.Do(ctx, path, name(i), password)
				el := time.Since(t0)
				if err == nil && code != want {
					err = fmt.Errorf("%s %s: status %d, want %d", op, name(i), code, want)
				}
				if err != nil {
					mu.Lock()
					st.Errors++
					if st.FirstError == "" {
						st.FirstError = err.Error()
					}
					mu.Unlock()
					if ctx.Err() != nil {
						break
					}
					continue
				}
				mine = append(mine, el)
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start)
	st.Requests = len(lat)
	st.PerSec = float64(len(lat)) / el.Seconds()
	st.P50Ms, st.P99Ms = quantileMs(lat, 0.5), quantileMs(lat, 0.99)
	return st
}

// MedianPair times n pairs of sequential requests, alternating a and b so
// that a neighbour's burst of work slows both alike, and returns each
// side's median.
func (c *Client) MedianPair(ctx context.Context, path string, n int, a, b func(i int) (name, password string)) (time.Duration, time.Duration, error) {
	var da, db []time.Duration
	for i := range n {
		for _, side := range []struct {
			f   func(int) (string, string)
			out *[]time.Duration
		}{{a, &da}, {b, &db}} {
			name, pw := side.f(i)
			t0 := time.Now()
			if _, err := c.Do(ctx, path, name, pw); err != nil {
				return 0, 0, err
			}
			*side.out = append(*side.out, time.Since(t0))
		}
	}
	med := func(ds []time.Duration) time.Duration {
		sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
		return ds[len(ds)/2]
	}
	return med(da), med(db), nil
}

func quantileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	i := int(q * float64(len(ds)-1))
	return float64(ds[i]) / float64(time.Millisecond)
}

// VerifyNsPerOp measures token.Signer.VerifyUser and VerifyRoom.
func VerifyNsPerOp(secret string) (user, room float64, err error) {
	s, err := token.NewSigner(secret, "")
	if err != nil {
		return 0, 0, err
	}
	ut, _, err := s.IssueUser("id-bench", "bench", time.Hour)
	if err != nil {
		return 0, 0, err
	}
	rt, _, err := s.IssueRoom("id-bench", "bench", "ROOM01", time.Hour)
	if err != nil {
		return 0, 0, err
	}
	bu := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if _, err := s.VerifyUser(ut); err != nil {
				b.Fatal(err)
			}
		}
	})
	br := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			if _, err := s.VerifyRoom(rt); err != nil {
				b.Fatal(err)
			}
		}
	})
	return float64(bu.NsPerOp()), float64(br.NsPerOp()), nil
}
