package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/bench/internal/appends"
	"github.com/grpcchatter/grpcchatter/bench/internal/chatload"
	"github.com/grpcchatter/grpcchatter/bench/internal/proc"
	"github.com/grpcchatter/grpcchatter/bench/internal/report"
)

// clusterInstances is how many chat instances share rooms in the spread
// and hot-room runs.
const clusterInstances = 3

// cluster measures the shared mode against the default mode's burst run
// reference, of the paced size: one nats-server, then one chat instance
// on it with every member, then three with the members spread over them
// and a hot room with a sender on each. The instances of both share one
// data directory, so one SQLite rooms registry. When -cluster-paced is
// set, each setup is measured again at that light load, the default mode
// too unless a paced run of the chat service already ran at that rate.
func (b *bench) cluster(ctx context.Context, rep *report.Report, reference *chatload.FanoutResult) (*report.Cluster, error) {
	start := time.Now()
	bin, version, err := proc.NATSServerBinary(ctx, b.root, b.cfg.NATSServerBin, filepath.Join(b.tmp, "bin"))
	if err != nil {
		return nil, fmt.Errorf("cross-instance section (-skip cluster leaves it out): %w", err)
	}
	store, err := b.dataDir("nats")
	if err != nil {
		return nil, err
	}
	b.logf("cross-instance: nats-server %s, one node, JetStream stored in %s", version, store)
	nats, err := proc.StartNATS(ctx, bin, store)
	if err != nil {
		return nil, err
	}
	defer nats.Stop()
	shared, err := b.dataDir("shared")
	if err != nil {
		return nil, err
	}

	c := &report.Cluster{NATSServer: version, Reference: reference}
	size := pacedSize(b.cfg.Sizes)
	burst := b.fanoutConfig(size, chatload.Burst, 0)
	var paced chatload.FanoutConfig
	if reference != nil && b.cfg.ClusterPaced > 0 {
		paced = b.fanoutConfig(size, chatload.Paced, b.cfg.ClusterPaced*reference.MessagesPerSec)
	}
	both := func(s *service, counter *appends.Counter, burstRun, pacedRun **chatload.FanoutResult, burstAppends, pacedAppends **appends.Count) error {
		var err error
		if *burstRun, *burstAppends, err = b.countedFanout(ctx, s, burst, counter); err != nil || paced.Rate <= 0 {
			return err
		}
		*pacedRun, *pacedAppends, err = b.countedFanout(ctx, s, paced, counter)
		return err
	}

	err = b.withShared(ctx, nats, shared, 1, func(s *service, counter *appends.Counter) error {
		return both(s, counter, &c.Single, &c.PacedSingle, &c.SingleAppends, &c.PacedSingleAppends)
	})
	if err != nil {
		return nil, err
	}
	err = b.withShared(ctx, nats, shared, clusterInstances, func(s *service, counter *appends.Counter) error {
		if err := both(s, counter, &c.Spread, &c.PacedSpread, &c.SpreadAppends, &c.PacedSpreadAppends); err != nil {
			return err
		}
		var err error
		c.HotRoom, c.HotRoomAppends, err = b.hotRoom(ctx, s, nats.URL)
		return err
	})
	if err != nil {
		return nil, err
	}
	if paced.Rate > 0 {
		if c.PacedReference, err = b.pacedReference(ctx, rep, paced); err != nil {
			return nil, err
		}
	}
	c.Seconds = time.Since(start).Seconds()
	b.logf("cross-instance section: %.0f s", c.Seconds)
	return c, nil
}

// hotRoom runs one room of -hot-room members spread over the instances,
// with a sender on each, and counts the room's appends to the history
// stream, published and stored, during the run it keeps.
func (b *bench) hotRoom(ctx context.Context, s *service, natsURL string) (*chatload.FanoutResult, *appends.Count, error) {
	counter, err := appends.Start(ctx, natsURL)
	if err != nil {
		return nil, nil, err
	}
	defer counter.Close()
	if err := counter.WatchPublishes(ctx); err != nil {
		return nil, nil, err
	}
	fc := b.fanoutConfig(b.cfg.HotRoom, chatload.Burst, 0)
	fc.Rooms, fc.Senders = 1, len(s.target.Addrs)
	res, n, err := b.countedFanout(ctx, s, fc, counter)
	if err == nil {
		b.logf("  appends: %d published, %d stored, %d refused", n.Published, n.Stored, n.Refused())
	}
	return res, n, err
}

