package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
)

// config is every knob of a run. Defaults finish in a few minutes on a
// 2-core machine; every size can be raised by flag.
type config struct {
	Root     string
	Rev      string // build the binaries from this git revision instead of the work tree
	OutDir   string // BENCHMARKS.md and img/ are written here
	JSONPath string
	Command  string // as the report prints it

	Sizes          []int // members per room, one burst run each
	Streams        int   // members per fan-out run, split into rooms of each size
	Duration       time.Duration
	Window         int
	BodyBytes      int
	StreamsPerConn int
	PacedFraction  float64
	ExtraPaced     []float64 // further paced fractions, chat service only
	QuietWait      time.Duration
	QuietCores     float64
	NoisyCores     float64
	Retries        int
	QueueSize      int // MAX_MESSAGE_QUEUE_SIZE for the chat service; 0 keeps its default

	HotRoom       int     // members of the cross-instance hot room
	ClusterPaced  float64 // light paced load of the cross-instance runs, a fraction of the burst rate
	NATSServerBin string  // "" finds or builds one

	StormMembers int    // members of the join storm's room
	StormBase    string // also run the join storm on the chat service built at this revision

	IdleStreams  int
	IdleRoomSize int
	IdleParallel int
	IdleHold     time.Duration // how long the idle streams are held after the memory readings

	AuthDuration time.Duration
	AuthConc     []int
	Argon2Memory uint32
	Argon2Time   uint32

	WSRounds int     // rounds of the WebSocket section, each measuring every transport once
	WSPaced  float64 // the WebSocket section's paced load, a fraction of the slowest transport's burst rate

	ProfileSeconds int
	ProfileDir     string          // keep the raw CPU profiles here ("": discard them)
	Skip           map[string]bool // "fanout", "auth", "idle", "stalled", "baseline", "cluster", "ws", "storm"
}

