// Package engine is the chat core of one service instance: it sequences
// each room's messages, writes them to a Log before anyone sees them, fans
// them out to the room's streams as domain events (rooms.Event) and keeps
// presence, over a Registry of rooms. It speaks no transport: every
// transport drains rooms.Subscription queues and encodes the shared events
// once per format.
//
// Locking: Engine.mu guards the map of live rooms and the fences of codes
// being deleted; each room has its own mutex guarding its sequence,
// history, streams and presence; the committer's mutex guards what awaits
// the log; a subscription's queue mutex is innermost. Lock order is room,
// then committer or subscription; the map lock is never held while
// waiting for a room's, and nothing waits on I/O while holding any of
// them: reads from the Registry and the Log happen before a room is
// locked, and writes to the Log happen on the committer's goroutine.
package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"sync"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// Config sizes the engine.
type Config struct {
	// CodeLength is the number of characters of a new short code.
	CodeLength int
	// HistorySize is the minimum number of messages each room keeps in
	// memory for resume. Rooms keep max(HistorySize, 2×QueueSize), so that
	// a stream cut off for overflowing its queue can always resume (see
	// Retained); the Log must be made to keep as many.
	HistorySize int
	// QueueSize bounds each stream's queue of undelivered events.
	QueueSize int
	// IdleTTL is how long a room without activity lives.
	IdleTTL time.Duration
	// ReuseAfter is how long the code of a deleted room stays unused.
	ReuseAfter time.Duration
	// MaxRoomsPerUser bounds the rooms one user owns; 0 is unlimited.
	MaxRoomsPerUser int
	// MaxStreamsPerUser bounds one user's open streams in a room; 0 is
	// unlimited.
	MaxStreamsPerUser int
	// MaxRoomMembers bounds the users online in a room, counted by the
	// Presence table across the instances that share it: the first
	// stream of a user who is not online in a full room is refused with
	// rooms.ErrRoomFull, further streams of a user who is are not. 0 is
	// unlimited.
	MaxRoomMembers int
	// PresenceWindow is how long a room gathers presence changes before
	// its streams hear of them, together, as one rooms.EventPresence
	// batch per stream (see presenceLocked); 0 sends each change to every
	// stream at once, as its own event.
	PresenceWindow time.Duration
	// Presence counts streams per user and room; nil makes the engine the
	// single holder of a MemoryPresence of its own.
	Presence Presence
	// PresenceTTL is the lease of this engine's presence counts, which it
	// renews three times per lease; 0 means 30 s.
	PresenceTTL time.Duration
	// MaxPending bounds the messages accepted but not yet written to the
	// Log; Publish waits while there are more. 0 means 16384.
	MaxPending int
	// Report receives the errors of background work (a Log write that is
	// retried, an idle sweep); nil drops them.
	Report func(error)
	// Now replaces time.Now, for tests.
	Now func() time.Time
	// NewCode replaces rooms.NewCode, for tests.
	NewCode func(length int) (string, error)
	// AfterFunc replaces time.AfterFunc, which ends presence windows, for
	// tests.
	AfterFunc func(d time.Duration, f func())
}

// codeAttempts is how many random codes CreateRoom tries before it reports
// the code space exhausted.
const codeAttempts = 16

// Engine is the chat core. It is safe for concurrent use.
type Engine struct {
	cfg      Config
	reg      Registry
	log      Log
	presence Presence
	retain   int // messages each room keeps in memory: see Retained

	mu    sync.RWMutex
	rooms map[string]*room
	// fences are the codes being deleted: a room is not loaded while its
	// code is fenced, and a load in progress when a fence is set is
	// discarded (it may have read a room since deleted).
	fences map[string]chan struct{}
	// loading are the codes whose room one caller is loading; the others
	// wait for it.
	loading map[string]*loading

	commit *committer
}

