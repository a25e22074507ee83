package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/grpcchatter/grpcchatter/services/chat/internal/rooms"
)

// MemoryPresence is a Presence table in memory, shared by the holders
// made with Holder: one per engine in a process, and the engine's default
// (a single holder) when Config.Presence is nil. It is safe for
// concurrent use.
type MemoryPresence struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	rooms   map[string]map[string]*presence // room → user ID
	renewed map[string]time.Time            // holder → last renewal
}

// forgetLapsed is how many leases a holder may miss before another holder's
// renewal forgets its counts.
const forgetLapsed = 10

// presence is one user's streams in a room, by holder.
type presence struct {
	name    string
	streams map[string]uint32
}

// NewMemoryPresence returns an empty table whose leases last ttl; now
// replaces time.Now when not nil.
func NewMemoryPresence(ttl time.Duration, now func() time.Time) *MemoryPresence {
	if now == nil {
		now = time.Now
	}
	return &MemoryPresence{ttl: ttl, now: now, rooms: make(map[string]map[string]*presence), renewed: make(map[string]time.Time)}
}

// Holder returns the Presence of one holder of the table.
func (p *MemoryPresence) Holder(id string) Presence {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.renewed[id] = p.now()
	return &memoryHolder{p: p, id: id}
}

type memoryHolder struct {
	p  *MemoryPresence
	id string
}

// liveLocked reports whether holder's lease runs at now.
func (p *MemoryPresence) liveLocked(holder string, now time.Time) bool {
	at, ok := p.renewed[holder]
	return ok && now.Sub(at) < p.ttl
}

// countLocked is u's streams under live leases.
func (p *MemoryPresence) countLocked(u *presence, now time.Time) uint32 {
	var n uint32
	for h, c := range u.streams {
		if p.liveLocked(h, now) {
			n += c
		}
	}
	return n
}

func (h *memoryHolder) Join(_ context.Context, room string, m rooms.Member, limit int) (bool, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	// A join renews the holder's lease: its own counts, even if the lease
	// had lapsed (a late renewal), are its streams still open.
	p.renewed[h.id] = now
	users := p.rooms[room]
	if users == nil {
		users = make(map[string]*presence)
		p.rooms[room] = users
	}
	u := users[m.ID]
	if u == nil {
		u = &presence{name: m.Name, streams: make(map[string]uint32)}
		users[m.ID] = u
	}
	n := p.countLocked(u, now)
	if limit > 0 && int(n) >= limit {
		return false, fmt.Errorf("%w (%d)", rooms.ErrTooManyStreams, limit)
	}
	u.streams[h.id]++
	return n == 0, nil
}

func (h *memoryHolder) Leave(_ context.Context, room string, m rooms.Member) (bool, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.rooms[room][m.ID]
	if u == nil || u.streams[h.id] == 0 {
		return false, nil
	}
	if u.streams[h.id]--; u.streams[h.id] == 0 {
		delete(u.streams, h.id)
	}
	n := p.countLocked(u, p.now())
	if len(u.streams) == 0 {
		delete(p.rooms[room], m.ID)
		if len(p.rooms[room]) == 0 {
			delete(p.rooms, room)
		}
	}
	return n == 0, nil
}

func (h *memoryHolder) Users(_ context.Context, room string) ([]rooms.User, error) {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	out := make([]rooms.User, 0, len(p.rooms[room]))
	for _, u := range p.rooms[room] {
		if n := p.countLocked(u, now); n > 0 {
			out = append(out, rooms.User{Name: u.name, Streams: n})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (h *memoryHolder) Renew(context.Context) error {
	p := h.p
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	p.renewed[h.id] = now
	// Other holders lapsed for long are forgotten here, so that a crashed
	// one's counts do not stay in memory; one that is merely late comes
	// back with its counts when it renews.
	for id, at := range p.renewed {
		if now.Sub(at) >= forgetLapsed*p.ttl {
			p.dropLocked(id)
			delete(p.renewed, id)
		}
	}
	return nil
}

// dropLocked forgets every count of holder, whose lease has lapsed.
func (p *MemoryPresence) dropLocked(holder string) {
	for room, users := range p.rooms {
		for id, u := range users {
			delete(u.streams, holder)
			if len(u.streams) == 0 {
				delete(users, id)
			}
		}
		if len(users) == 0 {
			delete(p.rooms, room)
		}
	}
}
