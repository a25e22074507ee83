package chatload

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"

	chatv1 "github.com/grpcchatter/grpcchatter/pkg/api/chat/v1"
)

// JoinStormConfig sizes a join storm: one room that every member opens a
// stream in at once, as clients reconnecting after a restart do.
type JoinStormConfig struct {
	Members int
	// StreamsPerConn is how many members share a client connection; at
	// most the server's limit of concurrent streams per connection.
	StreamsPerConn int
	// Parallel is how many streams are being opened at once.
	Parallel int
	// Timeout bounds the storm: members that do not know the whole room
	// by then count as incomplete.
	Timeout time.Duration
}

// JoinStormResult is what a join storm measured. The storm lasts from the
// first stream's open until every member knows every other (its Opened
// listed them or a Presence event announced them) or its stream ended.
type JoinStormResult struct {
	Target  string `json:"target"`
	Members int    `json:"members"`
	Opened  int    `json:"opened"`
	Failed  int    `json:"failed"`
	// Ended counts streams that the server ended during the storm (a slow
	// consumer cut, say); Incomplete members that did not learn the whole
	// room, those included.
	Ended      int    `json:"ended"`
	Incomplete int    `json:"incomplete"`
	FirstError string `json:"first_error,omitempty"`
	// Seconds is the storm's wall time, OpenSeconds the part spent opening.
	Seconds     float64 `json:"seconds"`
	OpenSeconds float64 `json:"open_seconds"`
	// ServerCPUSeconds is the target's CPU time over the storm (0 when it
	// cannot be read).
	ServerCPUSeconds float64 `json:"server_cpu_s"`
	// Frames and PresenceEvents are what the members received after their
	// Opened, in all.
	Frames         int64 `json:"frames"`
	PresenceEvents int64 `json:"presence_events"`
}

// Field numbers from chat.proto, for counting users and presence.
const (
	eventPresence protowire.Number = 3 // Event.presence
	openedUsers   protowire.Number = 6 // Opened.users
)

