package engine_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/engine"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/memstore"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Every engine runs a committer goroutine: each test must Close its
// engines, and this checks that they did.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ann = rooms.Member{ID: "u1", Name: "ann"}
	bob = rooms.Member{ID: "u2", Name: "bob"}
)

// errDisk is the failure the test stores inject.
var errDisk = errors.New("disk full")

// testConfig fills in the sizes a test leaves zero.
func testConfig(cfg engine.Config) engine.Config {
	if cfg.CodeLength == 0 {
		cfg.CodeLength = 6
	}
	if cfg.HistorySize == 0 {
		cfg.HistorySize = 100
	}
	if cfg.QueueSize == 0 {
		cfg.QueueSize = 16
	}
	return cfg
}

// retained is how many messages a log must keep for cfg.
func retained(cfg engine.Config) int {
	cfg = testConfig(cfg)
	return engine.Retained(cfg.HistorySize, cfg.QueueSize)
}

// start returns an engine over reg and log that the end of the test
// closes, checking that Close wrote everything.
func start(t testing.TB, cfg engine.Config, reg engine.Registry, log engine.Log) *engine.Engine {
	t.Helper()
	m, err := engine.New(testConfig(cfg), reg, log)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		assert.NoError(t, m.Close(ctx))
	})
	return m
}

// newEngine returns an engine over fresh in-memory stores.
func newEngine(t testing.TB, cfg engine.Config) (*engine.Engine, *memstore.Registry, *memstore.Log) {
	t.Helper()
	reg, log := memstore.NewRegistry(), memstore.NewLog(retained(cfg))
	return start(t, cfg, reg, log), reg, log
}

// ctx bounds a test's calls, so that a hang fails the test rather than
// the binary's deadline.
func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

func create(t testing.TB, m *engine.Engine, owner string) rooms.Room {
	t.Helper()
	r, err := m.CreateRoom(ctx(t), "room", "hash", owner)
	require.NoError(t, err)
	return r
}

func subscribe(t testing.TB, m *engine.Engine, code string, who rooms.Member, open rooms.Open) *rooms.Subscription {
	t.Helper()
	s, err := m.Subscribe(ctx(t), code, who, open)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	return s
}

// send publishes a message and waits until it has reached the streams.
func send(t testing.TB, m *engine.Engine, code string, from rooms.Member, clientID, body string) uint64 {
	t.Helper()
	seq, err := m.Publish(ctx(t), code, from, clientID, body)
	require.NoError(t, err)
	require.NoError(t, m.Flush(ctx(t)))
	return seq
}

// drain takes everything a subscription has pending.
func drain(s *rooms.Subscription) ([]*rooms.Event, error) {
	return s.Drain(nil, 1<<20, 1<<30)
}

// bodies lists the bodies of the messages among evs, in order.
func bodies(evs []*rooms.Event) []string {
	var out []string
	for _, ev := range evs {
		if ev.Kind == rooms.EventMessage {
			out = append(out, ev.Message.Body)
		}
	}
	return out
}

// seqs lists the sequences of the messages among evs, in order.
func seqs(evs []*rooms.Event) []uint64 {
	var out []uint64
	for _, ev := range evs {
		if ev.Kind == rooms.EventMessage {
			out = append(out, ev.Message.Seq)
		}
	}
	return out
}

// span is the sequences from..to.
func span(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

// logged returns the bodies the log holds for code.
func logged(t testing.TB, log engine.Log, code string) []string {
	t.Helper()
	msgs, err := log.Since(ctx(t), code, 0, 0)
	require.NoError(t, err)
	var out []string
	for _, m := range msgs {
		out = append(out, m.Body)
	}
	return out
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func newClock() *clock { return &clock{now: t0} }

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// codes hands out the given codes in turn, then the last one forever.
func codes(cs ...string) func(int) (string, error) {
	var mu sync.Mutex
	return func(int) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		c := cs[0]
		if len(cs) > 1 {
			cs = cs[1:]
		}
		return c, nil
	}
}

// reports collects what an engine reports through Config.Report.
type reports struct {
	mu   sync.Mutex
	errs []error
}

func (r *reports) report(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *reports) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

// gatedLog is a memory log whose Append the test can hold or make fail.
type gatedLog struct {
	*memstore.Log

	// entered receives the messages of every Append call as it begins,
	// when there is room: it tells the test what the committer has taken.
	entered chan []rooms.Message

	mu    sync.Mutex
	gate  chan struct{} // while not nil, Append waits for it to close
	fails int           // Append fails this many more times (<0: always)
}

func newGatedLog(retain int) *gatedLog {
	return &gatedLog{Log: memstore.NewLog(retain), entered: make(chan []rooms.Message, 1024)}
}

// hold makes Append wait until release.
func (l *gatedLog) hold() {
	l.mu.Lock()
	l.gate = make(chan struct{})
	l.mu.Unlock()
}

// release lets held and later Appends through.
func (l *gatedLog) release() {
	l.mu.Lock()
	if l.gate != nil {
		close(l.gate)
		l.gate = nil
	}
	l.mu.Unlock()
}

// fail makes the next n Appends fail with errDisk; n < 0 makes all fail.
func (l *gatedLog) fail(n int) {
	l.mu.Lock()
	l.fails = n
	l.mu.Unlock()
}

func (l *gatedLog) Append(ctx context.Context, msgs []rooms.Message) error {
	select {
	case l.entered <- append([]rooms.Message(nil), msgs...):
	default:
	}
	l.mu.Lock()
	gate := l.gate
	l.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	l.mu.Lock()
	fail := l.fails != 0
	if l.fails > 0 {
		l.fails--
	}
	l.mu.Unlock()
	if fail {
		return errDisk
	}
	return l.Log.Append(ctx, msgs)
}

// awaitAppend waits until the committer has begun an Append and returns
// its messages.
func (l *gatedLog) awaitAppend(t testing.TB) []rooms.Message {
	t.Helper()
	select {
	case msgs := <-l.entered:
		return msgs
	case <-time.After(10 * time.Second):
		t.Fatal("the committer never called Append")
		return nil
	}
}

// faultyRegistry is a memory registry whose writes can be made to fail,
// and whose Room calls can run a hook after reading.
type faultyRegistry struct {
	*memstore.Registry

	mu     sync.Mutex
	err    error        // returned by Create and Delete while set
	onRoom func(string) // called by Room after reading, while set
}

func (r *faultyRegistry) setErr(err error) {
	r.mu.Lock()
	r.err = err
	r.mu.Unlock()
}

func (r *faultyRegistry) setOnRoom(hook func(string)) {
	r.mu.Lock()
	r.onRoom = hook
	r.mu.Unlock()
}

func (r *faultyRegistry) failure() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

func (r *faultyRegistry) Create(ctx context.Context, room rooms.Room, rules engine.CreateRules) error {
	if err := r.failure(); err != nil {
		return err
	}
	return r.Registry.Create(ctx, room, rules)
}

func (r *faultyRegistry) Delete(ctx context.Context, code, ownerID string, at time.Time) error {
	if err := r.failure(); err != nil {
		return err
	}
	return r.Registry.Delete(ctx, code, ownerID, at)
}

func (r *faultyRegistry) Room(ctx context.Context, code string) (rooms.Room, error) {
	room, err := r.Registry.Room(ctx, code)
	r.mu.Lock()
	hook := r.onRoom
	r.mu.Unlock()
	if hook != nil {
		hook(code)
	}
	return room, err
}
