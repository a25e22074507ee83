package natsstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/chunk"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// The headers of a history message. Its data is a chunk (internal/chunk)
// of the room's messages First to Last; Prev is the stream sequence of
// the room's previous chunk, which the append required (compare-and-set
// on the subject's last sequence) and which Since walks back by. A
// message with Dropped set ends the room's history.
const (
	hdrFirst   = "Chat-First"
	hdrLast    = "Chat-Last"
	hdrPrev    = "Chat-Prev"
	hdrOrigin  = "Chat-Origin"
	hdrDropped = "Chat-Dropped"
)

// metaEpoch is the stream metadata key holding the log's epoch.
const metaEpoch = "grpcchatter.epoch"

// LogConfig names and sizes the history stream.
type LogConfig struct {
	// Stream is the JetStream stream's name; Subject the prefix of its
	// subjects, one per room: Subject.CODE.
	Stream, Subject string
	// Replicas is the stream's replica count (1, or 3 on a 3-node
	// cluster, which survives the loss of one node).
	Replicas int
	// Retain is the number of messages each room keeps at least: the
	// stream keeps that many chunks per room, each of one message or more.
	Retain int
	// Origin names this instance in what it appends, so that its feed
	// skips its own appends.
	Origin string
}

// Log is an engine.Log on a JetStream stream, shared by every instance
// that uses the same stream: each room is a subject, each append one
// message per room (a chunk), published only if the subject's last
// message is the one the appender knows (Nats-Expected-Last-Subject-
// Sequence), so a room's sequences stay contiguous whoever writes them.
// Watch is its feed.
type Log struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	cfg    LogConfig
	epoch  string
	// maxChunk bounds a chunk's data: the server's maximum payload, less
	// room for headers.
	maxChunk int

	mu sync.Mutex
	// heads caches each room's last chunk, to publish without reading it.
	heads map[string]head
}

// head is a room's last chunk: its stream sequence and last message.
type head struct{ stream, seq uint64 }

// maxHeads bounds the cache of heads; past it, the cache starts again.
const maxHeads = 1 << 16

// OpenLog creates the history stream if it does not exist, or updates its
// limits and replicas to cfg's, keeping its epoch, and returns the log.
func OpenLog(ctx context.Context, nc *nats.Conn, js jetstream.JetStream, cfg LogConfig) (*Log, error) {
	if cfg.Stream == "" || cfg.Subject == "" || cfg.Retain < 1 || cfg.Origin == "" {
		return nil, errors.New("natsstore: the log needs a stream, a subject, an origin and Retain ≥ 1")
	}
	if cfg.Replicas < 1 {
		cfg.Replicas = 1
	}
	sc := jetstream.StreamConfig{
		Name:              cfg.Stream,
		Description:       "GRPCChatter room history: one subject per room, one message per append",
		Subjects:          []string{cfg.Subject + ".*"},
		Storage:           jetstream.FileStorage,
		Replicas:          cfg.Replicas,
		MaxMsgsPerSubject: int64(cfg.Retain),
		Discard:           jetstream.DiscardOld,
		AllowDirect:       true,
		Metadata:          map[string]string{metaEpoch: rooms.NewEpoch()},
	}
	stream, err := js.CreateStream(ctx, sc)
	if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
		stream, err = js.Stream(ctx, cfg.Stream)
		if err == nil {
			info := stream.CachedInfo()
			sc.Metadata = maps.Clone(info.Config.Metadata)
			if sc.Metadata[metaEpoch] == "" {
				return nil, fmt.Errorf("natsstore: stream %s exists without an epoch: it is not a history stream", cfg.Stream)
			}
			if info.Config.Replicas != sc.Replicas || info.Config.MaxMsgsPerSubject != sc.MaxMsgsPerSubject ||
				!slices.Equal(info.Config.Subjects, sc.Subjects) || !info.Config.AllowDirect {
				stream, err = js.UpdateStream(ctx, sc)
			}
		}
	}
	if err != nil {
		return nil, fmt.Errorf("natsstore: history stream %s: %w", cfg.Stream, unavailable(err))
	}
	maxChunk := int(nc.MaxPayload()) - 1024
	if maxChunk < 4096 {
		return nil, fmt.Errorf("natsstore: the server's max_payload (%d bytes) is too small for history", nc.MaxPayload())
	}
	return &Log{js: js, stream: stream, cfg: cfg, epoch: stream.CachedInfo().Config.Metadata[metaEpoch],
		maxChunk: maxChunk, heads: make(map[string]head)}, nil
}

