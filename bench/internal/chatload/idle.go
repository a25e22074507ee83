package chatload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/pkg/client"
)

// IdleConfig sizes the idle-connections run.
type IdleConfig struct {
	Streams  int // each on its own connection
	RoomSize int
	// Parallel is how many connections are being set up at once.
	Parallel int
	// Settle is the pause before each memory reading.
	Settle time.Duration
	// Hold is how long the streams are kept open after the last memory
	// reading, each watched by its reader: one that ends is a reset. The
	// target's CPU is read at the start and end of the hold (Target.CPU),
	// for what keeping idle connections alive costs the service. A
	// ConnectionsOnly run has no streams to watch and does not hold.
	Hold time.Duration
	// ConnectionsOnly opens the connections without streams: each makes
	// one health check and then stays open, idle. On a fresh process this
	// measures what the gRPC transport costs per connection before any
	// stream, the floor under the per-stream figure.
	ConnectionsOnly bool
	// Memory reads the target's resident memory and, when the target
	// exposes them, its Go runtime gauges by metric name
	// (go_memstats_heap_inuse_bytes, go_memstats_stack_inuse_bytes,
	// go_goroutines).
	Memory func() (rss int64, gauges map[string]float64)
}

// IdleResult is what the idle-connections run measured.
//
// Memory is read three times: before any stream, after the first tenth
// and after all of them. The per-stream figures are the larger of the
// average over all streams and the marginal cost of the last nine tenths;
// the second is immune to one-off costs (room creation, first
// connections, garbage not yet collected when the first reading is taken).
type IdleResult struct {
	// ConnectionsOnly marks a run without streams (see IdleConfig); its
	// "streams" are then bare connections.
	ConnectionsOnly bool    `json:"connections_only,omitempty"`
	Streams         int     `json:"streams"`
	RoomSize        int     `json:"room_size"`
	Opened          int     `json:"opened"`
	Failed          int     `json:"failed"`
	FirstError      string  `json:"first_error,omitempty"`
	ConnectSeconds  float64 `json:"connect_s"`
	// DroppedWhileIdle counts streams that ended before the hold, while
	// the others were opened and memory was read.
	DroppedWhileIdle int `json:"dropped_while_idle"`
	// Held is how many streams were open when the hold began; 0 when there
	// was no hold (see IdleConfig.Hold).
	Held        int     `json:"held,omitempty"`
	HoldSeconds float64 `json:"hold_s,omitempty"`
	// ResetDuringHold counts held streams that ended during the hold;
	// ResetError is the first one's error.
	ResetDuringHold int    `json:"reset_during_hold"`
	ResetError      string `json:"reset_first_error,omitempty"`
	// HoldCPUSeconds is the target's CPU time over the hold, and the two
	// after it the same per minute of hold, overall and per 1,000 held
	// streams. All three are 0 when the target's CPU could not be read.
	HoldCPUSeconds        float64 `json:"hold_cpu_s,omitempty"`
	HoldCPUPerMinute      float64 `json:"hold_cpu_s_per_min,omitempty"`
	HoldCPUPerMinutePer1k float64 `json:"hold_cpu_s_per_min_per_1000_streams,omitempty"`
	// KeepaliveTime and KeepaliveTimeout are the client connections'
	// keepalive settings (client.KeepaliveParams), in seconds.
	KeepaliveTime    float64    `json:"client_keepalive_s"`
	KeepaliveTimeout float64    `json:"client_keepalive_timeout_s"`
	RSS              [3]int64   `json:"rss_bytes"`
	Heap             [3]float64 `json:"heap_inuse_bytes,omitempty"`
	Stack            [3]float64 `json:"stack_inuse_bytes,omitempty"`
	Goroutines       [3]float64 `json:"goroutines,omitempty"`
	HeapExposed      bool       `json:"heap_exposed"`
	RSSPerStream     float64    `json:"rss_per_stream_bytes"`
	HeapPerStream    float64    `json:"heap_inuse_per_stream_bytes,omitempty"`
	// StackPerStream and GoroutinesPerStream attribute the memory: what
	// the service's goroutines per stream cost in stacks.
	StackPerStream      float64 `json:"stack_inuse_per_stream_bytes,omitempty"`
	GoroutinesPerStream float64 `json:"goroutines_per_stream,omitempty"`
	// Floor is the same run with bare connections on a fresh process (see
	// IdleConfig.ConnectionsOnly): the part of each per-stream figure that
	// the gRPC transport costs before the service does anything.
	Floor *IdleResult `json:"floor,omitempty"`
}

