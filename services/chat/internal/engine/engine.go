// Package engine is the in-memory room engine: the room registry, message
// sequencing, history and fan-out of one service instance.
//
// Locking: Memory.saveMu serialises registry changes (create, delete,
// sweep, persist), each written to the store before it is applied, and is
// the only lock held while the file is written. Memory.mu guards the
// registry map; each room has its own mutex guarding its sequence,
// history, subscribers, presence and idle time. Lock order is saveMu,
// then registry, then room, and a subscription's queue mutex is the
// innermost; the registry lock is never held while waiting for a room's.
// Nothing under mu or a room lock blocks: fan-out is a non-blocking
// append per subscriber.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// Store persists the registry. Save is called with the complete registry.
type Store interface {
	Load() (rooms.Registry, error)
	Save(rooms.Registry) error
}

// Config sizes the engine.
type Config struct {
	// CodeLength is the number of characters of a new short code.
	CodeLength int
	// HistorySize is the minimum number of messages each room keeps for
	// resume. Rooms keep max(HistorySize, 2×QueueSize), so that a stream
	// cut off for overflowing its queue can always resume (see Retained).
	HistorySize int
	// QueueSize bounds each stream's queue of undelivered events.
	QueueSize int
	// IdleTTL is how long a room without activity lives.
	IdleTTL time.Duration
	// ReuseAfter is how long the code of a deleted room stays unused: room
	// tokens name their room only by code, so it must exceed the room
	// token lifetime (plus clock leeway).
	ReuseAfter time.Duration
	// MaxRoomsPerUser bounds the rooms one user owns; 0 is unlimited.
	MaxRoomsPerUser int
	// MaxStreamsPerUser bounds one user's open streams in a room; 0 is
	// unlimited.
	MaxStreamsPerUser int
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// NewCode replaces rooms.NewCode, for tests.
	NewCode func(length int) (string, error)
}

// codeAttempts is how many random codes CreateRoom tries before it reports
// the code space exhausted.
const codeAttempts = 16

// Memory is the in-memory engine. It is safe for concurrent use.
type Memory struct {
	cfg   Config
	store Store
	epoch string
	// retain is how many messages each room keeps: see Retained.
	retain int

	// saveMu serialises changes to the registry: each is written to the
	// store first and applied in memory only once the write succeeded, so
	// a failed write changes nothing. Taken before mu, never under it.
	saveMu sync.Mutex
	tombs  map[string]time.Time // deleted codes and when; guarded by saveMu

	// dirty is set when a room's idle time moves without a registry write.
	dirty atomic.Bool

	mu    sync.RWMutex
	rooms map[string]*room
}

// New loads the registry from st and starts a new epoch.
func New(cfg Config, st Store) (*Memory, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewCode == nil {
		cfg.NewCode = rooms.NewCode
	}
	if cfg.CodeLength < 1 || cfg.HistorySize < 1 || cfg.QueueSize < 1 {
		return nil, errors.New("engine: code length, history size and queue size must be positive")
	}
	saved, err := st.Load()
	if err != nil {
		return nil, err
	}
	var e [8]byte
	if _, err := rand.Read(e[:]); err != nil {
		return nil, fmt.Errorf("engine: epoch: %w", err)
	}
	m := &Memory{cfg: cfg, store: st, epoch: hex.EncodeToString(e[:]), retain: Retained(cfg.HistorySize, cfg.QueueSize),
		tombs: make(map[string]time.Time, len(saved.Tombstones)), rooms: make(map[string]*room, len(saved.Rooms))}
	now := cfg.Now()
	for _, r := range saved.Rooms {
		idle := r.IdleSince
		if idle.IsZero() { // written before idle times were kept
			idle = now
		}
		m.rooms[r.Code] = newRoom(r, idle)
	}
	for _, t := range saved.Tombstones {
		m.tombs[t.Code] = t.DeletedAt
	}
	return m, nil
}

// Retained is how many messages a room keeps for resume: at least
// historySize, and twice queueSize. A stream is cut off when its queue of
// queueSize events overflows; by then it has missed the queue plus what was
// in flight to it, so keeping twice the queue lets it resume without loss
// even when HISTORY_SIZE is smaller than MAX_MESSAGE_QUEUE_SIZE, as with
// the defaults (100 and 256).
func Retained(historySize, queueSize int) int {
	return max(historySize, 2*queueSize)
}

// Epoch is this process's epoch: message sequences restart with it.
func (m *Memory) Epoch() string { return m.epoch }

// Len is the number of rooms.
func (m *Memory) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.rooms)
}