// Epoch is the stream's: it lasts as long as the stream does.
func (l *Log) Epoch() string { return l.epoch }

func (l *Log) subject(code string) string { return l.cfg.Subject + "." + code }

// run is one room's messages within an Append.
type run struct {
	code string
	msgs []rooms.Message
}

// Append publishes each room's run as chunks that must follow the room's
// last chunk. Each room's run is stored entirely or not at all; a failed
// Append may have stored the runs of other rooms (a stream offers no
// transaction across subjects), which the engine tells apart by reading
// them back.
func (l *Log) Append(ctx context.Context, msgs []rooms.Message) error {
	runs, err := runsOf(msgs)
	if err != nil {
		return err
	}
	prevs := make([]uint64, len(runs))
	for i, r := range runs {
		h, err := l.headFor(ctx, r.code, r.msgs[0].Seq-1)
		if err != nil {
			return err
		}
		prevs[i] = h.stream
	}
	errs := make([]error, len(runs))
	var wg sync.WaitGroup
	for i, r := range runs {
		// Owner: Append, which waits. Exit: the publish's answer or ctx.
		wg.Go(func() { errs[i] = l.appendRun(ctx, r, prevs[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if errors.Is(err, rooms.ErrSeqConflict) {
			return err
		}
	}
	return errors.Join(errs...)
}

// runsOf splits msgs by room, checking that each room's are consecutive.
func runsOf(msgs []rooms.Message) ([]run, error) {
	idx := make(map[string]int)
	var runs []run
	for _, m := range msgs {
		i, ok := idx[m.Room]
		if !ok {
			idx[m.Room] = len(runs)
			runs = append(runs, run{code: m.Room, msgs: []rooms.Message{m}})
			continue
		}
		r := &runs[i]
		if m.Seq != r.msgs[len(r.msgs)-1].Seq+1 {
			return nil, fmt.Errorf("natsstore: room %s: message %d after %d: %w", m.Room, m.Seq, r.msgs[len(r.msgs)-1].Seq, rooms.ErrSeqConflict)
		}
		r.msgs = append(r.msgs, m)
	}
	return runs, nil
}

// headFor returns the room's last chunk, which must end at seq: from the
// cache if it says so, else read. Anything else is a conflict.
func (l *Log) headFor(ctx context.Context, code string, seq uint64) (head, error) {
	l.mu.Lock()
	h, ok := l.heads[code]
	l.mu.Unlock()
	if ok && h.seq == seq {
		return h, nil
	}
	h, err := l.readHead(ctx, code)
	if err != nil {
		return head{}, err
	}
	if h.seq != seq {
		return head{}, fmt.Errorf("natsstore: room %s ends at %d, not %d: %w", code, h.seq, seq, rooms.ErrSeqConflict)
	}
	return h, nil
}

// appendRun publishes one room's run after the chunk at stream sequence
// prev. A run too large for one message is split; since every chunk
// carries a message ID, a retry of a run stored in part is deduplicated
// by the server up to where it stopped.
func (l *Log) appendRun(ctx context.Context, r run, prev uint64) error {
	for len(r.msgs) > 0 {
		data, n := l.encode(r.msgs)
		part := r.msgs[:n]
		first, last := part[0].Seq, part[n-1].Seq
		msg := nats.NewMsg(l.subject(r.code))
		msg.Data = data
		msg.Header.Set(hdrFirst, strconv.FormatUint(first, 10))
		msg.Header.Set(hdrLast, strconv.FormatUint(last, 10))
		msg.Header.Set(hdrPrev, strconv.FormatUint(prev, 10))
		msg.Header.Set(hdrOrigin, l.cfg.Origin)
		// The ID names this attempt: this instance, after this chunk, these
		// sequences. A retry of it (its answer was lost) is answered with
		// the first one's acknowledgement; any other writer's chunk, even
		// of the same sequences, has an ID of its own and meets the check
		// of the expected last sequence.
		id := fmt.Sprintf("%s/%s/%d/%d-%d", l.cfg.Origin, r.code, prev, first, last)
		ack, err := l.js.PublishMsg(ctx, msg, jetstream.WithExpectLastSequencePerSubject(prev), jetstream.WithMsgID(id))
		if err != nil {
			l.forget(r.code)
			var apiErr *jetstream.APIError
			if errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
				apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
				return fmt.Errorf("natsstore: room %s: messages %d to %d: another writer appended first: %w", r.code, first, last, rooms.ErrSeqConflict)
			}
			return fmt.Errorf("natsstore: append to room %s: %w", r.code, unavailable(err))
		}
		prev = ack.Sequence
		l.remember(r.code, head{stream: ack.Sequence, seq: last})
		r.msgs = r.msgs[n:]
	}
	return nil
}

// encode encodes as many of msgs, at least one, as fit in one chunk.
func (l *Log) encode(msgs []rooms.Message) ([]byte, int) {
	data := chunk.Encode(nil, msgs)
	if len(data) <= l.maxChunk || len(msgs) == 1 {
		return data, len(msgs)
	}
	n := len(msgs) / 2
	for n > 1 {
		if data = chunk.Encode(data[:0], msgs[:n]); len(data) <= l.maxChunk {
			break
		}
		n /= 2
	}
	return chunk.Encode(data[:0], msgs[:n]), n
}

func (l *Log) remember(code string, h head) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if old, ok := l.heads[code]; ok && old.stream >= h.stream {
		return
	}
	if len(l.heads) >= maxHeads {
		clear(l.heads)
	}
	l.heads[code] = h
}

func (l *Log) forget(code string) {
	l.mu.Lock()
	delete(l.heads, code)
	l.mu.Unlock()
}

// readHead reads the room's last chunk; a room without one, or whose last
// message ends its history, ends at 0 after stream sequence 0 or that
// message's.
func (l *Log) readHead(ctx context.Context, code string) (head, error) {
	m, err := l.stream.GetLastMsgForSubject(ctx, l.subject(code))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return head{}, nil
	}
	if err != nil {
		return head{}, fmt.Errorf("natsstore: read head of room %s: %w", code, unavailable(err))
	}
	h := head{stream: m.Sequence}
	if m.Header.Get(hdrDropped) == "" {
		if h.seq, err = headerSeq(m.Header, hdrLast); err != nil {
			return head{}, err
		}
	}
	l.remember(code, h)
	return h, nil
}

// Head is the room's last sequence.
func (l *Log) Head(ctx context.Context, code string) (uint64, error) {
	h, err := l.readHead(ctx, code)
	return h.seq, err
}

// span is what a history message's headers say of its chunk.
type span struct{ first, last, prev uint64 }

// spanOf reads a chunk's headers.
func spanOf(h nats.Header) (span, error) {
	first, err1 := headerSeq(h, hdrFirst)
	last, err2 := headerSeq(h, hdrLast)
	prev, err3 := headerSeq(h, hdrPrev)
	return span{first, last, prev}, errors.Join(err1, err2, err3)
}

// Since walks the room's chunks back from the last until it reaches
// `after` or the oldest kept, and returns the messages after `after`,
// oldest first, at most limit (0: all).
func (l *Log) Since(ctx context.Context, code string, after uint64, limit int) ([]rooms.Message, error) {
	type kept struct {
		m *jetstream.RawStreamMsg
		span
	}
	var chunks []kept // newest first
	m, err := l.stream.GetLastMsgForSubject(ctx, l.subject(code))
	for err == nil && m.Header.Get(hdrDropped) == "" {
		sp, serr := spanOf(m.Header)
		if serr != nil {
			return nil, fmt.Errorf("natsstore: room %s, stream message %d: %w", code, m.Sequence, serr)
		}
		if sp.last <= after {
			break
		}
		chunks = append(chunks, kept{m, sp})
		if sp.first <= after+1 || sp.prev == 0 {
			break
		}
		m, err = l.stream.GetMsg(ctx, sp.prev)
	}
	if err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) { // not found: none, or older ones trimmed
		return nil, fmt.Errorf("natsstore: read history of room %s: %w", code, unavailable(err))
	}
	var out []rooms.Message
	for i := len(chunks) - 1; i >= 0; i-- {
		c := chunks[i]
		if out, err = chunk.Decode(out, c.m.Data, code, l.epoch, c.first, c.last); err != nil {
			return nil, fmt.Errorf("natsstore: room %s, stream message %d: %w", code, c.m.Sequence, err)
		}
	}
	// The oldest chunk may begin at or before after.
	k := 0
	for k < len(out) && out[k].Seq <= after {
		k++
	}
	out = out[k:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// Drop ends the room's history: a marker message, then a purge of the
// room's subject that keeps only the marker, which the feeds of the other
// instances deliver so that they end the room's streams.
func (l *Log) Drop(ctx context.Context, code string) error {
	msg := nats.NewMsg(l.subject(code))
	msg.Header.Set(hdrDropped, "1")
	msg.Header.Set(hdrOrigin, l.cfg.Origin)
	l.forget(code)
	if _, err := l.js.PublishMsg(ctx, msg); err != nil {
		return fmt.Errorf("natsstore: drop room %s: %w", code, unavailable(err))
	}
	if err := l.stream.Purge(ctx, jetstream.WithPurgeSubject(l.subject(code)), jetstream.WithPurgeKeep(1)); err != nil {
		return fmt.Errorf("natsstore: drop room %s: %w", code, unavailable(err))
	}
	return nil
}

func headerSeq(h nats.Header, key string) (uint64, error) {
	v, err := strconv.ParseUint(h.Get(key), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("natsstore: history message without a valid %s header: %w", key, chunk.ErrMalformed)
	}
	return v, nil
}

// unavailable marks an error of NATS (timeouts, no responders, a closed
// connection, an API error) as the store being unavailable.
func unavailable(err error) error {
	if err == nil || errors.Is(err, rooms.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", rooms.ErrUnavailable, err)
}

// Watch delivers to apply what other instances append or drop, room by
// room in the stream's order, from now until stop is called. It returns
// once the feed has its starting point. apply runs on the feed's own
// goroutine, one message at a time; stop returns once it has stopped.
//
// The feed follows the stream with an ephemeral consumer of its own and
// remembers the last stream sequence it handled. When the consumer stops
// answering (missed heartbeats: its server went away) or fails, it makes
// a new one that starts after that sequence, on whatever server answers,
// so a lost node or a reconnection costs seconds, not messages. What the
// feed still misses (a consumer's messages trimmed from the stream first),
// apply's engine reads from the log when it sees the gap.
func (l *Log) Watch(ctx context.Context, apply func(code string, msgs []rooms.Message, dropped bool), report func(error)) (stop func(), err error) {
	info, err := l.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: feed: %w", unavailable(err))
	}
	f := &feed{l: l, next: info.State.LastSeq + 1, apply: apply, report: report}
	// The first consumer exists before Watch returns: nothing appended
	// afterwards can be purged before the feed has a reader for it.
	first, err := f.open(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: feed: %w", unavailable(err))
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	// Owner: the caller, through stop. Exit: when stop cancels ctx.
	go func() {
		defer close(done)
		f.run(ctx, first)
	}()
	return func() { cancel(); <-done }, nil
}

// feed is Watch's state: the next stream sequence it wants.
type feed struct {
	l      *Log
	next   uint64
	apply  func(code string, msgs []rooms.Message, dropped bool)
	report func(error)
}

// feedRetry is how long the feed waits after failing to make a consumer.
const feedRetry = time.Second

// run follows the stream from the consumer first, making a new one
// whenever the last one fails, until ctx ends.
func (f *feed) run(ctx context.Context, first *consumer) {
	c := first
	for {
		var err error
		if c != nil {
			err = f.read(ctx, c)
			c = nil
		}
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			f.report(fmt.Errorf("natsstore: feed resumes after stream message %d: %w", f.next-1, err))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(feedRetry):
		}
		if c, err = f.open(ctx); err != nil && ctx.Err() == nil {
			f.report(fmt.Errorf("natsstore: feed resumes after stream message %d: %w", f.next-1, err))
		}
	}
}

// consumer is one ephemeral consumer and its reader.
type consumer struct {
	name string
	it   jetstream.MessagesContext
}

// open makes a consumer that starts at the next stream sequence wanted.
func (f *feed) open(ctx context.Context) (*consumer, error) {
	l := f.l
	cons, err := l.js.CreateConsumer(ctx, l.cfg.Stream, jetstream.ConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: f.next,
		AckPolicy: jetstream.AckNonePolicy, FilterSubject: l.cfg.Subject + ".*",
		// One reader, no state worth keeping: in memory, on one node, and
		// removed by the server soon after its reader is gone.
		MemoryStorage: true, Replicas: 1, InactiveThreshold: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	// Heartbeats every 2 s: a consumer whose server went away is noticed
	// within 4 s.
	it, err := cons.Messages(jetstream.PullHeartbeat(2*time.Second), jetstream.PullExpiry(10*time.Second),
		jetstream.WithMessagesErrOnMissingHeartbeat(true))
	if err != nil {
		f.remove(cons.CachedInfo().Name)
		return nil, err
	}
	return &consumer{name: cons.CachedInfo().Name, it: it}, nil
}

// remove deletes a consumer that is no longer read, if the server can
// still be told; otherwise it goes once inactive.
func (f *feed) remove(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = f.l.js.DeleteConsumer(ctx, f.l.cfg.Stream, name)
}

// read hands c's messages to apply until c fails or ctx ends.
func (f *feed) read(ctx context.Context, c *consumer) error {
	defer f.remove(c.name)
	stopped := context.AfterFunc(ctx, c.it.Stop)
	defer stopped()
	defer c.it.Stop()
	for {
		m, err := c.it.Next()
		if err != nil {
			return err
		}
		meta, err := m.Metadata()
		if err != nil || meta.Sequence.Stream < f.next {
			continue // handled already, by the consumer before this one
		}
		f.next = meta.Sequence.Stream + 1
		f.handle(m, meta.Sequence.Stream)
	}
}

// handle passes one stream message to apply, unless this instance wrote it.
func (f *feed) handle(m jetstream.Msg, streamSeq uint64) {
	l := f.l
	prefix := len(l.cfg.Subject) + 1
	h := m.Headers()
	if h.Get(hdrOrigin) == l.cfg.Origin || len(m.Subject()) <= prefix {
		return
	}
	code := m.Subject()[prefix:]
	if h.Get(hdrDropped) != "" {
		l.forget(code)
		f.apply(code, nil, true)
		return
	}
	sp, err := spanOf(h)
	var msgs []rooms.Message
	if err == nil {
		msgs, err = chunk.Decode(nil, m.Data(), code, l.epoch, sp.first, sp.last)
	}
	if err != nil {
		f.report(fmt.Errorf("natsstore: feed: room %s: %w", code, err))
		return
	}
	l.remember(code, head{stream: streamSeq, seq: sp.last})
	f.apply(code, msgs, false)
}
