package chatload

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcchatter/grpcchatter/bench/internal/proc"
	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// Mode is how senders pace their messages.
type Mode string

// The two sending modes.
const (
	// Burst sends as fast as the room's window of in-flight messages
	// allows: a message is in flight until every member has received it.
	Burst Mode = "burst"
	// Paced sends at a fixed total rate spread evenly over the rooms.
	Paced Mode = "paced"
)

// FanoutConfig sizes one fan-out run.
type FanoutConfig struct {
	Rooms   int
	Members int // per room, every one streaming; the first Senders also send
	// Senders is how many members of each room send (at least 1, at most
	// Members). Each has its own window in Burst mode and its share of
	// Rate in Paced mode. On a target of several instances a room's
	// senders stream to different instances, so their appends contend.
	Senders int
	Mode    Mode
	// Transport is how members stream: GRPC (the default) or WebSocket.
	// Rooms are set up through gRPC unary calls either way, so that only
	// the stream's transport differs.
	Transport Transport
	// Duration is how long senders send; delivery then drains.
	Duration time.Duration
	// Window bounds a room's in-flight messages in Burst mode. It must be
	// below the service's per-member queue so that no member is dropped.
	Window int
	// Rate is the total messages per second over all rooms in Paced mode.
	Rate float64
	// BodyBytes is the message body size (at least 16).
	BodyBytes int
	// StreamsPerConn is how many member streams share one client
	// connection, as they would behind a gateway or on a multi-room client.
	// Over WebSocket every member has its own connection.
	StreamsPerConn int
	// Stalled adds to room 0 one extra member, on its own connection, that
	// opens its stream and then never reads. Over gRPC only.
	Stalled bool
	// DrainTimeout bounds the wait for the last deliveries.
	DrainTimeout time.Duration
	// OnStart, when set, is called as sending begins, after rooms and
	// streams are set up: profilers start there so that set-up (room
	// creation hashes the room password) stays out of the profile.
	OnStart func()
	// OnEnd, when set, is called when the last deliveries have arrived
	// (or the drain timed out), after the CPU times are read.
	OnEnd func()
}