// CreateRoom registers a room with a fresh short code and persists it.
// Codes of rooms deleted less than ReuseAfter ago are not reused.
func (m *Memory) CreateRoom(_ context.Context, name, passwordHash, ownerID string) (rooms.Room, error) {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	now := m.cfg.Now()
	if m.cfg.MaxRoomsPerUser > 0 && m.owned(ownerID) >= m.cfg.MaxRoomsPerUser {
		return rooms.Room{}, fmt.Errorf("%w (%d)", rooms.ErrTooManyRooms, m.cfg.MaxRoomsPerUser)
	}
	meta := rooms.Room{Name: name, PasswordHash: passwordHash, OwnerID: ownerID, CreatedAt: now.UTC(), IdleSince: now.UTC()}
	for attempt := 0; meta.Code == ""; attempt++ {
		if attempt == codeAttempts {
			return rooms.Room{}, fmt.Errorf("engine: %d tries at length %d: %w", codeAttempts, m.cfg.CodeLength, rooms.ErrNoCode)
		}
		code, err := m.cfg.NewCode(m.cfg.CodeLength)
		if err != nil {
			return rooms.Room{}, err
		}
		if m.free(code, now) {
			meta.Code = code
		}
	}
	if err := m.save(&meta, nil, now); err != nil {
		return rooms.Room{}, err
	}
	m.mu.Lock()
	m.rooms[meta.Code] = newRoom(meta, now)
	m.mu.Unlock()
	return meta, nil
}

// owned counts the rooms ownerID owns.
func (m *Memory) owned(ownerID string) int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, r := range m.rooms {
		if r.meta.OwnerID == ownerID {
			n++
		}
	}
	return n
}

// free reports whether code may name a new room. The caller holds saveMu.
func (m *Memory) free(code string, now time.Time) bool {
	if at, ok := m.tombs[code]; ok && now.Before(at.Add(m.cfg.ReuseAfter)) {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	_, taken := m.rooms[code]
	return !taken
}

// Room returns the room with the canonical short code.
func (m *Memory) Room(_ context.Context, code string) (rooms.Room, error) {
	r, err := m.lookup(code)
	if err != nil {
		return rooms.Room{}, err
	}
	return r.meta, nil
}

// Touch records activity in a room (a user joined it), which restarts its
// idle clock.
func (m *Memory) Touch(_ context.Context, code string) error {
	r, err := m.lockLive(code)
	if err != nil {
		return err
	}
	defer r.mu.Unlock()
	if now := m.cfg.Now(); now.After(r.idleSince) {
		r.idleSince = now
		m.dirty.Store(true)
	}
	return nil
}

func (m *Memory) lookup(code string) (*room, error) {
	// Every message looks its room up: readers share the registry lock.
	m.mu.RLock()
	defer m.mu.RUnlock()
	r, ok := m.rooms[code]
	if !ok {
		return nil, rooms.ErrNotFound
	}
	return r, nil
}

// lockLive returns code's room with its lock held, or ErrNotFound if the
// room is unknown or deleted. The caller unlocks it.
func (m *Memory) lockLive(code string) (*room, error) {
	r, err := m.lookup(code)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	if r.deleted {
		r.mu.Unlock()
		return nil, rooms.ErrNotFound
	}
	return r, nil
}

// DeleteRoom deletes a room on its owner's behalf: it persists the
// registry without the room, then ends the room's streams with
// RoomDeleted and ErrDeleted. If the write fails nothing changes.
func (m *Memory) DeleteRoom(_ context.Context, code, ownerID string) error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	r, err := m.lookup(code)
	if err != nil {
		return err
	}
	if r.meta.OwnerID != ownerID {
		return rooms.ErrNotOwner
	}
	now := m.cfg.Now()
	// Encoded first: once the room is gone from the registry, its streams
	// must be ended, and nothing may fail between the two.
	ev, err := wire.RoomDeleted(now)
	if err != nil {
		return err
	}
	if err := m.save(nil, []string{code}, now); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.rooms, code)
	m.mu.Unlock()
	r.close(ev, rooms.ErrDeleted)
	return nil
}

// Users lists the users online in a room, sorted by name.
func (m *Memory) Users(_ context.Context, code string) ([]rooms.User, error) {
	r, err := m.lockLive(code)
	if err != nil {
		return nil, err
	}
	defer r.mu.Unlock()
	return r.usersLocked(), nil
}

// Persist writes the registry as it is, with each room's idle time, for
// a clean shutdown.
func (m *Memory) Persist() error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	return m.save(nil, nil, m.cfg.Now())
}