// New returns an engine over reg and log and starts its committer, which
// Close stops.
func New(cfg Config, reg Registry, log Log) (*Engine, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.NewCode == nil {
		cfg.NewCode = rooms.NewCode
	}
	if cfg.AfterFunc == nil {
		cfg.AfterFunc = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 16384
	}
	if cfg.Report == nil {
		cfg.Report = func(error) {}
	}
	if cfg.PresenceTTL <= 0 {
		cfg.PresenceTTL = 30 * time.Second
	}
	if cfg.Presence == nil {
		cfg.Presence = NewMemoryPresence(cfg.PresenceTTL, cfg.Now).Holder("local")
	}
	if cfg.CodeLength < 1 || cfg.HistorySize < 1 || cfg.QueueSize < 1 {
		return nil, errors.New("engine: code length, history size and queue size must be positive")
	}
	if cfg.MaxRoomMembers < 0 || cfg.PresenceWindow < 0 {
		return nil, errors.New("engine: the room member limit and the presence window must not be negative")
	}
	if reg == nil || log == nil {
		return nil, errors.New("engine: a registry and a log are required")
	}
	m := &Engine{cfg: cfg, reg: reg, log: log, presence: cfg.Presence, retain: Retained(cfg.HistorySize, cfg.QueueSize),
		rooms: make(map[string]*room), fences: make(map[string]chan struct{}), loading: make(map[string]*loading)}
	m.commit = newCommitter(m)
	// Owner: the Engine. Exit: Close.
	go m.commit.run()
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

// Epoch is the epoch of the engine's message sequences: the Log's.
func (m *Engine) Epoch() string { return m.log.Epoch() }

// Len is the number of rooms, or -1 if the registry cannot tell.
func (m *Engine) Len(ctx context.Context) int {
	n, err := m.reg.Count(ctx)
	if err != nil {
		return -1
	}
	return n
}

// CanCreate returns rooms.ErrTooManyRooms when ownerID owns as many rooms
// as it may already, so that a caller can refuse before hashing the new
// room's password. It reads the count without holding it: CreateRoom
// checks again, atomically with the insert.
func (m *Engine) CanCreate(ctx context.Context, ownerID string) error {
	if m.cfg.MaxRoomsPerUser <= 0 {
		return nil
	}
	n, err := m.reg.Owned(ctx, ownerID)
	if err != nil {
		return err
	}
	if n >= m.cfg.MaxRoomsPerUser {
		return fmt.Errorf("%w (%d)", rooms.ErrTooManyRooms, m.cfg.MaxRoomsPerUser)
	}
	return nil
}

// CreateRoom registers a room with a fresh short code.
func (m *Engine) CreateRoom(ctx context.Context, name, passwordHash, ownerID string) (rooms.Room, error) {
	// Microseconds: what every store keeps, so the room returned is the
	// room stored.
	now := m.cfg.Now().UTC().Truncate(time.Microsecond)
	r := rooms.Room{Name: name, PasswordHash: passwordHash, OwnerID: ownerID, CreatedAt: now, IdleSince: now}
	rules := CreateRules{MaxOwned: m.cfg.MaxRoomsPerUser, ReuseAfter: m.cfg.ReuseAfter}
	for range codeAttempts {
		code, err := m.cfg.NewCode(m.cfg.CodeLength)
		if err != nil {
			return rooms.Room{}, err
		}
		r.Code = code
		err = m.reg.Create(ctx, r, rules)
		switch {
		case err == nil:
			return r, m.clearHistory(ctx, r)
		case errors.Is(err, rooms.ErrTooManyRooms):
			return rooms.Room{}, fmt.Errorf("%w (%d)", err, m.cfg.MaxRoomsPerUser)
		case !errors.Is(err, rooms.ErrCodeTaken):
			return rooms.Room{}, err
		}
	}
	return rooms.Room{}, fmt.Errorf("engine: %d tries at length %d: %w", codeAttempts, m.cfg.CodeLength, rooms.ErrNoCode)
}

// clearHistory drops any history left under a new room's code by a room
// deleted long ago whose history could not be dropped then, so that the
// new room never shows another's messages. Nobody knows the code yet, so
// nothing is published meanwhile. If it fails, the new room is deleted
// again and the error returned.
func (m *Engine) clearHistory(ctx context.Context, r rooms.Room) error {
	err := m.log.Drop(ctx, r.Code)
	if err == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retireTimeout)
	defer cancel()
	if derr := m.reg.Delete(ctx, r.Code, r.OwnerID, m.cfg.Now().UTC()); derr != nil {
		m.cfg.Report(fmt.Errorf("engine: undo room %s after its history could not be cleared: %w", r.Code, derr))
	}
	return fmt.Errorf("engine: clear history of new room %s: %w", r.Code, err)
}

