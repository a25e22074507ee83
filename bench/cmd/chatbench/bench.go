package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/proc"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
	"github.com/grpcchatter/grpcchatter/internal/token"
)

// bench holds what the phases of a run share: the built binaries, the
// secret the services are started with, and a scratch directory.
type bench struct {
	cfg     config
	log     io.Writer
	root    string
	tmp     string
	secret  string
	signer  *token.Signer
	chatBin string
	authBin string
	baseBin string
	hashBin string
	started int
	// stormBaseBin is the chat service built at -storm-base, or "".
	stormBaseBin string
}

func newBench(ctx context.Context, cfg config, log io.Writer) (*bench, error) {
	root := cfg.Root
	if root == "" {
		var err error
		if root, err = proc.FindRoot("."); err != nil {
			return nil, err
		}
	}
	tmp, err := os.MkdirTemp("", "chatbench-")
	if err != nil {
		return nil, err
	}
	b := &bench{cfg: cfg, log: log, root: root, tmp: tmp}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	b.secret = hex.EncodeToString(raw)
	if b.signer, err = token.NewSigner(b.secret, ""); err != nil {
		b.close()
		return nil, err
	}
	src := root
	if cfg.Rev != "" {
		src = filepath.Join(tmp, "src")
		b.logf("exporting %s to %s", cfg.Rev, src)
		if err := proc.Export(ctx, root, cfg.Rev, src); err != nil {
			b.close()
			return nil, err
		}
	}
	b.logf("building the services and the baseline into %s", tmp)
	bins, err := proc.Build(ctx, src, filepath.Join(tmp, "bin"),
		"./services/chat/cmd/chat", "./services/auth/cmd/auth", "./bench/cmd/baseline", "./bench/cmd/hashtime")
	if err != nil {
		b.close()
		return nil, err
	}
	b.chatBin, b.authBin, b.baseBin, b.hashBin = bins[0], bins[1], bins[2], bins[3]
	if cfg.StormBase != "" && !cfg.Skip["storm"] {
		base := filepath.Join(tmp, "storm-base-src")
		b.logf("exporting %s to %s for the join storm's before", cfg.StormBase, base)
		if err := proc.Export(ctx, root, cfg.StormBase, base); err != nil {
			b.close()
			return nil, err
		}
		bins, err := proc.Build(ctx, base, filepath.Join(tmp, "storm-base-bin"), "./services/chat/cmd/chat")
		if err != nil {
			b.close()
			return nil, err
		}
		b.stormBaseBin = bins[0]
	}
	return b, nil
}

func (b *bench) close() { _ = os.RemoveAll(b.tmp) }