// save writes the registry as it will be once add is added and the rooms
// in drop are deleted (tombstoned at now), and, if that succeeded, applies
// the tombstone changes. The caller holds saveMu and applies the room
// changes to memory after save returns nil.
func (m *Memory) save(add *rooms.Room, drop []string, now time.Time) error {
	m.mu.Lock()
	live := make([]*room, 0, len(m.rooms))
	for _, r := range m.rooms {
		live = append(live, r)
	}
	m.mu.Unlock()
	dropped := make(map[string]bool, len(drop))
	for _, c := range drop {
		dropped[c] = true
	}
	reg := rooms.Registry{Rooms: make([]rooms.Room, 0, len(live)+1)}
	streaming := false
	for _, r := range live {
		if !dropped[r.meta.Code] {
			meta, open := r.persisted(now)
			reg.Rooms = append(reg.Rooms, meta)
			streaming = streaming || open
		}
	}
	if add != nil {
		reg.Rooms = append(reg.Rooms, *add)
	}
	sort.Slice(reg.Rooms, func(i, j int) bool {
		a, b := reg.Rooms[i], reg.Rooms[j]
		return a.CreatedAt.Before(b.CreatedAt) || a.CreatedAt.Equal(b.CreatedAt) && a.Code < b.Code
	})
	tombs := make(map[string]time.Time, len(m.tombs)+len(drop))
	for c, at := range m.tombs {
		if now.Before(at.Add(m.cfg.ReuseAfter)) {
			tombs[c] = at
		}
	}
	for _, c := range drop {
		tombs[c] = now.UTC()
	}
	for c, at := range tombs {
		reg.Tombstones = append(reg.Tombstones, rooms.Tombstone{Code: c, DeletedAt: at})
	}
	if err := m.store.Save(reg); err != nil {
		return err
	}
	m.tombs = tombs
	if streaming {
		// Rooms with open streams are active now, and still will be at the
		// next write.
		m.dirty.Store(true)
	}
	return nil
}

// Run deletes idle rooms, and writes the registry when idle times have
// moved, until ctx ends. The caller owns the goroutine that runs it; it
// returns when ctx is done. A failure to persist is passed to report and
// retried on the next tick rather than stopping the service: the rooms
// stay until a write succeeds.
func (m *Memory) Run(ctx context.Context, report func(error)) error {
	every := min(max(m.cfg.IdleTTL/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := m.tick(); err != nil && report != nil {
				report(err)
			}
		}
	}
}

// tick sweeps idle rooms and then, if any room's idle time has moved since
// the last write (a join, a last stream closing, or streams still open),
// writes the registry, so that after a crash a room's idle clock is at
// most one tick behind instead of restarting from an old save.
func (m *Memory) tick() error {
	_, err := m.SweepIdle()
	if m.dirty.Swap(false) {
		if perr := m.Persist(); perr != nil {
			m.dirty.Store(true)
			err = errors.Join(err, perr)
		}
	}
	return err
}

// SweepIdle deletes rooms that have had no open stream and no join for
// IdleTTL and returns how many it deleted. It never holds the registry
// lock while taking a room's: it collects candidates, then re-checks each
// and fences it against new streams before writing the registry.
func (m *Memory) SweepIdle() (int, error) {
	if m.cfg.IdleTTL <= 0 {
		return 0, nil
	}
	now := m.cfg.Now()
	m.mu.Lock()
	all := make([]*room, 0, len(m.rooms))
	for _, r := range m.rooms {
		all = append(all, r)
	}
	m.mu.Unlock()
	var cands []*room
	for _, r := range all {
		if r.idle(now, m.cfg.IdleTTL) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		return 0, nil
	}

	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	var gone []*room
	var codes []string
	for _, r := range cands {
		r.mu.Lock()
		// Deleted meanwhile, or a stream or a join came in: skip it. A
		// room marked deleted takes no new stream while the file is written.
		if !r.deleted && len(r.subs) == 0 && now.Sub(r.idleSince) >= m.cfg.IdleTTL {
			r.deleted = true
			gone = append(gone, r)
			codes = append(codes, r.meta.Code)
		}
		r.mu.Unlock()
	}
	if len(gone) == 0 {
		return 0, nil
	}
	if err := m.save(nil, codes, now); err != nil {
		for _, r := range gone {
			r.mu.Lock()
			r.deleted = false
			r.mu.Unlock()
		}
		return 0, err
	}
	m.mu.Lock()
	for _, c := range codes {
		delete(m.rooms, c)
	}
	m.mu.Unlock()
	return len(gone), nil
}