// countedFanout is fanout that also counts the appends to the history
// stream during the run it keeps.
func (b *bench) countedFanout(ctx context.Context, s *service, fc chatload.FanoutConfig, counter *appends.Counter) (*chatload.FanoutResult, *appends.Count, error) {
	var counts []appends.Count
	var countErr error
	fc.OnStart = func() { countErr = errors.Join(countErr, counter.Mark(ctx)) }
	fc.OnEnd = func() {
		n, err := counter.Take(ctx)
		countErr = errors.Join(countErr, err)
		counts = append(counts, n)
	}
	res, kept, err := b.fanoutKept(ctx, s, fc)
	if err != nil {
		return nil, nil, err
	}
	if countErr != nil || kept >= len(counts) {
		return nil, nil, fmt.Errorf("counting appends: %w", countErr)
	}
	return res, &counts[kept], nil
}

// pacedReference is the default mode's paced run at fc's rate: a paced
// run of the chat service at that rate from earlier in this run, else one
// measured now on a fresh process.
func (b *bench) pacedReference(ctx context.Context, rep *report.Report, fc chatload.FanoutConfig) (*chatload.FanoutResult, error) {
	runs := slices.Clone(rep.PacedExtra)
	if rep.Paced != nil {
		runs = append(runs, rep.Paced.Chat)
	}
	for _, f := range runs {
		if f != nil && f.Rate == fc.Rate && f.Members == fc.Members && f.Rooms == fc.Rooms {
			return f, nil
		}
	}
	chat, err := b.startChat(ctx)
	if err != nil {
		return nil, err
	}
	defer chat.p.Stop()
	if err := b.warmUp(ctx, chat); err != nil {
		return nil, fmt.Errorf("warm-up: %w\n%s", err, chat.logs())
	}
	return b.fanout(ctx, chat, fc)
}

// withShared starts n chat instances in shared mode on nats, sharing the
// data directory dir, runs measure on them as one target, with a counter
// of their appends, and stops them.
func (b *bench) withShared(ctx context.Context, nats *proc.NATSServer, dir string, n int, measure func(*service, *appends.Counter) error) error {
	b.logf("cross-instance: %d chat instance(s) in shared mode", n)
	b.started++
	var instances []*proc.Process
	defer func() { stopAll(instances) }()
	var addrs []string
	for i := range n {
		// Instance IDs are unique per start, as a restarted instance's
		// would be: an instance's feed skips what its own ID appended.
		id := fmt.Sprintf("bench-%d-%d", b.started, i+1)
		p, ca, err := b.startChatProcess(ctx, "chat "+id, b.chatBin, dir,
			"NATS_URL="+nats.URL, "NATS_REPLICAS=1", "INSTANCE_ID="+id)
		if err != nil {
			return err
		}
		instances = append(instances, p)
		addrs = append(addrs, ca.grpc)
	}
	watched := append(append([]*proc.Process{}, instances...), nats.Process)
	s := &service{p: instances[0], more: watched[1:], target: chatload.Target{
		Name: "chat shared×" + strconv.Itoa(n), Addrs: addrs, Signer: b.signer,
		CPU:       func() (time.Duration, error) { return sumCPU(watched) },
		BrokerCPU: nats.CPU,
	}}
	if err := b.warmUp(ctx, s); err != nil {
		return fmt.Errorf("warm-up: %w\n%s", err, s.logs())
	}
	counter, err := appends.Start(ctx, nats.URL)
	if err != nil {
		return err
	}
	defer counter.Close()
	return measure(s, counter)
}

// sumCPU is the CPU time of all ps together.
func sumCPU(ps []*proc.Process) (time.Duration, error) {
	var sum time.Duration
	for _, p := range ps {
		d, err := p.CPU()
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// stopAll stops ps at once, so their shutdowns overlap.
func stopAll(ps []*proc.Process) {
	var wg sync.WaitGroup
	for _, p := range ps {
		wg.Add(1)
		// Owned by stopAll; ends when the process has exited.
		go func() {
			defer wg.Done()
			p.Stop()
		}()
	}
	wg.Wait()
}
