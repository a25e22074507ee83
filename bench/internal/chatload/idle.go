package chatload

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// IdleConfig sizes the idle-connections run.
type IdleConfig struct {
	Streams  int // each on its own connection
	RoomSize int
	// Parallel is how many connections are being set up at once.
	Parallel int
	// Settle is the pause before the memory is read, so that start-up
	// garbage has been collected by the service's own GC.
	Settle time.Duration
	// Memory reads the target's resident memory and, when ok, its Go heap
	// in use. It is called before the first and after the last stream.
	Memory func() (rss int64, heap float64, heapOK bool)
}

// IdleResult is what the idle-connections run measured.
type IdleResult struct {
	Streams        int     `json:"streams"`
	RoomSize       int     `json:"room_size"`
	Opened         int     `json:"opened"`
	Failed         int     `json:"failed"`
	FirstError     string  `json:"first_error,omitempty"`
	ConnectSeconds float64 `json:"connect_s"`
	// DroppedWhileIdle counts streams that ended during the hold.
	DroppedWhileIdle int     `json:"dropped_while_idle"`
	RSSBefore        int64   `json:"rss_before_bytes"`
	RSSAfter         int64   `json:"rss_after_bytes"`
	RSSPerStream     float64 `json:"rss_per_stream_bytes"`
	HeapBefore       float64 `json:"heap_inuse_before_bytes,omitempty"`
	HeapAfter        float64 `json:"heap_inuse_after_bytes,omitempty"`
	HeapPerStream    float64 `json:"heap_inuse_per_stream_bytes,omitempty"`
}

// Idle opens cfg.Streams Chat streams, each on its own connection, keeps
// them open and reads what the target's memory grew by.
func Idle(ctx context.Context, t Target, cfg IdleConfig) (IdleResult, error) {
	res := IdleResult{Streams: cfg.Streams, RoomSize: cfg.RoomSize}
	if cfg.Parallel < 1 {
		cfg.Parallel = 64
	}
	setup, err := dial(t.Addr)
	if err != nil {
		return res, err
	}
	defer setup.Close()
	nrooms := (cfg.Streams + cfg.RoomSize - 1) / cfg.RoomSize
	rooms, err := setupRooms(ctx, t, setup, fmt.Sprintf("i%d", time.Now().UnixNano()%1e6), nrooms, cfg.RoomSize)
	if err != nil {
		return res, err
	}
	setup.Close()
	time.Sleep(cfg.Settle)
	rss0, heap0, heapOK := cfg.Memory()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	conns := make([]*grpc.ClientConn, cfg.Streams)
	defer func() {
		for _, cc := range conns {
			if cc != nil {
				cc.Close()
			}
		}
	}()
	var (
		mu      sync.Mutex
		wg      sync.WaitGroup // stream readers
		opened  atomic.Int64
		dropped atomic.Int64
		holding atomic.Bool
	)
	holding.Store(true)
	sem := make(chan struct{}, cfg.Parallel)
	var owg sync.WaitGroup
	start := time.Now()
	for i := range cfg.Streams {
		m := rooms[i/cfg.RoomSize].members[i%cfg.RoomSize]
		sem <- struct{}{}
		owg.Add(1)
		// Owned by Idle; ends once the stream is open (or failed).
		go func() {
			defer func() { <-sem; owg.Done() }()
			// Small transport buffers: the generator holds every client
			// side of the test and should not crowd the service out of
			// memory. The service's own buffers are what is measured.
			cc, err := dial(t.Addr, grpc.WithReadBufferSize(4<<10), grpc.WithWriteBufferSize(4<<10))
			if err == nil {
				mu.Lock()
				conns[i] = cc
				mu.Unlock()
				stream, _, oerr := open(runCtx, cc, m.token)
				err = oerr
				if err == nil {
					opened.Add(1)
					wg.Add(1)
					// Owned by Idle; reads presence events until the
					// stream ends when runCtx is cancelled.
					go func() {
						defer wg.Done()
						for {
							if _, err := stream.Recv(); err != nil {
								if holding.Load() && status.Code(err) != codes.Canceled {
									dropped.Add(1)
								}
								return
							}
						}
					}()
				}
			}
			if err != nil {
				mu.Lock()
				res.Failed++
				if res.FirstError == "" {
					res.FirstError = err.Error()
				}
				mu.Unlock()
			}
		}()
	}
	owg.Wait()
	res.ConnectSeconds = time.Since(start).Seconds()
	res.Opened = int(opened.Load())
	time.Sleep(cfg.Settle)
	rss1, heap1, heap1OK := cfg.Memory()
	holding.Store(false)
	res.DroppedWhileIdle = int(dropped.Load())
	res.RSSBefore, res.RSSAfter = rss0, rss1
	if res.Opened > 0 {
		res.RSSPerStream = float64(rss1-rss0) / float64(res.Opened)
		if heapOK && heap1OK {
			res.HeapBefore, res.HeapAfter = heap0, heap1
			res.HeapPerStream = (heap1 - heap0) / float64(res.Opened)
		}
	}
	cancel()
	for _, cc := range conns {
		if cc != nil {
			cc.Close()
		}
	}
	wg.Wait()
	return res, nil
}