// Idle opens cfg.Streams Chat streams, each on its own connection, reads
// what the target's memory grew by, then holds them for cfg.Hold and
// counts those that were reset.
func Idle(ctx context.Context, t Target, cfg IdleConfig) (IdleResult, error) {
	ka := client.KeepaliveParams()
	res := IdleResult{Streams: cfg.Streams, RoomSize: cfg.RoomSize, ConnectionsOnly: cfg.ConnectionsOnly,
		KeepaliveTime: ka.Time.Seconds(), KeepaliveTimeout: ka.Timeout.Seconds()}
	if cfg.Parallel < 1 {
		cfg.Parallel = 64
	}
	var rooms []room
	if !cfg.ConnectionsOnly {
		setup, err := dial(t.Addr)
		if err != nil {
			return res, err
		}
		nrooms := (cfg.Streams + cfg.RoomSize - 1) / cfg.RoomSize
		rooms, err = setupRooms(ctx, t, setup, fmt.Sprintf("i%d", time.Now().UnixNano()%1e6), nrooms, cfg.RoomSize)
		setup.Close()
		if err != nil {
			return res, err
		}
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	o := &opener{t: t, cfg: cfg, rooms: rooms, conns: make([]*grpc.ClientConn, cfg.Streams)}
	o.phase.Store(phaseOpening)
	defer func() {
		cancel()
		o.closeAll()
		o.readers.Wait()
	}()

	var heapOK [3]bool
	read := func(i int) {
		time.Sleep(cfg.Settle)
		var g map[string]float64
		res.RSS[i], g = cfg.Memory()
		res.Heap[i], heapOK[i] = g["go_memstats_heap_inuse_bytes"]
		res.Stack[i] = g["go_memstats_stack_inuse_bytes"]
		res.Goroutines[i] = g["go_goroutines"]
	}
	read(0)
	tenth := max(1, cfg.Streams/10)
	start := time.Now()
	o.open(runCtx, 0, tenth)
	elapsed := time.Since(start)
	read(1)
	start = time.Now()
	o.open(runCtx, tenth, cfg.Streams)
	elapsed += time.Since(start)
	read(2)
	if cfg.Hold > 0 && !cfg.ConnectionsOnly {
		o.hold(ctx, cfg.Hold, &res)
	}
	o.phase.Store(phaseDone)

	res.ConnectSeconds = elapsed.Seconds()
	res.Opened = int(o.opened.Load())
	res.Failed = int(o.failed.Load())
	res.DroppedWhileIdle = int(o.dropped.Load())
	o.mu.Lock()
	res.FirstError, res.ResetError = o.firstErr, o.resetErr
	o.mu.Unlock()
	res.HeapExposed = heapOK[0] && heapOK[1] && heapOK[2]
	if res.Opened == cfg.Streams && cfg.Streams > tenth {
		all := float64(cfg.Streams)
		rest := float64(cfg.Streams - tenth)
		res.RSSPerStream = max(float64(res.RSS[2]-res.RSS[0])/all, float64(res.RSS[2]-res.RSS[1])/rest)
		if res.HeapExposed {
			res.HeapPerStream = max((res.Heap[2]-res.Heap[0])/all, (res.Heap[2]-res.Heap[1])/rest)
			res.StackPerStream = (res.Stack[2] - res.Stack[0]) / all
			res.GoroutinesPerStream = (res.Goroutines[2] - res.Goroutines[0]) / all
		}
	}
	return res, nil
}

// hold keeps the open streams for d, or until every one has ended, and
// records in res how many ended and what the target's CPU did meanwhile.
func (o *opener) hold(ctx context.Context, d time.Duration, res *IdleResult) {
	// Streams that end from here on count as resets.
	o.phase.Store(phaseHolding)
	cpu0, cpuErr := o.cpu()
	start := time.Now()
	gone := make(chan struct{})
	// Owned by hold; ends when every reader has, at the latest once Idle
	// closes the connections. No stream is opened after this point.
	go func() {
		o.readers.Wait()
		close(gone)
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-gone:
	case <-ctx.Done():
	}
	res.HoldSeconds = time.Since(start).Seconds()
	// dropped stopped counting when the hold began.
	res.Held = int(o.opened.Load() - o.dropped.Load())
	res.ResetDuringHold = int(o.reset.Load())
	cpu1, err := o.cpu()
	if cpuErr != nil || err != nil || res.HoldSeconds <= 0 {
		return
	}
	res.HoldCPUSeconds = (cpu1 - cpu0).Seconds()
	res.HoldCPUPerMinute = res.HoldCPUSeconds * 60 / res.HoldSeconds
	if res.Held > 0 {
		res.HoldCPUPerMinutePer1k = res.HoldCPUPerMinute * 1000 / float64(res.Held)
	}
}

func (o *opener) cpu() (time.Duration, error) {
	if o.t.CPU == nil {
		return 0, errors.New("the target's CPU is not known")
	}
	return o.t.CPU()
}

// Phases of an idle run, which decide what a stream that ends counts as.
const (
	phaseOpening = iota // dropped while idle
	phaseHolding        // reset during the hold
	phaseDone           // closed by Idle
)

// opener opens idle streams, each on a new connection, and keeps a reader
// on each so that presence events never back up and an ended stream is
// noticed at once.
type opener struct {
	t     Target
	cfg   IdleConfig
	rooms []room

	mu       sync.Mutex
	conns    []*grpc.ClientConn
	firstErr string
	resetErr string // the first stream's to end during the hold

	readers                        sync.WaitGroup
	opened, failed, dropped, reset atomic.Int64
	phase                          atomic.Int32
}

// open opens streams [from, to), cfg.Parallel at a time.
func (o *opener) open(ctx context.Context, from, to int) {
	sem := make(chan struct{}, o.cfg.Parallel)
	var wg sync.WaitGroup
	for i := from; i < to; i++ {
		var tok string
		if !o.cfg.ConnectionsOnly {
			tok = o.rooms[i/o.cfg.RoomSize].members[i%o.cfg.RoomSize].token
		}
		sem <- struct{}{}
		wg.Add(1)
		// Owned by open; ends once the stream is open (or failed).
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := o.openOne(ctx, i, tok); err != nil {
				o.failed.Add(1)
				o.mu.Lock()
				if o.firstErr == "" {
					o.firstErr = err.Error()
				}
				o.mu.Unlock()
			}
		}()
	}
	wg.Wait()
}