// retireTimeout bounds the work that must follow a deletion once the
// registry has committed it, whatever happens to the call that asked.
const retireTimeout = 30 * time.Second

// Room returns the room with the canonical short code.
func (m *Engine) Room(ctx context.Context, code string) (rooms.Room, error) {
	m.mu.RLock()
	r := m.rooms[code]
	m.mu.RUnlock()
	if r != nil {
		r.mu.Lock()
		meta, live := r.meta, !r.deleted && !r.gone
		r.mu.Unlock()
		if live {
			return meta, nil
		}
	}
	return m.reg.Room(ctx, code)
}

// Touch records activity in a room (a user joined it), which restarts its
// idle clock.
func (m *Engine) Touch(ctx context.Context, code string) error {
	return m.reg.Touch(ctx, code, m.cfg.Now().UTC())
}

// DeleteRoom deletes a room on its owner's behalf: the registry first,
// which is the point of no return, then the room's streams end with a
// RoomDeleted event and rooms.ErrDeleted, and its history is dropped.
func (m *Engine) DeleteRoom(ctx context.Context, code, ownerID string) error {
	// Checked first, so that a caller who may not delete the room cannot
	// hold its fence (the registry checks again, atomically).
	meta, err := m.Room(ctx, code)
	if err != nil {
		return err
	}
	if meta.OwnerID != ownerID {
		return rooms.ErrNotOwner
	}
	r, unfence, err := m.fence(ctx, code)
	if err != nil {
		return err
	}
	defer unfence()
	now := m.cfg.Now().UTC()
	if err := m.reg.Delete(ctx, code, ownerID, now); err != nil {
		return err
	}
	m.retire(ctx, code, r, now)
	return nil
}

// retire ends a deleted room's streams, waits until what it had accepted
// is in the log, drops its history and forgets it. The caller holds the
// code's fence; r is the room as it was loaded, or nil.
func (m *Engine) retire(ctx context.Context, code string, r *room, at time.Time) {
	// The registry has committed the deletion: what follows must happen
	// even if the caller hangs up now.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), retireTimeout)
	defer cancel()
	if r != nil {
		r.close(&rooms.Event{Kind: rooms.EventRoomDeleted, At: at}, rooms.ErrDeleted)
		// Messages accepted before the room closed are written to the log
		// after it; wait for them so that Drop takes them too.
		if err := m.commit.flush(ctx); err != nil {
			m.cfg.Report(fmt.Errorf("engine: deleted room %s: %w", code, err))
		}
		m.mu.Lock()
		if m.rooms[code] == r {
			delete(m.rooms, code)
		}
		m.mu.Unlock()
	}
	if err := m.log.Drop(ctx, code); err != nil {
		m.cfg.Report(fmt.Errorf("engine: drop history of deleted room %s: %w", code, err))
	}
}

// fence stops code's room from being loaded until unfence is called, and
// returns the room as currently loaded (nil if it is not). It waits for
// another fence of the same code to be lifted.
func (m *Engine) fence(ctx context.Context, code string) (*room, func(), error) {
	for {
		m.mu.Lock()
		wait, fenced := m.fences[code]
		if !fenced {
			done := make(chan struct{})
			m.fences[code] = done
			if l := m.loading[code]; l != nil {
				l.stale = true
			}
			r := m.rooms[code]
			m.mu.Unlock()
			return r, func() {
				m.mu.Lock()
				delete(m.fences, code)
				m.mu.Unlock()
				close(done)
			}, nil
		}
		m.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// Users lists the users online in a room, sorted by name.
func (m *Engine) Users(ctx context.Context, code string) ([]rooms.User, error) {
	r, err := m.lockLive(ctx, code)
	if err != nil {
		return nil, err
	}
	r.mu.Unlock()
	return m.presence.Users(ctx, code)
}

// Flush waits until every message accepted so far is in the log and has
// been handed to the streams of its room.
func (m *Engine) Flush(ctx context.Context) error { return m.commit.flush(ctx) }

// Close writes what is still pending to the log, waiting at most until
// ctx ends, stops the committer and records the idle times of rooms with
// open streams. Publish fails with rooms.ErrShuttingDown afterwards.
func (m *Engine) Close(ctx context.Context) error {
	err := m.commit.close(ctx)
	return errors.Join(err, m.touchActive(ctx))
}