// JoinStorm creates a room of cfg.Members members and has them all open
// a stream in it at once, then waits until each knows the whole room.
func JoinStorm(ctx context.Context, t Target, cfg JoinStormConfig) (JoinStormResult, error) {
	res := JoinStormResult{Target: t.Name, Members: cfg.Members}
	if cfg.StreamsPerConn < 1 {
		cfg.StreamsPerConn = 100
	}
	if cfg.Parallel < 1 {
		cfg.Parallel = 64
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 5 * time.Minute
	}
	setup, err := dial(t.Addr)
	if err != nil {
		return res, err
	}
	rooms, err := setupRooms(ctx, t, setup, fmt.Sprintf("j%d", time.Now().UnixNano()%1e6), 1, cfg.Members)
	setup.Close()
	if err != nil {
		return res, err
	}
	members := rooms[0].members
	conns := make([]*grpc.ClientConn, (cfg.Members+cfg.StreamsPerConn-1)/cfg.StreamsPerConn)
	for i := range conns {
		if conns[i], err = dial(t.Addr); err != nil {
			return res, err
		}
		defer conns[i].Close()
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()

	s := &storm{want: cfg.Members, done: make(chan struct{})}
	cpu0, cpuErr := t.cpuTime()
	start := time.Now()
	sem := make(chan struct{}, cfg.Parallel)
	var opening, readers sync.WaitGroup
	for i, m := range members {
		sem <- struct{}{}
		opening.Add(1)
		// Owned by JoinStorm; ends once the stream is open (or failed),
		// leaving its reader behind.
		go func() {
			defer func() { <-sem; opening.Done() }()
			if err := s.open(ctx, conns[i/cfg.StreamsPerConn], m.token, &readers); err != nil {
				s.fail(err)
			}
		}()
	}
	opening.Wait()
	res.OpenSeconds = time.Since(start).Seconds()
	select {
	case <-s.done:
	case <-ctx.Done():
	}
	res.Seconds = time.Since(start).Seconds()
	cpu1, err := t.cpuTime()
	if cpuErr == nil && err == nil {
		res.ServerCPUSeconds = (cpu1 - cpu0).Seconds()
	}
	cancel()
	readers.Wait()

	res.Opened, res.Failed = int(s.opened.Load()), int(s.failed.Load())
	res.Ended = int(s.ended.Load())
	res.Incomplete = cfg.Members - int(s.complete.Load())
	res.Frames, res.PresenceEvents = s.frames.Load(), s.presence.Load()
	s.mu.Lock()
	res.FirstError = s.firstErr
	s.mu.Unlock()
	if res.Incomplete > res.Ended+res.Failed && res.FirstError == "" {
		res.FirstError = "the storm did not settle within the timeout"
	}
	return res, nil
}

// cpuTime reads the target's CPU time, if it can be read.
func (t Target) cpuTime() (time.Duration, error) {
	if t.CPU == nil {
		return 0, errors.New("the target's CPU is not known")
	}
	return t.CPU()
}

// storm is the state of a join storm's members.
type storm struct {
	want int // users each member must learn of
	done chan struct{}

	opened, failed, ended, complete, settled atomic.Int64
	frames, presence                         atomic.Int64

	mu       sync.Mutex
	firstErr string
}

func (s *storm) fail(err error) {
	s.failed.Add(1)
	s.note(err)
	s.settle()
}

func (s *storm) note(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.firstErr == "" {
		s.firstErr = err.Error()
	}
}

// settle counts a member that is done, complete or not, and ends the
// storm with the last.
func (s *storm) settle() {
	if s.settled.Add(1) == int64(s.want) {
		close(s.done)
	}
}

// open opens one member's stream, counts the users its Opened lists and
// starts its reader, which counts the presence events until the member
// knows the whole room, then keeps reading (so that the service never
// finds it slow) until ctx ends.
func (s *storm) open(ctx context.Context, cc *grpc.ClientConn, tok string, readers *sync.WaitGroup) error {
	stream, err := newChatStream(bearer(ctx, tok), cc)
	if err != nil {
		return err
	}
	if err := stream.send(&chatv1.ChatRequest{Kind: &chatv1.ChatRequest_Open{Open: &chatv1.Open{}}}); err != nil {
		return fmt.Errorf("send open: %w", err)
	}
	frame, err := stream.recv()
	if err != nil {
		return fmt.Errorf("await opened: %w", err)
	}
	known, opened, err := countPresence(frame)
	if err != nil {
		return err
	}
	if !opened {
		return errors.New("first event was not Opened")
	}
	s.opened.Add(1)
	readers.Add(1)
	// Owned by the storm; ends when JoinStorm cancels ctx or the stream
	// ends.
	go func() {
		defer readers.Done()
		settled := false
		finish := func() {
			if !settled {
				settled = true
				s.settle()
			}
		}
		if known >= s.want {
			s.complete.Add(1)
			finish()
		}
		for {
			frame, err := stream.recv()
			if err != nil {
				if ctx.Err() == nil {
					s.ended.Add(1)
					s.note(err)
				}
				finish()
				return
			}
			n, _, err := countPresence(frame)
			if err != nil {
				s.note(err)
			}
			s.frames.Add(1)
			s.presence.Add(int64(n))
			if known += n; known >= s.want && !settled {
				s.complete.Add(1)
				finish()
			}
		}
	}()
	return nil
}

// countPresence counts the users an Opened event lists and the Presence
// events of a frame, without decoding it, and reports whether the frame
// held an Opened event. In a join storm every Presence event is an
// arrival.
func countPresence(frame []byte) (n int, opened bool, err error) {
	for len(frame) > 0 {
		num, typ, l := protowire.ConsumeTag(frame)
		if l < 0 {
			return n, opened, errMalformed
		}
		frame = frame[l:]
		if num != responseEvents || typ != protowire.BytesType {
			if l = protowire.ConsumeFieldValue(num, typ, frame); l < 0 {
				return n, opened, errMalformed
			}
			frame = frame[l:]
			continue
		}
		ev, l := protowire.ConsumeBytes(frame)
		if l < 0 {
			return n, opened, errMalformed
		}
		frame = frame[l:]
		num, typ, l = protowire.ConsumeTag(ev)
		if l < 0 || typ != protowire.BytesType {
			continue
		}
		switch num {
		case eventPresence:
			n++
		case eventOpened:
			opened = true
			o, l2 := protowire.ConsumeBytes(ev[l:])
			if l2 < 0 {
				return n, opened, errMalformed
			}
			for len(o) > 0 {
				fnum, ftyp, fl := protowire.ConsumeTag(o)
				if fl < 0 {
					return n, opened, errMalformed
				}
				o = o[fl:]
				if fl = protowire.ConsumeFieldValue(fnum, ftyp, o); fl < 0 {
					return n, opened, errMalformed
				}
				o = o[fl:]
				if fnum == openedUsers {
					n++
				}
			}
		}
	}
	return n, opened, nil
}