func (o *opener) openOne(ctx context.Context, i int, tok string) error {
	// Small transport buffers: the generator holds the client side of every
	// connection and should not crowd the service out of memory. The
	// service's own buffers are what is measured. Keepalive as the SDK
	// dials; grpc-go's own dialer leaves Go's TCP keepalive off, as the
	// chat service's listener does (see its ListenGRPC).
	cc, err := dial(o.t.Addr, grpc.WithReadBufferSize(4<<10), grpc.WithWriteBufferSize(4<<10),
		grpc.WithKeepaliveParams(client.KeepaliveParams()))
	if err != nil {
		return err
	}
	o.mu.Lock()
	o.conns[i] = cc
	o.mu.Unlock()
	if o.cfg.ConnectionsOnly {
		// One call sets up the transport (settings, window updates); the
		// connection then stays open with no stream on it.
		if _, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			return fmt.Errorf("health check: %w", err)
		}
		o.opened.Add(1)
		return nil
	}
	stream, err := open(ctx, cc, tok)
	if err != nil {
		return err
	}
	o.opened.Add(1)
	o.readers.Add(1)
	// Owned by the opener; reads presence events until the stream ends,
	// at the latest when Idle cancels ctx and closes the connections.
	go func() {
		defer o.readers.Done()
		for {
			if _, err := stream.recv(); err != nil {
				o.ended(err)
				return
			}
		}
	}()
	return nil
}

// ended counts a stream that ended with err by the phase it ended in.
func (o *opener) ended(err error) {
	if status.Code(err) == codes.Canceled { // Idle's context, not the service
		return
	}
	switch o.phase.Load() {
	case phaseOpening:
		o.dropped.Add(1)
	case phaseHolding:
		o.reset.Add(1)
		o.mu.Lock()
		if o.resetErr == "" {
			o.resetErr = err.Error()
		}
		o.mu.Unlock()
	}
}

func (o *opener) closeAll() {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, cc := range o.conns {
		if cc != nil {
			cc.Close()
		}
	}
}