func parseConfig(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("chatbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var sizes, conc, skip string
	var mem, tim uint
	fs.StringVar(&c.Root, "root", "", "repository root holding go.work (default: found from the working directory)")
	fs.StringVar(&c.Rev, "rev", "", "build the services from this git revision (e.g. HEAD) instead of the work tree")
	fs.StringVar(&c.OutDir, "out", "docs", "directory for BENCHMARKS.md and img/*.png")
	fs.StringVar(&c.JSONPath, "json", "bench/results/latest.json", "path of the JSON report")
	fs.StringVar(&sizes, "sizes", "10,100,1000", "room sizes (members) of the burst fan-out runs")
	fs.IntVar(&c.Streams, "streams", 1000, "members per fan-out run; rooms = streams ÷ size (at least 1)")
	fs.DurationVar(&c.Duration, "duration", 5*time.Second, "sending time of each fan-out run")
	fs.IntVar(&c.Window, "window", 32, "burst mode: in-flight messages per room (keep below the queue size)")
	fs.IntVar(&c.BodyBytes, "body", 64, "message body bytes")
	fs.IntVar(&c.StreamsPerConn, "streams-per-conn", 100, "member streams multiplexed on one client connection")
	fs.Float64Var(&c.PacedFraction, "paced-fraction", 0.5, "paced runs send at this fraction of the chat service's burst rate at size 100")
	var extra string
	fs.StringVar(&extra, "paced-extra", "0.25,0.02", "further paced runs of the chat service at these fractions of its burst rate (comma-separated, may be empty)")
	fs.DurationVar(&c.QuietWait, "quiet-wait", 30*time.Second, "before each run, wait up to this long for other work on the machine to stop")
	fs.Float64Var(&c.QuietCores, "quiet-cores", 0.2, "cores of other work under which the machine counts as quiet")
	fs.Float64Var(&c.NoisyCores, "noisy-cores", 0.5, "a fan-out run during which other work used more cores than this is measured again")
	fs.IntVar(&c.Retries, "retries", 2, "how many times a noisy fan-out run is measured again (the least noisy attempt is kept)")
	fs.IntVar(&c.QueueSize, "queue", 0, "MAX_MESSAGE_QUEUE_SIZE for the chat service (0: its default)")
	fs.IntVar(&c.HotRoom, "hot-room", 300, "cross-instance section: members of the hot room, spread over 3 instances with a sender on each")
	fs.Float64Var(&c.ClusterPaced, "cluster-paced", 0.02, "cross-instance section: also measure latency at this fraction of the chat service's burst rate (0: burst only)")
	fs.StringVar(&c.NATSServerBin, "nats-server", os.Getenv("NATS_SERVER_BIN"), "nats-server ≥ 2.11 for the cross-instance section (default: $NATS_SERVER_BIN, else bin/tools/nats-server, else built from tools/go.mod)")
	fs.IntVar(&c.WSRounds, "ws-rounds", 2, "WebSocket section: rounds, each measuring every transport once in burst and paced mode, in alternating order")
	fs.Float64Var(&c.WSPaced, "ws-paced", 0.03, "WebSocket section: paced runs at this fraction of the slowest transport's burst rate, light so that latency is the path and not CPU queueing (0: burst only)")
	fs.IntVar(&c.StormMembers, "storm", 3000, "join storm: members of the room that all open a stream at once")
	fs.StringVar(&c.StormBase, "storm-base", "", "join storm: also build the chat service at this git revision and run the storm on it first, for a before/after comparison in one run")
	fs.IntVar(&c.IdleStreams, "idle", 10000, "idle Chat streams, one connection each")
	fs.IntVar(&c.IdleRoomSize, "idle-room-size", 100, "members per room in the idle run")
	fs.IntVar(&c.IdleParallel, "idle-parallel", 64, "connections set up at once in the idle run")
	fs.DurationVar(&c.IdleHold, "idle-hold", 3*time.Minute, "hold the idle streams this long after reading memory, counting resets and the chat process's CPU (0: no hold)")
	fs.DurationVar(&c.AuthDuration, "auth-duration", 4*time.Second, "time per auth measurement")
	fs.StringVar(&conc, "auth-conc", "1,2,8,64", "auth concurrencies")
	fs.UintVar(&mem, "argon2-memory", 19*1024, "ARGON2_MEMORY_KIB for the auth service and the ceiling")
	fs.UintVar(&tim, "argon2-time", 2, "ARGON2_TIME for the auth service and the ceiling")
	fs.IntVar(&c.ProfileSeconds, "profile", 5, "seconds of CPU profile taken during the size-100 burst (0: none)")
	fs.StringVar(&c.ProfileDir, "profile-dir", "", "also keep the raw CPU profiles (chat service and generator) in this directory")
	fs.StringVar(&skip, "skip", "", "comma-separated parts to skip: fanout (and with it baseline, stalled, cluster and ws, which compare with it), baseline, stalled, cluster, ws, storm, idle, auth")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var err error
	if c.Sizes, err = ints(sizes); err != nil {
		return c, fmt.Errorf("-sizes: %w", err)
	}
	if c.AuthConc, err = ints(conc); err != nil {
		return c, fmt.Errorf("-auth-conc: %w", err)
	}
	c.Argon2Memory, c.Argon2Time = uint32(mem), uint32(tim)
	for _, f := range strings.Split(extra, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		v, err := strconv.ParseFloat(f, 64)
		if err != nil || v <= 0 {
			return c, fmt.Errorf("-paced-extra: %q is not a positive number", f)
		}
		c.ExtraPaced = append(c.ExtraPaced, v)
	}
	c.Skip = map[string]bool{}
	for _, s := range strings.Split(skip, ",") {
		if s = strings.TrimSpace(s); s != "" {
			c.Skip[s] = true
		}
	}
	if c.Skip["fanout"] {
		for _, s := range []string{"baseline", "stalled", "cluster", "ws"} {
			c.Skip[s] = true
		}
	}
	if c.StormMembers < 2 {
		return c, fmt.Errorf("-storm must be at least 2")
	}
	if c.Window < 1 || c.Streams < 1 || c.Duration <= 0 || c.IdleRoomSize < 1 || c.WSRounds < 1 || c.HotRoom < clusterInstances {
		return c, fmt.Errorf("-window, -streams, -duration, -idle-room-size and -ws-rounds must be positive, -hot-room at least %d", clusterInstances)
	}
	if c.ClusterPaced < 0 || c.WSPaced < 0 || c.IdleHold < 0 {
		return c, fmt.Errorf("-cluster-paced, -ws-paced and -idle-hold must not be negative")
	}
	c.Command = "go run ./bench/cmd/chatbench " + strings.Join(args, " ")
	return c, nil
}

func ints(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, n)
	}
	return out, nil
}
