// Package engine is the in-memory room engine: the room registry, message
// sequencing, history and fan-out of one service instance.
//
// Locking: Memory.mu guards the registry map; each room has its own mutex
// guarding its sequence, history, subscribers and presence. Lock order is
// always registry before room, and a subscription's queue mutex is the
// innermost. Nothing under any of these locks blocks: fan-out is a
// non-blocking append per subscriber, and the registry file is written
// after the locks are released.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
	"github.com/grpcchatter/grpcchatter/services/chat/internal/wire"
)

// Store persists the registry. Save is called with the complete registry.
type Store interface {
	Load() ([]rooms.Room, error)
	Save([]rooms.Room) error
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
	// IdleTTL is how long a room without open streams lives.
	IdleTTL time.Duration
	// Now replaces time.Now, for tests.
	Now func() time.Time
}

// Memory is the in-memory engine. It is safe for concurrent use.
type Memory struct {
	cfg   Config
	store Store
	epoch string
	// retain is how many messages each room keeps: see Retained.
	retain int

	saveMu sync.Mutex // serialises registry writers only; never held with mu

	mu    sync.Mutex
	rooms map[string]*room
}

// New loads the registry from st and starts a new epoch.
func New(cfg Config, st Store) (*Memory, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
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
		rooms: make(map[string]*room, len(saved))}
	now := cfg.Now()
	for _, r := range saved {
		m.rooms[r.Code] = newRoom(r, now)
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
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rooms)
}

// CreateRoom registers a room with a fresh short code and persists it.
func (m *Memory) CreateRoom(_ context.Context, name, passwordHash, ownerID string) (rooms.Room, error) {
	meta := rooms.Room{Name: name, PasswordHash: passwordHash, OwnerID: ownerID, CreatedAt: m.cfg.Now().UTC()}
	for attempt := 0; ; attempt++ {
		code, err := rooms.NewCode(m.cfg.CodeLength)
		if err != nil {
			return rooms.Room{}, err
		}
		meta.Code = code
		if err := m.insert(meta); err == nil {
			break
		} else if attempt >= 16 {
			return rooms.Room{}, fmt.Errorf("engine: no free short code of length %d: %w", m.cfg.CodeLength, err)
		}
	}
	if err := m.Persist(); err != nil {
		m.mu.Lock()
		delete(m.rooms, meta.Code)
		m.mu.Unlock()
		return rooms.Room{}, err
	}
	return meta, nil
}

func (m *Memory) insert(meta rooms.Room) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, taken := m.rooms[meta.Code]; taken {
		return rooms.ErrExists
	}
	m.rooms[meta.Code] = newRoom(meta, m.cfg.Now())
	return nil
}

// Room returns the room with the canonical short code.
func (m *Memory) Room(_ context.Context, code string) (rooms.Room, error) {
	r, err := m.lookup(code)
	if err != nil {
		return rooms.Room{}, err
	}
	return r.meta, nil
}

func (m *Memory) lookup(code string) (*room, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.rooms[code]
	if !ok {
		return nil, rooms.ErrNotFound
	}
	return r, nil
}

// DeleteRoom deletes a room on its owner's behalf, ends its streams with
// RoomDeleted and ErrDeleted, and persists the registry.
func (m *Memory) DeleteRoom(_ context.Context, code, ownerID string) error {
	m.mu.Lock()
	r, ok := m.rooms[code]
	switch {
	case !ok:
		m.mu.Unlock()
		return rooms.ErrNotFound
	case r.meta.OwnerID != ownerID:
		m.mu.Unlock()
		return rooms.ErrNotOwner
	}
	delete(m.rooms, code)
	m.mu.Unlock()

	ev, err := wire.RoomDeleted(m.cfg.Now())
	if err != nil {
		return err
	}
	r.close(ev, rooms.ErrDeleted)
	return m.Persist()
}

// Users lists the users online in a room, sorted by name.
func (m *Memory) Users(_ context.Context, code string) ([]rooms.User, error) {
	r, err := m.lookup(code)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deleted {
		return nil, rooms.ErrNotFound
	}
	return r.usersLocked(), nil
}

// Persist writes the registry. Concurrent callers are serialised and each
// writes a snapshot taken after the previous write, so the file always
// ends up with the latest registry.
func (m *Memory) Persist() error {
	m.saveMu.Lock()
	defer m.saveMu.Unlock()
	m.mu.Lock()
	snap := make([]rooms.Room, 0, len(m.rooms))
	for _, r := range m.rooms {
		snap = append(snap, r.meta)
	}
	m.mu.Unlock()
	sort.Slice(snap, func(i, j int) bool {
		return snap[i].CreatedAt.Before(snap[j].CreatedAt) || snap[i].CreatedAt.Equal(snap[j].CreatedAt) && snap[i].Code < snap[j].Code
	})
	return m.store.Save(snap)
}

// Run deletes idle rooms until ctx ends. The caller owns the goroutine that
// runs it; it returns when ctx is done. A failure to persist is passed to
// report and retried on the next sweep rather than stopping the service:
// the rooms are already gone from memory and the next write catches up.
func (m *Memory) Run(ctx context.Context, report func(error)) error {
	every := min(max(m.cfg.IdleTTL/4, time.Second), time.Minute)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := m.SweepIdle(); err != nil && report != nil {
				report(err)
			}
		}
	}
}

// SweepIdle deletes rooms that have had no open stream for IdleTTL and
// returns how many it deleted.
func (m *Memory) SweepIdle() (int, error) {
	if m.cfg.IdleTTL <= 0 {
		return 0, nil
	}
	now := m.cfg.Now()
	n := 0
	m.mu.Lock()
	for code, r := range m.rooms {
		r.mu.Lock()
		if len(r.subs) == 0 && now.Sub(r.idleSince) >= m.cfg.IdleTTL {
			r.deleted = true
			delete(m.rooms, code)
			n++
		}
		r.mu.Unlock()
	}
	m.mu.Unlock()
	if n == 0 {
		return 0, nil
	}
	return n, m.Persist()
}