// FanoutResult is what one fan-out run measured.
type FanoutResult struct {
	Target    string    `json:"target"`
	Mode      Mode      `json:"mode"`
	Transport Transport `json:"transport"`
	Rooms     int       `json:"rooms"`
	Members   int       `json:"members"`
	Senders   int       `json:"senders_per_room"`
	// Instances is how many instances of the service the members were
	// spread over.
	Instances int     `json:"instances"`
	Conns     int     `json:"connections"`
	Stalled   bool    `json:"stalled_member"`
	Rate      float64 `json:"target_rate_msgs_per_s,omitempty"`
	Window    int     `json:"window,omitempty"`

	Sent      int64 `json:"messages_sent"`
	Delivered int64 `json:"deliveries"`
	// Lost counts messages that members who stayed connected skipped: a
	// gap in the room's sequence of messages. It must be 0.
	Lost int64 `json:"lost"`
	// Undelivered counts deliveries owed to members that stayed connected
	// and had not arrived when the drain timed out: late, maybe lost.
	Undelivered int64 `json:"undelivered"`
	Duplicates  int64 `json:"duplicates"`
	// OrderMismatches counts members who received every message, once,
	// but not in the order that the first such member of their room did.
	// Every member of a room must see one order; with one sender per room
	// this holds as long as nothing is lost.
	OrderMismatches int `json:"order_mismatches"`
	// SlowConsumerDisconnects counts measured members ended with
	// RESOURCE_EXHAUSTED; the stalled member is reported on its own.
	SlowConsumerDisconnects int    `json:"slow_consumer_disconnects"`
	StreamErrors            int    `json:"stream_errors"`
	FirstError              string `json:"first_error,omitempty"`
	WindowStalls            int    `json:"window_stalls"`
	// StalledMemberEnd is the status code that ended the stalled member's
	// stream ("" while it was still open at the end of the run).
	StalledMemberEnd string `json:"stalled_member_end,omitempty"`

	Seconds          float64 `json:"seconds"`
	MessagesPerSec   float64 `json:"messages_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	// ServerCPUSeconds is the target's CPU time during the run: every
	// process of it, the broker's included.
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	// BrokerCPUSeconds is the part of ServerCPUSeconds that the shared
	// message broker used, when the target has one.
	BrokerCPUSeconds float64 `json:"broker_cpu_s,omitempty"`
	// DeliveriesPerCPUSec is deliveries per second of server CPU time.
	DeliveriesPerCPUSec float64 `json:"deliveries_per_server_cpu_s"`
	// GeneratorCPUSeconds is this process's CPU time during the run.
	GeneratorCPUSeconds float64 `json:"generator_cpu_s"`
	// OtherCPUSeconds is the CPU time the rest of the machine used during
	// the run: neither the server nor the generator. Figures taken while
	// it is high are figures of a shared machine.
	OtherCPUSeconds float64 `json:"other_cpu_s"`
	// MachineCPUSeconds is the machine's total CPU capacity over the run
	// (wall time × cores).
	MachineCPUSeconds float64 `json:"machine_cpu_s"`
	// WallSeconds is the wall time over which the CPU figures were taken:
	// from the first send to the end of the drain.
	WallSeconds float64 `json:"wall_s"`

	Latency Latency `json:"latency"`
	// SendSlip, in Paced mode, is how long after its scheduled time each
	// message was sent: the generator's timer and scheduling delay, and
	// any time blocked in the previous send. Latency counts from the actual
	// send, as the service cannot see a message before it is sent, except
	// for the SendsBlocked messages; a generator that falls behind shows
	// here, and in a rate below the target.
	SendSlip *Latency `json:"send_slip,omitempty"`
	// SendsBlocked counts paced messages that came due before the previous
	// send had returned (blocked by flow control when the service is not
	// reading, or slowed by a busy machine); their latency counts from
	// the due time.
	SendsBlocked int64 `json:"sends_blocked,omitempty"`
	// StalledRoomLatency is the latency of the stalled member's room-mates
	// alone (room 0), when there is a stalled member.
	StalledRoomLatency *Latency `json:"stalled_room_latency,omitempty"`
}

type roomState struct {
	members int32
	senders []*senderState
	blocked atomic.Int64 // paced sends that came due while the previous one was blocked
}

// senderState is one sender's messages in a room. Its k-th message has
// client ID k×S+i, for sender i of S, so receivers tell senders apart.
type senderState struct {
	index, of int64
	sent      atomic.Int64
	// window holds one token per message that may be sent; pending[k%W]
	// counts the members that have yet to receive message k.
	window  chan struct{}
	pending []atomic.Int32
}

// complete records one member's receipt of message k. Every member
// receives a sender's messages in order, so they complete in order and
// slot k%W is free again once its count reaches zero.
func (s *senderState) complete(k int64) {
	if s.window == nil {
		return
	}
	if s.pending[k%int64(len(s.pending))].Add(-1) == 0 {
		s.window <- struct{}{}
	}
}

type receiver struct {
	room *roomState
	// also, when set, records this receiver's latencies a second time.
	also   *recorder
	shard  int
	stream memberStream
	next   []atomic.Int64 // next expected message number, per sender
	// order hashes the client IDs in the order received (FNV-1a over
	// IDs); only the receiving goroutine touches it.
	order uint64
	got   atomic.Int64
	lost  atomic.Int64
	dups  atomic.Int64
	last  atomic.Int64 // unix nanos of the latest delivery
	ended atomic.Bool
	code  codes.Code
	err   error
}

// Fanout runs one fan-out measurement against t.
func Fanout(ctx context.Context, t Target, cfg FanoutConfig) (FanoutResult, error) {
	if cfg.BodyBytes < 16 {
		cfg.BodyBytes = 16
	}
	if cfg.StreamsPerConn < 1 {
		cfg.StreamsPerConn = 100
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 15 * time.Second
	}
	if cfg.Senders < 1 {
		cfg.Senders = 1
	}
	if cfg.Senders > cfg.Members {
		return FanoutResult{}, fmt.Errorf("chatload: %d senders in rooms of %d members", cfg.Senders, cfg.Members)
	}
	if cfg.Transport == "" {
		cfg.Transport = GRPC
	}
	addrs := t.instances()
	if cfg.Transport == WebSocket && (t.WebAddr == "" || len(addrs) > 1 || cfg.Stalled) {
		return FanoutResult{}, fmt.Errorf("chatload: WebSocket members need one instance with a web listener (Target.WebAddr) and no stalled member")
	}
	total := cfg.Rooms * cfg.Members
	res := FanoutResult{Target: t.Name, Mode: cfg.Mode, Transport: cfg.Transport, Rooms: cfg.Rooms, Members: cfg.Members, Senders: cfg.Senders,
		Instances: len(addrs), Stalled: cfg.Stalled}
	if cfg.Mode == Paced {
		res.Rate = cfg.Rate
	} else {
		res.Window = cfg.Window
	}

	// Member m of room r streams to instance (r+m) mod n: every room is
	// spread evenly, a room's senders (its first members) sit on
	// different instances, and so do different rooms' first senders.
	place := func(r, m int) int { return (r + m) % len(addrs) }
	perInstance := make([]int, len(addrs))
	for r := range cfg.Rooms {
		for m := range cfg.Members {
			perInstance[place(r, m)]++
		}
	}
	if cfg.Transport == WebSocket {
		// One gRPC connection, for setting up the rooms.
		perInstance[0], cfg.StreamsPerConn = 1, 1
	}
	conns := make([][]*grpc.ClientConn, len(addrs))
	for a, n := range perInstance {
		for range (n + cfg.StreamsPerConn - 1) / cfg.StreamsPerConn {
			cc, err := dial(addrs[a])
			if err != nil {
				return res, err
			}
			defer cc.Close()
			conns[a] = append(conns[a], cc)
			res.Conns++
		}
	}
	rooms, err := setupRooms(ctx, t, conns[0][0], fmt.Sprintf("f%d", time.Now().UnixNano()%1e6), cfg.Rooms, cfg.Members)
	if err != nil {
		return res, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	states := make([]*roomState, len(rooms))
	recvs := make([]*receiver, 0, total)
	ccs := make([]*grpc.ClientConn, 0, total)
	used := make([]int, len(addrs))
	openMember := func(ctx context.Context, i int, tok string) (memberStream, error) { return open(ctx, ccs[i], tok) }
	if cfg.Transport == WebSocket {
		d := newWSDialer(t.WebAddr)
		defer d.close()
		openMember = func(ctx context.Context, _ int, tok string) (memberStream, error) { return openWS(ctx, d, tok) }
		res.Conns = total
	}
	for i := range rooms {
		s := &roomState{members: int32(cfg.Members)}
		for j := range cfg.Senders {
			snd := &senderState{index: int64(j), of: int64(cfg.Senders)}
			if cfg.Mode == Burst {
				snd.window = make(chan struct{}, cfg.Window)
				snd.pending = make([]atomic.Int32, cfg.Window)
				for range cfg.Window {
					snd.window <- struct{}{}
				}
			}
			s.senders = append(s.senders, snd)
		}
		states[i] = s
		for m := range cfg.Members {
			a := place(i, m)
			ccs = append(ccs, conns[a][used[a]%len(conns[a])])
			used[a]++
			recvs = append(recvs, &receiver{room: s, shard: len(recvs), next: make([]atomic.Int64, cfg.Senders)})
		}
	}
	if err := openAll(runCtx, rooms, recvs, openMember); err != nil {
		return res, err
	}

	var stalled *chatStream
	if cfg.Stalled {
		// Its own connection with fixed 64 KiB windows: a stalled phone
		// does not share a socket with healthy members, and a fixed window
		// stops the transport from absorbing the backlog on its behalf.
		cc, err := dial(addrs[0], grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10))
		if err != nil {
			return res, err
		}
		defer cc.Close()
		name := "stalled"
		tok, _, err := t.Signer.IssueRoom("id-"+name, name, rooms[0].code, time.Hour)
		if err != nil {
			return res, err
		}
		if stalled, err = open(runCtx, cc, tok); err != nil {
			return res, fmt.Errorf("open stalled member: %w", err)
		}
	}

	rec := newRecorder()
	var roomRec *recorder
	if cfg.Stalled {
		roomRec = newRecorder()
		for _, r := range recvs[:cfg.Members] {
			r.also = roomRec
		}
	}
	var wg sync.WaitGroup
	for _, r := range recvs {
		wg.Add(1)
		// Owned by Fanout; ends when its stream ends (runCtx is cancelled
		// at the latest when Fanout returns).
		go func() {
			defer wg.Done()
			r.loop(rec)
		}()
	}
	defer wg.Wait()
	defer cancel()

	if cfg.OnStart != nil {
		cfg.OnStart()
	}
	cpu0, broker0 := cpuOf(t.CPU), cpuOf(t.BrokerCPU)
	gen0, _ := proc.CPU(os.Getpid())
	busy0, total0, _ := proc.MachineCPU()
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var slip *recorder
	if cfg.Mode == Paced {
		slip = newRecorder()
	}
	var firstSendErr atomic.Value
	var stalls atomic.Int64
	var swg sync.WaitGroup
	// Paced senders share Rate evenly, their first sends spread over one
	// interval.
	nsenders := cfg.Rooms * cfg.Senders
	var interval time.Duration
	if cfg.Mode == Paced {
		interval = time.Duration(float64(time.Second) * float64(nsenders) / cfg.Rate)
	}
	for i, s := range states {
		for j, snd := range s.senders {
			g := i*cfg.Senders + j
			stream := recvs[i*cfg.Members+j].stream
			offset := interval * time.Duration(g) / time.Duration(nsenders)
			swg.Add(1)
			// Owned by Fanout; ends at the deadline or on a send error.
			go func() {
				defer swg.Done()
				err := snd.sendLoop(runCtx, s, stream, cfg, start.Add(offset), interval, deadline, slip, g)
				if errors.Is(err, errWindowStall) {
					stalls.Add(1)
				} else if err != nil {
					firstSendErr.CompareAndSwap(nil, err)
				}
			}()
		}
	}
	swg.Wait()

	// Drain: wait until every connected member has everything.
	drainEnd := time.Now().Add(cfg.DrainTimeout)
	for time.Now().Before(drainEnd) {
		if drained(recvs) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.WallSeconds = time.Since(start).Seconds()
	cpu1, broker1 := cpuOf(t.CPU), cpuOf(t.BrokerCPU)
	gen1, _ := proc.CPU(os.Getpid())
	busy1, total1, _ := proc.MachineCPU()
	if cfg.OnEnd != nil {
		cfg.OnEnd()
	}
	last := start
	for _, r := range recvs {
		if l := r.last.Load(); l > last.UnixNano() {
			last = time.Unix(0, l)
		}
	}

	if stalled != nil {
		res.StalledMemberEnd = stalledEnd(stalled)
	}
	cancel()
	wg.Wait()

	for _, s := range states {
		for _, snd := range s.senders {
			res.Sent += snd.sent.Load()
		}
		res.SendsBlocked += s.blocked.Load()
	}
	for _, r := range recvs {
		res.Delivered += r.got.Load()
		res.Duplicates += r.dups.Load()
		switch {
		case r.code == codes.ResourceExhausted:
			res.SlowConsumerDisconnects++
		case r.err != nil:
			res.StreamErrors++
			if res.FirstError == "" {
				res.FirstError = r.err.Error()
			}
		default:
			res.Lost += r.lost.Load()
			res.Undelivered += r.owed()
		}
	}
	res.OrderMismatches = orderMismatches(recvs, cfg.Members)
	if v := firstSendErr.Load(); v != nil && res.FirstError == "" {
		res.FirstError = "send: " + v.(error).Error()
	}
	res.WindowStalls = int(stalls.Load())
	res.Seconds = last.Sub(start).Seconds()
	if res.Seconds > 0 {
		res.MessagesPerSec = float64(res.Sent) / res.Seconds
		res.DeliveriesPerSec = float64(res.Delivered) / res.Seconds
	}
	if cpu0 >= 0 && cpu1 >= 0 {
		res.ServerCPUSeconds = (cpu1 - cpu0).Seconds()
		if res.ServerCPUSeconds > 0 {
			res.DeliveriesPerCPUSec = float64(res.Delivered) / res.ServerCPUSeconds
		}
	}
	if broker0 >= 0 && broker1 >= 0 {
		res.BrokerCPUSeconds = (broker1 - broker0).Seconds()
	}
	res.GeneratorCPUSeconds = (gen1 - gen0).Seconds()
	res.MachineCPUSeconds = (total1 - total0).Seconds()
	res.OtherCPUSeconds = max(0, (busy1-busy0).Seconds()-res.GeneratorCPUSeconds-max(0, res.ServerCPUSeconds))
	res.Latency = rec.summary()
	if slip != nil {
		l := slip.summary()
		res.SendSlip = &l
	}
	if roomRec != nil {
		l := roomRec.summary()
		res.StalledRoomLatency = &l
	}
	return res, nil
}

// cpuOf reads a CPU clock, or returns -1 when there is none.
func cpuOf(clock func() (time.Duration, error)) time.Duration {
	if clock == nil {
		return -1
	}
	d, err := clock()
	if err != nil {
		return -1
	}
	return d
}

// openAll opens every member's stream with openMember, 32 at a time.
func openAll(ctx context.Context, rooms []room, recvs []*receiver, openMember func(ctx context.Context, i int, tok string) (memberStream, error)) error {
	sem := make(chan struct{}, 32)
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	i := 0
	for _, rm := range rooms {
		for _, m := range rm.members {
			r, idx := recvs[i], i
			i++
			sem <- struct{}{}
			wg.Add(1)
			// Owned by openAll; ends when the stream is open or failed.
			go func() {
				defer func() { <-sem; wg.Done() }()
				s, err := openMember(ctx, idx, m.token)
				mu.Lock()
				defer mu.Unlock()
				if err != nil && first == nil {
					first = fmt.Errorf("open stream for %s: %w", m.user, err)
				}
				r.stream = s
			}()
		}
	}
	wg.Wait()
	return first
}

func drained(recvs []*receiver) bool {
	for _, r := range recvs {
		if !r.ended.Load() && r.owed() > 0 {
			return false
		}
	}
	return true
}

// owed is how many messages sent to r's room r has not received yet.
func (r *receiver) owed() int64 {
	var n int64
	for i, s := range r.room.senders {
		n += max(0, s.sent.Load()-r.next[i].Load())
	}
	return n
}

// orderMismatches counts the members, of rooms of size members in recvs,
// that received every message once but in another order than the first
// such member of their room. It reads what the receivers' goroutines
// wrote, so it runs after they have ended.
func orderMismatches(recvs []*receiver, members int) int {
	n := 0
	for first := 0; first < len(recvs); first += members {
		var ref uint64
		seen := false
		for _, r := range recvs[first : first+members] {
			if r.err != nil || r.lost.Load() > 0 || r.dups.Load() > 0 || r.owed() > 0 {
				continue
			}
			switch {
			case !seen:
				ref, seen = r.order, true
			case r.order != ref:
				n++
			}
		}
	}
	return n
}

// stalledEnd reads what the stalled member's transport buffered, up to the
// status that ended its stream, for at most a few seconds.
func stalledEnd(s *chatStream) string {
	done := make(chan error, 1)
	// Owned by stalledEnd; ends when the stream ends, which the caller's
	// cancellation guarantees.
	go func() {
		for {
			if _, err := s.recv(); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		return status.Code(err).String()
	case <-time.After(3 * time.Second):
		return ""
	}
}

var errWindowStall = errors.New("window stalled: in-flight messages not delivered within 10s")

// sendLoop sends one sender's messages to room. In Paced mode the k-th is
// due at first + k×interval; when the generator is late it sends at once,
// so the rate holds, and slip records by how much.
func (s *senderState) sendLoop(ctx context.Context, room *roomState, stream memberStream, cfg FanoutConfig, first time.Time, interval time.Duration, deadline time.Time,
	slip *recorder, shard int) error {
	pad := make([]byte, cfg.BodyBytes-16)
	for i := range pad {
		pad[i] = 'x'
	}
	body := make([]byte, 0, cfg.BodyBytes)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	var freeAt time.Time // when the previous send returned
	for k := int64(0); ; k++ {
		var stamp time.Time
		if cfg.Mode == Paced {
			due := first.Add(time.Duration(k) * interval)
			if due.After(deadline) {
				return nil
			}
			if d := time.Until(due); d > 0 {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return nil
				}
			}
			// Latency counts from the send itself when the sender was free
			// at the due time: a Go timer here wakes about half a
			// millisecond late on average (the poller sleeps in whole
			// milliseconds), and counting from the due time would charge
			// that to the service. But a send blocks when the service
			// stops reading (HTTP/2 flow control); a message that came
			// due while the previous send was blocked counts from its
			// due time, so that the service's back-pressure is not
			// hidden (coordinated omission).
			now := time.Now()
			slip.record(shard, now.Sub(due))
			var blocked bool
			if stamp, blocked = pacedStamp(now, due, freeAt); blocked {
				room.blocked.Add(1)
			}
		} else {
			if time.Now().After(deadline) {
				return nil
			}
			timer.Reset(10 * time.Second)
			select {
			case <-s.window:
			case <-timer.C:
				return errWindowStall
			case <-ctx.Done():
				return nil
			}
			s.pending[k%int64(len(s.pending))].Store(room.members)
			stamp = time.Now()
		}
		body = strconv.AppendInt(body[:0], stamp.UnixNano(), 16)
		for len(body) < 16 {
			body = append(body, ' ')
		}
		body = append(body, pad...)
		err := stream.send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Send{Send: &chatv1.Send{
			ClientMessageId: strconv.FormatInt(k*s.of+s.index, 10),
			Body:            string(body),
		}}})
		if err != nil {
			return err
		}
		freeAt = time.Now()
		s.sent.Add(1)
	}
}

// pacedStamp is the time a paced message's latency counts from: now, when
// it is sent, unless the previous send returned only after this message's
// due time, which means the service held the sender up; then its due
// time, and blocked is true.
func pacedStamp(now, due, freeAt time.Time) (stamp time.Time, blocked bool) {
	if freeAt.After(due) {
		return due, true
	}
	return now, false
}

// fnvPrime is the 64-bit FNV prime, for the receivers' order hashes.
const fnvPrime = 1099511628211

func (r *receiver) loop(rec *recorder) {
	defer r.ended.Store(true)
	r.order = 14695981039346656037 // the FNV-1a offset basis
	var now time.Time
	senders := int64(len(r.room.senders))
	onMessage := func(id, body []byte) {
		n, ok := parseDec(id)
		if !ok || len(body) < 16 {
			return
		}
		r.order = (r.order ^ uint64(n)) * fnvPrime
		i, k := n%senders, n/senders
		sent, ok := parseHex(body[:16])
		if !ok {
			return
		}
		lat := now.Sub(time.Unix(0, sent))
		rec.record(r.shard, lat)
		if r.also != nil {
			r.also.record(r.shard, lat)
		}
		next := r.next[i].Load()
		switch {
		case k < next:
			r.dups.Add(1)
			return
		case k > next:
			r.lost.Add(k - next)
		}
		r.got.Add(1)
		r.room.senders[i].complete(k)
		r.last.Store(now.UnixNano())
		r.next[i].Store(k + 1)
	}
	for {
		frame, err := r.stream.recv()
		if err != nil {
			if c := status.Code(err); c != codes.Canceled {
				r.code, r.err = c, err
			}
			return
		}
		now = time.Now()
		if _, err := r.stream.walk(frame, onMessage); err != nil {
			r.code, r.err = codes.Internal, err
			return
		}
	}
}

// Cores is how many cores a CPU time over the run's wall time amounts to.
func (f *FanoutResult) Cores(cpuSeconds float64) float64 {
	if f.WallSeconds <= 0 {
		return 0
	}
	return cpuSeconds / f.WallSeconds
}

// Missing is what members that stayed connected did not get: lost plus
// undelivered.
func (f *FanoutResult) Missing() int64 { return f.Lost + f.Undelivered }