func (b *bench) logf(format string, args ...any) {
	fmt.Fprintf(b.log, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// service is a started chat or baseline process and its target.
type service struct {
	p *proc.Process
	// more are the target's further processes, when it has several: the
	// other chat instances and the NATS server they share.
	more       []*proc.Process
	target     chatload.Target
	metricsURL string
}

// failed reports whether a process of the service has exited.
func (s *service) failed() bool {
	for _, p := range append([]*proc.Process{s.p}, s.more...) {
		if p.Exited() {
			return true
		}
	}
	return false
}

// logs is the tail of every process's output.
func (s *service) logs() string {
	if len(s.more) == 0 {
		return s.p.Log()
	}
	var b strings.Builder
	for _, p := range append([]*proc.Process{s.p}, s.more...) {
		fmt.Fprintf(&b, "--- %s (pid %d) ---\n%s\n", p.Name, p.PID(), p.Log())
	}
	return b.String()
}

func (b *bench) dataDir(name string) (string, error) {
	b.started++
	dir := filepath.Join(b.tmp, fmt.Sprintf("%s-%d", name, b.started))
	return dir, os.MkdirAll(dir, 0o755)
}

func (b *bench) startChat(ctx context.Context) (*service, error) {
	dir, err := b.dataDir("chat")
	if err != nil {
		return nil, err
	}
	p, addrs, err := b.startChatProcess(ctx, "chat", b.chatBin, dir)
	if err != nil {
		return nil, err
	}
	return &service{p: p, metricsURL: addrs.metricsURL, target: chatload.Target{
		Name: "chat", Addr: addrs.grpc, WebAddr: addrs.web, Signer: b.signer, CPU: p.CPU,
	}}, nil
}

// chatAddrs are where a started chat process listens.
type chatAddrs struct {
	grpc       string // host:port
	web        string // host:port of the web listener (WebSocket, HTTP/JSON)
	metricsURL string
}

// startChatProcess starts a chat process on free ports with the data
// directory dir and env added to the run's settings, and returns it with
// its addresses.
func (b *bench) startChatProcess(ctx context.Context, name, bin, dir string, env ...string) (*proc.Process, chatAddrs, error) {
	var ports [3]int
	for i := 0; i < len(ports); {
		p, err := proc.FreePort()
		if err != nil {
			return nil, chatAddrs{}, err
		}
		// Each was free a moment ago, but the kernel may hand one out twice.
		if !slices.Contains(ports[:i], p) {
			ports[i] = p
			i++
		}
	}
	port, wport, mport := ports[0], ports[1], ports[2]
	addrs := chatAddrs{
		grpc:       "127.0.0.1:" + strconv.Itoa(port),
		web:        "127.0.0.1:" + strconv.Itoa(wport),
		metricsURL: "http://127.0.0.1:" + strconv.Itoa(mport),
	}
	env = append([]string{
		"SECRET=" + b.secret,
		"GRPC_SERVER_ADDRESS=127.0.0.1",
		"GRPC_SERVER_PORT=" + strconv.Itoa(port),
		// A port of its own for the web listener: its default (8081) would
		// clash between instances and with anything else on the machine.
		"WEB_SERVER_ADDRESS=127.0.0.1",
		"WEB_SERVER_PORT=" + strconv.Itoa(wport),
		"DATA_DIR=" + dir,
		"METRICS_ADDRESS=127.0.0.1:" + strconv.Itoa(mport),
		// Warnings only: the engine is measured, not the request log.
		"LOG_LEVEL=warn",
		// /debug/pprof on the metrics listener, for the profiled runs.
		"PPROF_ENABLED=true",
		// Senders unpaced (the highest rates allowed): the fan-out's
		// capacity is measured, not MAX_SEND_RATE. Older binaries ignore
		// these keys.
		"MAX_SEND_RATE=1000000", "MAX_USER_SEND_RATE=1000000",
	}, env...)
	if b.cfg.QueueSize > 0 {
		env = append(env, "MAX_MESSAGE_QUEUE_SIZE="+strconv.Itoa(b.cfg.QueueSize))
	}
	p, err := proc.Start(ctx, name, bin, env, addrs.grpc)
	if err != nil {
		return nil, chatAddrs{}, err
	}
	return p, addrs, nil
}

func (b *bench) startBaseline(ctx context.Context) (*service, error) {
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	p, err := proc.Start(ctx, "baseline", b.baseBin, []string{"GRPC_SERVER_ADDRESS=127.0.0.1", "GRPC_SERVER_PORT=" + strconv.Itoa(port)}, addr)
	if err != nil {
		return nil, err
	}
	return &service{p: p, target: chatload.Target{
		Name: "baseline", Addr: addr, Signer: b.signer, CPU: p.CPU,
	}}, nil
}

func (b *bench) fanoutConfig(size int, mode chatload.Mode, rate float64) chatload.FanoutConfig {
	return chatload.FanoutConfig{
		Rooms:          max(1, b.cfg.Streams/size),
		Members:        size,
		Mode:           mode,
		Duration:       b.cfg.Duration,
		Window:         b.cfg.Window,
		Rate:           rate,
		BodyBytes:      b.cfg.BodyBytes,
		StreamsPerConn: b.cfg.StreamsPerConn,
	}
}

// fanout runs one fan-out and checks that its process survived it.
func (b *bench) fanout(ctx context.Context, s *service, fc chatload.FanoutConfig) (*chatload.FanoutResult, error) {
	best, _, err := b.fanoutKept(ctx, s, fc)
	return best, err
}

// fanoutKept is fanout that also says which attempt it kept (0 is the
// first): a run made again on a noisy machine keeps its least noisy one.
func (b *bench) fanoutKept(ctx context.Context, s *service, fc chatload.FanoutConfig) (*chatload.FanoutResult, int, error) {
	label := fmt.Sprintf("%s %s%s: %d rooms × %d members", s.target.Name, fc.Mode, transportLabel(fc), fc.Rooms, fc.Members)
	if fc.Senders > 1 {
		label += fmt.Sprintf(", %d senders each", fc.Senders)
	}
	if fc.Stalled {
		label += " + 1 stalled"
	}
	var best *chatload.FanoutResult
	kept := 0
	for attempt := 0; attempt <= b.cfg.Retries; attempt++ {
		b.waitQuiet(ctx)
		b.logf("fan-out %s", label)
		res, err := chatload.Fanout(ctx, s.target, fc)
		if err != nil {
			return nil, 0, fmt.Errorf("fan-out %s: %w\n%s", label, err, s.logs())
		}
		if s.failed() {
			return nil, 0, fmt.Errorf("%s exited during fan-out %s\n%s", s.target.Name, label, s.logs())
		}
		c := res.Cores
		b.logf("  %.0f deliveries/s, p50 %.2f ms, p99 %.2f ms, lost %d, undelivered %d, out of order %d, slow-consumer drops %d, errors %d, cores busy: server %.2f (broker %.2f) generator %.2f other %.2f %s",
			res.DeliveriesPerSec, res.Latency.P50, res.Latency.P99, res.Lost, res.Undelivered, res.OrderMismatches, res.SlowConsumerDisconnects, res.StreamErrors,
			c(res.ServerCPUSeconds), c(res.BrokerCPUSeconds), c(res.GeneratorCPUSeconds), c(res.OtherCPUSeconds), res.FirstError)
		if best == nil || c(res.OtherCPUSeconds) < best.Cores(best.OtherCPUSeconds) {
			best, kept = &res, attempt
		}
		if c(res.OtherCPUSeconds) <= b.cfg.NoisyCores {
			break
		}
		if attempt < b.cfg.Retries {
			b.logf("  other work took %.2f cores during the run; measuring again", c(res.OtherCPUSeconds))
		}
	}
	return best, kept, nil
}

// warmUp sends for a second so the first measured run does not pay for
// the process's first allocations and goroutine stacks.
func (b *bench) warmUp(ctx context.Context, s *service) error {
	fc := b.fanoutConfig(10, chatload.Burst, 0)
	fc.Rooms, fc.Duration = max(1, min(10, b.cfg.Streams/10)), time.Second
	_, err := chatload.Fanout(ctx, s.target, fc)
	return err
}

// runAll runs every phase and returns the filled report.
func (b *bench) runAll(ctx context.Context) (*report.Report, error) {
	rep := &report.Report{Machine: machine(), Command: b.cfg.Command, Started: time.Now().UTC()}
	rep.BackgroundCoresBefore = backgroundCores(2 * time.Second)
	b.logf("background load before the run: %.2f of %d cores busy", rep.BackgroundCoresBefore, rep.Machine.Cores)
	rep.Settings = report.Settings{
		Streams: b.cfg.Streams, DurationS: b.cfg.Duration.Seconds(), Window: b.cfg.Window,
		BodyBytes: b.cfg.BodyBytes, StreamsPerConn: b.cfg.StreamsPerConn, QueueSize: "service default",
		PacedFraction: b.cfg.PacedFraction,
	}
	if b.cfg.QueueSize > 0 {
		rep.Settings.QueueSize = strconv.Itoa(b.cfg.QueueSize)
	}

	chatBurst, chatPaced := map[int]*chatload.FanoutResult{}, (*chatload.FanoutResult)(nil)
	if !b.cfg.Skip["fanout"] {
		var err error
		if chatBurst, chatPaced, err = b.chatFanout(ctx, rep); err != nil {
			return nil, err
		}
	}
	var err error
	var baseBurst map[int]*chatload.FanoutResult
	var basePaced *chatload.FanoutResult
	if !b.cfg.Skip["baseline"] {
		if baseBurst, basePaced, err = b.baselineFanout(ctx, rep.Settings.PacedRate); err != nil {
			return nil, err
		}
	}
	for _, size := range b.cfg.Sizes {
		if chatBurst[size] != nil {
			rep.Burst = append(rep.Burst, report.NewPair(size, chatBurst[size], baseBurst[size]))
		}
	}
	if chatPaced != nil {
		p := report.NewPair(pacedSize(b.cfg.Sizes), chatPaced, basePaced)
		rep.Paced = &p
	}
	if rep.Stalled != nil && chatPaced != nil && chatPaced.Latency.P99 > 0 {
		rep.StalledP99Ratio = rep.Stalled.Latency.P99 / chatPaced.Latency.P99
	}
	rep.Growth = growth(b.cfg.Sizes, chatBurst, rep.Machine.Cores)

	if !b.cfg.Skip["ws"] {
		if rep.WebSocket, err = b.webSocket(ctx, rep); err != nil {
			return nil, err
		}
	}

	if !b.cfg.Skip["cluster"] {
		if rep.Cluster, err = b.cluster(ctx, rep, chatBurst[pacedSize(b.cfg.Sizes)]); err != nil {
			return nil, err
		}
	}

	if !b.cfg.Skip["storm"] {
		if rep.JoinStorm, err = b.joinStorm(ctx); err != nil {
			return nil, err
		}
	}

	if !b.cfg.Skip["idle"] {
		if rep.Idle, err = b.idle(ctx); err != nil {
			return nil, err
		}
	}
	if !b.cfg.Skip["auth"] {
		if rep.Auth, err = b.auth(ctx); err != nil {
			return nil, err
		}
	}
	rep.BackgroundCoresAfter = backgroundCores(2 * time.Second)
	rep.Targets = targets(rep)
	rep.Notes = notes(b.cfg)
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep, nil
}

// pacedSize is the room size of the paced and stalled runs: 100 when
// measured, else the middle size.
func pacedSize(sizes []int) int {
	for _, s := range sizes {
		if s == 100 {
			return 100
		}
	}
	return sizes[len(sizes)/2]
}

func (b *bench) chatFanout(ctx context.Context, rep *report.Report) (map[int]*chatload.FanoutResult, *chatload.FanoutResult, error) {
	chat, err := b.startChat(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer chat.p.Stop()
	if err := b.warmUp(ctx, chat); err != nil {
		return nil, nil, fmt.Errorf("warm-up: %w\n%s", err, chat.p.Log())
	}
	burst := map[int]*chatload.FanoutResult{}
	for _, size := range b.cfg.Sizes {
		if burst[size], err = b.fanout(ctx, chat, b.fanoutConfig(size, chatload.Burst, 0)); err != nil {
			return nil, nil, err
		}
	}
	ps := pacedSize(b.cfg.Sizes)
	rate := b.cfg.PacedFraction * burst[ps].MessagesPerSec
	if rate <= 0 {
		return burst, nil, nil
	}
	rep.Settings.PacedRate = rate
	paced, err := b.fanout(ctx, chat, b.fanoutConfig(ps, chatload.Paced, rate))
	if err != nil {
		return nil, nil, err
	}
	for _, frac := range b.cfg.ExtraPaced {
		r := frac * burst[ps].MessagesPerSec
		extra, err := b.fanout(ctx, chat, b.fanoutConfig(ps, chatload.Paced, r))
		if err != nil {
			return nil, nil, err
		}
		rep.PacedExtra = append(rep.PacedExtra, extra)
	}
	if !b.cfg.Skip["stalled"] {
		fc := b.fanoutConfig(ps, chatload.Paced, rate)
		fc.Stalled = true
		if rep.Stalled, err = b.fanout(ctx, chat, fc); err != nil {
			return nil, nil, err
		}
		// Again at the lightest paced load, where the machine is not
		// saturated and p99 is not dominated by CPU queueing, so that the
		// stalled member's own effect shows.
		if n := len(rep.PacedExtra); n > 0 {
			low := rep.PacedExtra[0]
			for _, f := range rep.PacedExtra {
				if f.Rate < low.Rate {
					low = f
				}
			}
			fc := b.fanoutConfig(ps, chatload.Paced, low.Rate)
			fc.Stalled = true
			if rep.StalledLow, err = b.fanout(ctx, chat, fc); err != nil {
				return nil, nil, err
			}
			if low.Latency.P99 > 0 {
				rep.StalledLowP99Ratio = rep.StalledLow.Latency.P99 / low.Latency.P99
			}
			rep.StalledLowReference = low
		}
	}
	if b.cfg.ProfileSeconds > 0 {
		fcs := []chatload.FanoutConfig{b.fanoutConfig(ps, chatload.Burst, 0), b.fanoutConfig(ps, chatload.Paced, rate)}
		if len(b.cfg.ExtraPaced) > 0 {
			// The lightest load too: what a delivery costs when nothing
			// else is queued.
			low := slices.Min(b.cfg.ExtraPaced) * burst[ps].MessagesPerSec
			fcs = append(fcs, b.fanoutConfig(ps, chatload.Paced, low))
		}
		for i, fc := range fcs {
			prof, err := b.profile(ctx, chat, fc, i == 0)
			if err != nil {
				return nil, nil, err
			}
			rep.Profiles = append(rep.Profiles, prof...)
		}
	}
	return burst, paced, nil
}

func (b *bench) baselineFanout(ctx context.Context, rate float64) (map[int]*chatload.FanoutResult, *chatload.FanoutResult, error) {
	base, err := b.startBaseline(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer base.p.Stop()
	if err := b.warmUp(ctx, base); err != nil {
		return nil, nil, fmt.Errorf("baseline warm-up: %w\n%s", err, base.p.Log())
	}
	burst := map[int]*chatload.FanoutResult{}
	for _, size := range b.cfg.Sizes {
		if burst[size], err = b.fanout(ctx, base, b.fanoutConfig(size, chatload.Burst, 0)); err != nil {
			return nil, nil, err
		}
	}
	if rate <= 0 {
		return burst, nil, nil
	}
	paced, err := b.fanout(ctx, base, b.fanoutConfig(pacedSize(b.cfg.Sizes), chatload.Paced, rate))
	return burst, paced, err
}

// profile repeats the burst run at size while taking CPU profiles: of the
// chat process through /debug/pprof when it serves one on its metrics
// address, and always of the generator itself.
func (b *bench) profile(ctx context.Context, chat *service, fc chatload.FanoutConfig, generator bool) ([]report.Profile, error) {
	fc.Duration = time.Duration(b.cfg.ProfileSeconds) * time.Second
	what := fmt.Sprintf("%s fan-out%s, %d rooms × %d members", fc.Mode, transportLabel(fc), fc.Rooms, fc.Members)
	if fc.Mode == chatload.Paced {
		what += fmt.Sprintf(" at %.0f msg/s", fc.Rate)
	}
	kind := string(fc.Mode)
	switch {
	case fc.Transport == chatload.WebSocket:
		kind += "-websocket"
	case fc.StreamsPerConn == 1:
		kind += "-conn-per-member"
	}
	dir := b.tmp
	if b.cfg.ProfileDir != "" {
		if err := os.MkdirAll(b.cfg.ProfileDir, 0o755); err != nil {
			return nil, err
		}
		dir = b.cfg.ProfileDir
	}
	genPath := filepath.Join(dir, fmt.Sprintf("generator-%s-%.0f.pprof", kind, fc.Rate))
	f, err := os.Create(genPath)
	if err != nil {
		return nil, err
	}
	serverPath := filepath.Join(dir, fmt.Sprintf("chat-%s-%.0f.pprof", kind, fc.Rate))
	serverErr := make(chan error, 1)
	started := make(chan struct{})
	var startOnce sync.Once
	fc.OnStart = func() {
		startOnce.Do(func() {
			close(started)
			if err := pprof.StartCPUProfile(f); err != nil {
				b.logf("generator profile: %v", err)
			}
		})
	}
	// Owned by profile; ends when the profile has been fetched (the
	// service stops it after the requested seconds) or sending never began.
	go func() {
		select {
		case <-started:
		case <-ctx.Done():
			serverErr <- ctx.Err()
			return
		}
		url := fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", chat.metricsURL, b.cfg.ProfileSeconds)
		serverErr <- proc.Fetch(ctx, url, serverPath)
	}()
	_, ferr := b.fanout(ctx, chat, fc)
	fc.OnStart() // in case the run failed before sending
	pprof.StopCPUProfile()
	f.Close()
	sErr := <-serverErr
	if ferr != nil {
		return nil, ferr
	}
	var out []report.Profile
	if sErr == nil {
		sErr = func() error {
			top, err := proc.TopFunctions(ctx, b.chatBin, serverPath, 20)
			if err == nil {
				out = append(out, report.Profile{Name: "chat service, " + what, Source: "/debug/pprof/profile on METRICS_ADDRESS", Top: top})
			}
			return err
		}()
	}
	if sErr != nil {
		out = append(out, report.Profile{Name: "chat service, " + what, Source: "not available: " + firstLine(sErr.Error())})
	}
	if !generator {
		return out, nil
	}
	top, err := proc.TopFunctions(ctx, "", genPath, 20)
	if err != nil {
		return nil, err
	}
	out = append(out, report.Profile{Name: "generator (client side), " + what + " on the chat service", Source: "runtime/pprof in chatbench", Top: top})
	return out, nil
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func (b *bench) idle(ctx context.Context) (*chatload.IdleResult, error) {
	// The floor first, each on a fresh process, so that neither run
	// inherits the other's heap.
	b.logf("idle: %d bare connections (one health check each, no stream), for the transport's own cost", b.cfg.IdleStreams)
	floor, err := b.idleRun(ctx, true)
	if err != nil {
		return nil, err
	}
	b.logf("idle: %d streams, one connection each, rooms of %d, held for %s", b.cfg.IdleStreams, b.cfg.IdleRoomSize, b.cfg.IdleHold)
	res, err := b.idleRun(ctx, false)
	if err != nil {
		return nil, err
	}
	res.Floor = floor
	return res, nil
}

func (b *bench) idleRun(ctx context.Context, connectionsOnly bool) (*chatload.IdleResult, error) {
	chat, err := b.startChat(ctx)
	if err != nil {
		return nil, err
	}
	defer chat.p.Stop()
	b.waitQuiet(ctx)
	res, err := chatload.Idle(ctx, chat.target, chatload.IdleConfig{
		Streams: b.cfg.IdleStreams, RoomSize: b.cfg.IdleRoomSize, Parallel: b.cfg.IdleParallel,
		Settle: 2 * time.Second, ConnectionsOnly: connectionsOnly, Hold: b.cfg.IdleHold,
		Memory: func() (int64, map[string]float64) {
			rss, _ := chat.p.RSS()
			return rss, proc.Metrics(ctx, chat.metricsURL+"/metrics",
				"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines")
		},
	})
	if err != nil {
		return nil, fmt.Errorf("idle: %w\n%s", err, chat.p.Log())
	}
	b.logf("  opened %d (failed %d) in %.1f s; %.0f B RSS and %.0f B heap each %s",
		res.Opened, res.Failed, res.ConnectSeconds, res.RSSPerStream, res.HeapPerStream, res.FirstError)
	if res.Held > 0 {
		b.logf("  held %d for %.0f s: %d reset; chat CPU %.3f s per minute, %.4f s per minute per 1,000 streams %s",
			res.Held, res.HoldSeconds, res.ResetDuringHold, res.HoldCPUPerMinute, res.HoldCPUPerMinutePer1k, res.ResetError)
	}
	return &res, nil
}

// machine describes this computer.
func machine() report.Machine {
	m := report.Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		s := bufio.NewScanner(f)
		for s.Scan() {
			if k, v, ok := strings.Cut(s.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.Atoi(f[1])
				m.MemoryGiB = (kb + 512*1024) >> 20
			}
		}
	}
	return m
}

// backgroundCores is how many cores the machine keeps busy over d while
// the generator idles: other work sharing the machine.
func backgroundCores(d time.Duration) float64 {
	busy0, total0, err := proc.MachineCPU()
	if err != nil {
		return 0
	}
	time.Sleep(d)
	busy1, total1, err := proc.MachineCPU()
	if err != nil || total1 <= total0 {
		return 0
	}
	return float64(runtime.NumCPU()) * float64(busy1-busy0) / float64(total1-total0)
}

// waitQuiet waits, up to -quiet-wait, until other work on the machine
// uses fewer than -quiet-cores cores, so that runs do not measure a
// neighbour's build. It returns the last reading.
func (b *bench) waitQuiet(ctx context.Context) float64 {
	if b.cfg.QuietWait <= 0 {
		return 0
	}
	deadline := time.Now().Add(b.cfg.QuietWait)
	for {
		c := backgroundCores(time.Second)
		if c <= b.cfg.QuietCores || time.Now().After(deadline) || ctx.Err() != nil {
			if c > b.cfg.QuietCores {
				b.logf("the machine is still busy (%.2f cores of other work); measuring anyway", c)
			}
			return c
		}
		b.logf("waiting for the machine to quieten: %.2f cores busy with other work", c)
	}
}
